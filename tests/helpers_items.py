"""The Items flow's test world: moto's server (Secrets Manager, DynamoDB, KMS), the Plaid
stand-in, and the real handlers built on them (exchange_app's, items_app's and app's
containers), with one call per route."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session
import requests

from infra.doubles.aws_faults import AwsFaults
from infra.doubles.lambda_runtime import LambdaContext
from infra.doubles.moto_server import moto_server
from infra.doubles.plaid_standin import PlaidStandIn
from infra.gateway.cfn_template import function_timeout_seconds, load_template
from linktoken.container import build_container
from linktoken.endpoint import handle
from plaiditems.container import ItemsContainer, build_items_container
from plaiditems.endpoint import handle_exchange, handle_items

CLIENT_ID, SECRET = "items-client-id", "items-secret-value"
HMAC_KEY = "k" * 32
INSTITUTION = {"institution_id": "ins_109508", "name": "First Platypus Bank"}
ACCOUNTS = [
    {
        "id": "acc-1",
        "name": "Plaid Checking",
        "mask": "0000",
        "type": "depository",
        "subtype": "checking",
    },
    {
        "id": "acc-2",
        "name": "Plaid Saving",
        "mask": "1111",
        "type": "depository",
        "subtype": "savings",
    },
]


class World:
    """moto, the stand-in, the table, the key, the secret, and the containers built on them."""

    def __init__(
        self,
        endpoint: str,
        plaid: PlaidStandIn,
        key_id: str,
        names: tuple[str, str],
        faults: AwsFaults | None = None,
    ) -> None:
        self.endpoint, self.plaid, self.key_id, self.faults = endpoint, plaid, key_id, faults
        front = faults.endpoint if faults else None
        # moto keeps one state per process, whichever server: names of this world's own.
        self.table, self.secret_id = names
        self.env = {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": front or endpoint,
            "AWS_ENDPOINT_URL_KMS": front or endpoint,
            "PLAID_SECRET_ID": self.secret_id,
            "PLAID_CLIENT_NAME": "Items Test",
            "PLAID_BASE_URL": plaid.base_url,
            "ITEMS_TABLE": self.table,
            "ITEMS_KEY_ID": key_id,
        }
        os.environ.update(self.env)  # the secret store's client reads the process environment
        self.items = build_items_container(self.env)
        self.link = build_container(self.env)

    def client(self, service: str) -> Any:
        return _Clients(self.endpoint).create_client(service)

    def public_token(self, institution_id: str = INSTITUTION["institution_id"]) -> str:
        answer = requests.post(
            self.plaid.base_url + "/sandbox/public_token/create",
            json={"institution_id": institution_id, "initial_products": ["transactions"]},
            headers={"PLAID-CLIENT-ID": CLIENT_ID, "PLAID-SECRET": SECRET},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["public_token"])

    def exchange(
        self, sub: str, token: str, accounts: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        body = {
            "public_token": token,
            "metadata": {
                "institution": INSTITUTION,
                "accounts": accounts or ACCOUNTS,
                "link_session_id": "s-1",
            },
        }
        return handle_exchange(event("POST", "/items", sub, body), exchange_context(), self.items)

    def list(self, sub: str, container: ItemsContainer | None = None) -> dict[str, Any]:
        return handle_items(event("GET", "/items", sub), LambdaContext(), container or self.items)

    def remove(self, sub: str, item_id: str) -> dict[str, Any]:
        return handle_items(
            event("DELETE", f"/items/{item_id}", sub, item_id=item_id), LambdaContext(), self.items
        )

    def update_token(self, sub: str, item_id: str) -> dict[str, Any]:
        return handle(
            event("POST", "/link-token", sub, {"item_id": item_id}), LambdaContext(), self.link
        )

    def table_dump(self) -> str:
        return json.dumps(self.client("dynamodb").scan(TableName=self.table)["Items"])


class _Clients:
    """botocore clients for moto's endpoint (typed loosely: moto's side is set-up only)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def create_client(self, service: str) -> Any:
        return botocore.session.get_session().create_client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )


# The exchange function's own timeout (template.yaml): the exchange keeps time back for what
# must follow it (plaiditems.service.CLEANUP_RESERVE_S).
EXCHANGE_TIMEOUT_MS = function_timeout_seconds(load_template(), "ItemExchangeFunction") * 1000


def exchange_context() -> LambdaContext:
    return LambdaContext(remaining_ms=EXCHANGE_TIMEOUT_MS)


def event(
    method: str, path: str, sub: str, body: Any = None, item_id: str | None = None
) -> dict[str, Any]:
    route = "/items/{item_id}" if item_id else path
    doc: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "http": {"method": method, "path": path},
            "authorizer": {"jwt": {"claims": {"sub": sub}}},
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        doc["body"] = json.dumps(body)
    if item_id is not None:
        doc["pathParameters"] = {"item_id": item_id}
    return doc


def body_of(answer: dict[str, Any]) -> Any:
    return json.loads(answer["body"]) if answer["body"] else None


@contextmanager
def items_world(with_faults: bool = False) -> Iterator[World]:
    """The world on a fresh moto server; `with_faults` puts the fault double
    (`World.faults`) between the functions and moto's DynamoDB and KMS."""
    saved = dict(os.environ)
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(moto_server())
        plaid = stack.enter_context(PlaidStandIn(client_id=CLIENT_ID, secret=SECRET))
        faults = stack.enter_context(AwsFaults(endpoint)) if with_faults else None
        suffix = uuid.uuid4().hex[:8]
        table, secret_id = f"items-{suffix}", f"items/plaid-{suffix}"
        session = _Clients(endpoint)
        session.create_client("secretsmanager").create_secret(
            Name=secret_id,
            SecretString=json.dumps(
                {"client_id": CLIENT_ID, "secret": SECRET, "user_id_hmac_key": HMAC_KEY}
            ),
        )
        session.create_client("dynamodb").create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        key_id = session.create_client("kms").create_key()["KeyMetadata"]["Arn"]
        try:
            yield World(endpoint, plaid, key_id, (table, secret_id), faults)
        finally:
            os.environ.clear()
            os.environ.update(saved)
