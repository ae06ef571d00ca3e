"""The Items flow through the real handlers (exchange_app, items_app, app in update mode),
against moto's server (Secrets Manager, DynamoDB, KMS) and the Plaid stand-in over loopback."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
import requests

from infra.doubles.lambda_runtime import LambdaContext
from infra.doubles.moto_server import moto_server
from infra.doubles.plaid_standin import PlaidStandIn
from linktoken.container import build_container
from linktoken.endpoint import handle
from plaiditems.container import ItemsContainer, build_items_container
from plaiditems.endpoint import handle_exchange, handle_items

CLIENT_ID, SECRET = "items-client-id", "items-secret-value"
HMAC_KEY = "k" * 32
TABLE = "items-test"
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

    def __init__(self, endpoint: str, plaid: PlaidStandIn, key_id: str) -> None:
        self.endpoint, self.plaid, self.key_id = endpoint, plaid, key_id
        self.env = {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
            "AWS_ENDPOINT_URL_KMS": endpoint,
            "PLAID_SECRET_ID": "items/plaid",
            "PLAID_CLIENT_NAME": "Items Test",
            "PLAID_BASE_URL": plaid.base_url,
            "ITEMS_TABLE": TABLE,
            "ITEMS_KEY_ID": key_id,
        }
        os.environ.update(self.env)  # the secret store's client reads the process environment
        self.items = build_items_container(self.env)
        self.link = build_container(self.env)

    def client(self, service: str) -> Any:
        return botocore.session.get_session().create_client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

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
        return handle_exchange(event("POST", "/items", sub, body), LambdaContext(), self.items)

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
        return json.dumps(self.client("dynamodb").scan(TableName=TABLE)["Items"])


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


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    saved = dict(os.environ)
    with moto_server() as endpoint, PlaidStandIn(client_id=CLIENT_ID, secret=SECRET) as plaid:
        session = botocore.session.get_session()
        args = {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }
        session.create_client("secretsmanager", **args).create_secret(
            Name="items/plaid",
            SecretString=json.dumps(
                {"client_id": CLIENT_ID, "secret": SECRET, "user_id_hmac_key": HMAC_KEY}
            ),
        )
        session.create_client("dynamodb", **args).create_table(
            TableName=TABLE,
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
        key_id = session.create_client("kms", **args).create_key()["KeyMetadata"]["Arn"]
        try:
            yield World(endpoint, plaid, key_id)
        finally:
            os.environ.clear()
            os.environ.update(saved)


def test_exchange_stores_the_item_and_answers_201_without_the_access_token(world: World) -> None:
    answer = world.exchange("user-exchange", world.public_token())
    body = body_of(answer)
    assert answer["statusCode"] == 201, body
    assert answer["headers"]["Location"] == f"/items/{body['item_id']}"
    assert body["institution"] == INSTITUTION
    assert [a["mask"] for a in body["accounts"]] == ["0000", "1111"]
    assert body["health"] == "healthy"
    assert "access" not in answer["body"]  # no access_token, no access-sandbox-...
    listed = body_of(world.list("user-exchange"))["items"]
    assert [item["item_id"] for item in listed] == [body["item_id"]]
    assert listed[0]["health"] == "healthy"


def test_the_table_holds_no_plaintext_access_token_and_no_raw_sub(world: World) -> None:
    world.exchange("ada@example.com", world.public_token("ins_3"))
    dump = world.table_dump()
    assert "access-sandbox" not in dump
    assert "ada@example.com" not in dump
    assert "sealed_token" in dump


def test_a_retried_exchange_gets_the_same_item_and_plaid_exchanges_once(world: World) -> None:
    token = world.public_token("ins_4")
    first = body_of(world.exchange("user-retry", token))
    exchanges = sum(
        1 for r in world.plaid.requests if r.get("path") == "/item/public_token/exchange"
    )
    again = world.exchange("user-retry", token)
    assert again["statusCode"] == 201
    assert body_of(again)["item_id"] == first["item_id"]
    assert (
        sum(1 for r in world.plaid.requests if r.get("path") == "/item/public_token/exchange")
        == exchanges
    )
    assert len(body_of(world.list("user-retry"))["items"]) == 1


def test_the_same_accounts_again_are_a_409_naming_the_existing_item(world: World) -> None:
    first = body_of(world.exchange("user-dup", world.public_token()))
    answer = world.exchange("user-dup", world.public_token())
    problem = body_of(answer)
    assert answer["statusCode"] == 409
    assert (problem["code"], problem["item_id"]) == ("DUPLICATE_ITEM", first["item_id"])
    other_masks = [dict(ACCOUNTS[0], mask="9999")]
    assert world.exchange("user-dup", world.public_token(), other_masks)["statusCode"] == 201


def test_an_unknown_public_token_is_400_invalid_public_token(world: World) -> None:
    answer = world.exchange("user-bad", "public-sandbox-" + str(uuid.uuid4()))
    problem = body_of(answer)
    assert answer["statusCode"] == 400
    assert problem["code"] == "INVALID_PUBLIC_TOKEN"
    assert problem["plaid_error_code"] == "INVALID_PUBLIC_TOKEN"


def test_a_public_token_of_another_environment_names_it_in_the_log(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    answer = world.exchange("user-env", "public-production-" + str(uuid.uuid4()))
    assert body_of(answer)["code"] == "INVALID_PUBLIC_TOKEN"
    lines = [
        json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")
    ]
    (failed,) = [line for line in lines if line.get("message") == "item_exchange_failed"]
    assert "production environment" in failed["cause"]


def test_update_mode_sends_the_items_access_token_and_no_products(world: World) -> None:
    item_id = body_of(world.exchange("user-update", world.public_token("ins_5")))["item_id"]
    answer = world.update_token("user-update", item_id)
    assert answer["statusCode"] == 200, answer["body"]
    (sent,) = [r for r in world.plaid.requests if r.get("path") == "/link/token/create"][-1:]
    sent_body = json.loads(sent["body"])
    assert str(sent_body["access_token"]).startswith("access-sandbox-")
    assert "products" not in sent_body
    assert "access-sandbox" not in answer["body"]


def test_another_users_item_is_404_on_every_route(world: World) -> None:
    item_id = body_of(world.exchange("owner", world.public_token("ins_6")))["item_id"]
    assert body_of(world.update_token("intruder", item_id))["code"] == "ITEM_NOT_FOUND"
    assert world.update_token("intruder", item_id)["statusCode"] == 404
    assert world.remove("intruder", item_id)["statusCode"] == 404
    assert body_of(world.list("intruder"))["items"] == []
    assert world.remove("owner", item_id)["statusCode"] == 204


def test_remove_calls_plaid_then_keeps_a_tombstone_and_is_idempotent(world: World) -> None:
    item_id = body_of(world.exchange("user-remove", world.public_token("ins_7")))["item_id"]
    answer = world.remove("user-remove", item_id)
    assert (answer["statusCode"], answer["body"]) == (204, "")
    removed = {view.item_id: view.removed for view in world.plaid.items()}
    assert removed[item_id] is True
    assert world.remove("user-remove", item_id)["statusCode"] == 204
    assert body_of(world.list("user-remove"))["items"] == []
    assert world.update_token("user-remove", item_id)["statusCode"] == 404


def test_a_swapped_sealed_token_decrypts_to_nothing(world: World) -> None:
    """The encryption context binds a sealed token to its Item: KMS refuses it elsewhere."""
    kms = world.client("kms")
    sealed = kms.encrypt(
        KeyId=world.key_id,
        Plaintext=b"access-sandbox-x",
        EncryptionContext={"item_id": "a", "owner": "o"},
    )["CiphertextBlob"]
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=sealed, EncryptionContext={"item_id": "b", "owner": "o"})
    from plaiditems.vault import TokenVault
    from linktoken.aws_clients import KMS, json_client
    from linktoken.problems import Problem

    vault = TokenVault(json_client(KMS, world.env), world.key_id)
    assert vault.open(vault.seal("access-sandbox-y", "a", "o"), "a", "o") == "access-sandbox-y"
    with pytest.raises(Problem) as refused:
        vault.open(base64.b64encode(sealed).decode(), "b", "o")
    assert refused.value.code == "INTERNAL_ERROR"
    assert "copied or altered" in str(refused.value.cause)


def test_an_item_that_cannot_be_sealed_is_removed_at_plaid(world: World) -> None:
    broken = build_items_container({**world.env, "ITEMS_KEY_ID": "alias/does-not-exist"})
    token = world.public_token("ins_8")
    body = {
        "public_token": token,
        "metadata": {"institution": {"institution_id": "ins_8", "name": "B"}, "accounts": ACCOUNTS},
    }
    answer = handle_exchange(event("POST", "/items", "user-orphan", body), LambdaContext(), broken)
    assert answer["statusCode"] == 500
    assert body_of(answer)["code"] == "MISCONFIGURED"
    exchanged = [v for v in world.plaid.items() if v.institution_id == "ins_8"]
    assert [v.removed for v in exchanged] == [True]


def test_a_secret_without_an_hmac_key_is_misconfigured_for_items(world: World) -> None:
    world.client("secretsmanager").create_secret(
        Name="items/nokey", SecretString=json.dumps({"client_id": CLIENT_ID, "secret": SECRET})
    )
    container = build_items_container({**world.env, "PLAID_SECRET_ID": "items/nokey"})
    answer = world.list("someone", container)
    assert answer["statusCode"] == 500
    assert body_of(answer)["code"] == "MISCONFIGURED"
