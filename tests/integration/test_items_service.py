"""The Items flow through the real handlers (exchange_app, items_app, app in update mode),
against moto's server (Secrets Manager, DynamoDB, KMS) and the Plaid stand-in over loopback."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest

from infra.doubles.lambda_runtime import LambdaContext
from plaiditems.container import build_items_container
from plaiditems.endpoint import handle_exchange
from tests.helpers_items import (
    ACCOUNTS,
    CLIENT_ID,
    INSTITUTION,
    SECRET,
    World,
    body_of,
    event,
    exchange_context,
    items_world,
)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with items_world() as built:
        yield built


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
    from linktoken.aws_clients import KMS, json_client
    from linktoken.problems import Problem
    from plaiditems.vault import TokenVault

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
    answer = handle_exchange(
        event("POST", "/items", "user-orphan", body), exchange_context(), broken
    )
    assert answer["statusCode"] == 500
    assert body_of(answer)["code"] == "MISCONFIGURED"
    exchanged = [v for v in world.plaid.items() if v.institution_id == "ins_8"]
    assert [v.removed for v in exchanged] == [True]


def test_a_secret_without_an_hmac_key_is_misconfigured_for_items(world: World) -> None:
    secret_id = "items/nokey-" + uuid.uuid4().hex[:8]
    world.client("secretsmanager").create_secret(
        Name=secret_id, SecretString=json.dumps({"client_id": CLIENT_ID, "secret": SECRET})
    )
    container = build_items_container({**world.env, "PLAID_SECRET_ID": secret_id})
    answer = world.list("someone", container)
    assert answer["statusCode"] == 500
    assert body_of(answer)["code"] == "MISCONFIGURED"


def test_after_a_snapstart_restore_the_items_container_reads_and_connects_afresh(
    world: World,
) -> None:
    assert world.list("user-restore")["statusCode"] == 200
    service = world.items.service
    assert service is not None
    reads = service.secrets.reads
    world.items.reset()  # the after-restore hook exchange_app and items_app register
    assert service.secrets.cached is None
    assert world.list("user-restore")["statusCode"] == 200
    assert service.secrets.reads == reads + 1


def test_an_exchange_with_too_little_time_left_to_store_or_remove_its_item_is_not_started(
    world: World,
) -> None:
    token = world.public_token("ins_30")
    body = {"public_token": token, "metadata": {"institution": INSTITUTION, "accounts": ACCOUNTS}}
    exchanges = [r for r in world.plaid.requests if r.get("path") == "/item/public_token/exchange"]
    short = LambdaContext(remaining_ms=20_000)  # less than the exchange plus what follows it
    answer = handle_exchange(event("POST", "/items", "user-late", body), short, world.items)
    assert (answer["statusCode"], body_of(answer)["code"]) == (504, "UPSTREAM_TIMEOUT")
    after = [r for r in world.plaid.requests if r.get("path") == "/item/public_token/exchange"]
    assert after == exchanges  # Plaid never saw it
    assert world.exchange("user-late", token)["statusCode"] == 201  # the claim was released


def test_update_mode_offers_account_selection_when_the_item_has_new_accounts(
    world: World,
) -> None:
    item_id = body_of(world.exchange("user-accounts", world.public_token("ins_31")))["item_id"]
    dynamodb = world.client("dynamodb")
    (stored,) = [
        i
        for i in dynamodb.scan(TableName=world.table)["Items"]
        if i["sk"]["S"] == f"item#{item_id}"
    ]
    sent = []
    for health in ("healthy", "new_accounts_available"):
        dynamodb.update_item(
            TableName=world.table,
            Key={"pk": stored["pk"], "sk": stored["sk"]},
            UpdateExpression="SET health = :h",
            ExpressionAttributeValues={":h": {"S": health}},
        )
        assert world.update_token("user-accounts", item_id)["statusCode"] == 200
        (request,) = [r for r in world.plaid.requests if r.get("path") == "/link/token/create"][-1:]
        sent.append(json.loads(request["body"]).get("update"))
    assert sent == [None, {"account_selection_enabled": True}]
