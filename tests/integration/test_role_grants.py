"""Each function's role in template.yaml grants every AWS call the function makes.

moto does not enforce IAM, so a call the role lacks passes every other test and fails only once
deployed (AccessDeniedException). Here each of the five functions runs its flows against moto
through a middleware that records every call (its X-Amz-Target and body), and each call is
looked up in that function's role: the action, on the resource it names (the table, its
index, the key, the secret, the queue), and for the key, under the encryption context the
statement's condition asks for. The SQS calls of the processor's phase are its event source
mapping's, which Lambda makes with the function's role.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from infra.doubles.lambda_runtime import LambdaContext
from infra.gateway.cfn_template import load_template
from plaiditems.container import build_items_container
from plaiditems.endpoint import handle_items
from tests.helpers_items import World, body_of, event, items_world

RESOURCES: dict[str, Any] = load_template()["Resources"]
ROLES = {
    "LinkTokenFunction": "LinkTokenFunctionRole",
    "ItemExchangeFunction": "ItemExchangeFunctionRole",
    "ItemsFunction": "ItemsFunctionRole",
    "WebhookReceiverFunction": "WebhookReceiverFunctionRole",
    "WebhookProcessorFunction": "WebhookProcessorFunctionRole",
}
# The template's expression for each kind of resource a call names.
RESOURCE_OF = {
    "table": {"Fn::GetAtt": ["ItemsTable", "Arn"]},
    "index": {"Fn::Sub": "${ItemsTable.Arn}/index/ByItemId"},
    "key": {"Fn::GetAtt": ["ItemsKey", "Arn"]},
    "queue": {"Fn::GetAtt": ["WebhookQueue", "Arn"]},
}
SERVICE_OF_TARGET = {
    "DynamoDB_20120810": "dynamodb",
    "TrentService": "kms",
    "secretsmanager": "secretsmanager",
    "AmazonSQS": "sqs",
}

Call = tuple[str, str, dict[str, Any]]  # (service, operation, body)


class Recorder:
    """A WSGI middleware before moto: every JSON-protocol call, under the phase set now."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.calls: dict[str, list[Call]] = {}
        self._lock = threading.Lock()

    def wrap(self, app: Any) -> Any:
        def middleware(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(raw)
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            prefix, _, operation = target.partition(".")
            if self.phase and prefix in SERVICE_OF_TARGET:
                body = json.loads(raw) if raw else {}
                with self._lock:
                    found = self.calls.setdefault(self.phase, [])
                    found.append((SERVICE_OF_TARGET[prefix], operation, body))
            answer: Iterable[bytes] = app(environ, start_response)
            return answer

        return middleware


def statements(role: str) -> list[dict[str, Any]]:
    """The role's statements, each Fn::If taken both ways (AWS::NoValue dropped)."""
    (policy,) = RESOURCES[role]["Properties"]["Policies"]
    found: list[dict[str, Any]] = []
    for statement in policy["PolicyDocument"]["Statement"]:
        branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
        found += [b for b in branches if b != {"Ref": "AWS::NoValue"}]
    return found


def actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def resource_kind(service: str, body: dict[str, Any]) -> str:
    if service == "dynamodb":
        return "index" if body.get("IndexName") else "table"
    return {"kms": "key", "secretsmanager": "secret", "sqs": "queue"}[service]


def grants(statement: dict[str, Any], kind: str, body: dict[str, Any]) -> bool:
    resource = statement["Resource"]
    if kind == "secret":
        on_it = "PlaidSecret" in json.dumps(resource)
    else:
        on_it = resource == RESOURCE_OF[kind]
    condition = statement.get("Condition", {})
    keys = condition.get("ForAllValues:StringEquals", {}).get("kms:EncryptionContextKeys")
    if keys is not None:  # the key's statements: only ciphertexts of one Item of one owner
        context = body.get("EncryptionContext") or {}
        on_it = on_it and set(context) == set(keys)
    return on_it


def ungranted(function: str, calls: list[Call]) -> list[str]:
    role = statements(ROLES[function])
    missing = []
    for service, operation, body in calls:
        action, kind = f"{service}:{operation}", resource_kind(service, body)
        if not any(action in actions(s) and grants(s, kind, body) for s in role):
            missing.append(f"{action} on the {kind}")
    return sorted(set(missing))


@pytest.fixture(scope="module")
def recorded() -> Iterator[dict[str, list[Call]]]:
    """Every function's flows, once; the calls each made, by function."""
    recorder = Recorder()
    with items_world(moto_wrap=recorder.wrap, queue_visibility_s=1) as world:
        _run_every_function(world, recorder)
    yield recorder.calls


def _run_every_function(world: World, recorder: Recorder) -> None:
    sub = "user-grants"
    recorder.phase = "ItemExchangeFunction"
    created = world.exchange(sub, world.public_token())
    assert created["statusCode"] == 201, created["body"]
    item_id = str(body_of(created)["item_id"])

    recorder.phase = "LinkTokenFunction"
    assert world.update_token(sub, item_id)["statusCode"] == 200

    recorder.phase = "WebhookReceiverFunction"
    world.plaid.reset_login_item(item_id)
    webhook = {
        "webhook_type": "ITEM",
        "webhook_code": "ERROR",
        "item_id": item_id,
        "error": {"error_type": "ITEM_ERROR", "error_code": "ITEM_LOGIN_REQUIRED"},
    }
    assert world.webhook(*world.signed(webhook))["statusCode"] == 200

    recorder.phase = "WebhookProcessorFunction"
    world.drain_webhooks()

    recorder.phase = "ItemsFunction"
    items = build_items_container(world.env)  # its own container: its own secret read
    for method, path, item in [
        ("GET", "/items", None),
        ("POST", f"/items/{item_id}/refresh", item_id),
        ("DELETE", f"/items/{item_id}", item_id),
    ]:
        answer = handle_items(event(method, path, sub, item_id=item), LambdaContext(), items)
        assert answer["statusCode"] in {200, 204}, answer
    recorder.phase = None


# What each function must at least have been seen to call: the test is not vacuous.
SEEN = {
    "ItemExchangeFunction": {"secretsmanager:GetSecretValue", "kms:Encrypt", "dynamodb:PutItem"},
    "LinkTokenFunction": {"dynamodb:GetItem", "kms:Decrypt"},
    "WebhookReceiverFunction": {"secretsmanager:GetSecretValue", "sqs:SendMessage"},
    "WebhookProcessorFunction": {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "dynamodb:Query",
        "dynamodb:GetItem",
        "kms:Decrypt",
        "secretsmanager:GetSecretValue",
        "dynamodb:UpdateItem",
    },
    "ItemsFunction": {
        "secretsmanager:GetSecretValue",
        "dynamodb:Query",
        "dynamodb:GetItem",
        "kms:Decrypt",
        "dynamodb:UpdateItem",
    },
}


@pytest.mark.parametrize("function", list(ROLES))
def test_the_role_grants_every_call_the_function_makes(
    recorded: dict[str, list[Call]], function: str
) -> None:
    calls = recorded.get(function, [])
    made = {f"{service}:{operation}" for service, operation, _ in calls}
    assert SEEN[function] <= made, made
    assert ungranted(function, calls) == []


def test_a_call_outside_the_role_is_caught() -> None:
    """The check itself: the processor's GetItem without the statement that grants it."""
    call: Call = ("dynamodb", "GetItem", {"TableName": "t"})
    assert ungranted("WebhookProcessorFunction", [call]) == []
    assert ungranted("WebhookReceiverFunction", [call]) == ["dynamodb:GetItem on the table"]
    unseal: Call = ("kms", "Decrypt", {"EncryptionContext": {"item_id": "i"}})
    assert ungranted("ItemsFunction", [unseal]) == ["kms:Decrypt on the key"]
