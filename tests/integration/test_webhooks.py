"""Plaid's webhooks through the real handlers: the receiver (webhook_app's container) verifying
against the stand-in's `/webhook_verification_key/get`, moto's FIFO queue, the processor
(webhook_worker_app's) applying them to the Items table, and `POST /items/{item_id}/refresh`.

A webhook Plaid did not sign, or that was changed on the way, never changes an Item; each one
Plaid signed changes it as docs/webhooks.md says, however often and in whatever order.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.doubles.lambda_runtime import LambdaContext
from infra.doubles.plaid_standin import Scripted
from infra.doubles.webhook_signer import SigningKey, hmac_with_public_key, unsigned
from linktoken.plaid_client import RetryPolicy
from plaidhooks.processor_container import build_processor_container
from plaidhooks.processor_endpoint import handle_batch
from plaidhooks.receiver_container import build_receiver_container
from plaidhooks.receiver_endpoint import handle_webhook
from plaiditems.endpoint import handle_items
from tests.conftest import Output
from tests.helpers_items import World, body_of, event, items_world, webhook_event

KEY_PATH = "/webhook_verification_key/get"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with items_world(queue_visibility_s=1) as built:
        yield built


def new_item(world: World, sub: str) -> str:
    answer = world.exchange(sub, world.public_token())
    assert answer["statusCode"] == 201, answer["body"]
    return str(body_of(answer)["item_id"])


def item_webhook(item_id: str, code: str, **more: Any) -> dict[str, Any]:
    return {
        "webhook_type": "ITEM",
        "webhook_code": code,
        "item_id": item_id,
        "environment": "sandbox",
        **more,
    }


LOGIN_REQUIRED = {
    "error": {
        "error_type": "ITEM_ERROR",
        "error_code": "ITEM_LOGIN_REQUIRED",
        "error_message": "the login details of this item have changed",
        "display_message": None,
        "status": 400,
    }
}


LATER = "2027-01-02T00:00:00Z"


def health(world: World, sub: str, item_id: str) -> dict[str, Any]:
    items = body_of(world.list(sub))["items"]
    (item,) = [i for i in items if i["item_id"] == item_id]
    return dict(item)


def deliver(world: World, webhook: dict[str, Any], iat: int | None = None) -> dict[str, Any]:
    body, verification = world.signed(webhook, iat=iat)
    return world.webhook(body, verification)


def test_a_signed_login_error_makes_the_item_login_required(world: World) -> None:
    item_id = new_item(world, "user-login")
    world.plaid.reset_login_item(item_id)  # Plaid's Item: ITEM_LOGIN_REQUIRED
    answer = deliver(world, item_webhook(item_id, "ERROR", **LOGIN_REQUIRED))
    assert answer["statusCode"] == 200, answer["body"]
    assert json.loads(answer["body"])["received"] is True
    assert health(world, "user-login", item_id)["health"] == "healthy"  # queued, not applied
    world.drain_webhooks()
    assert health(world, "user-login", item_id)["health"] == "login_required"


@pytest.mark.parametrize(
    ("code", "more", "expected", "time_field"),
    [
        ("NEW_ACCOUNTS_AVAILABLE", {}, "new_accounts_available", None),
        (
            "PENDING_EXPIRATION",
            {"consent_expiration_time": "2027-01-01T00:00:00Z"},
            "pending_expiration",
            ("consent_expiration_time", "2027-01-01T00:00:00Z"),
        ),
        (
            "PENDING_DISCONNECT",
            {"reason": "INSTITUTION_MIGRATION", "disconnect_time": "2027-01-02T00:00:00Z"},
            "pending_disconnect",
            ("disconnect_time", "2027-01-02T00:00:00Z"),
        ),
        ("USER_PERMISSION_REVOKED", {}, "revoked", None),
        ("USER_ACCOUNT_REVOKED", {"account_id": "acc-1"}, "revoked", None),
    ],
)
def test_each_item_webhook_sets_its_health(
    world: World,
    code: str,
    more: dict[str, Any],
    expected: str,
    time_field: tuple[str, str] | None,
) -> None:
    sub = f"user-{code.lower()}"
    item_id = new_item(world, sub)
    assert deliver(world, item_webhook(item_id, code, **more))["statusCode"] == 200
    world.drain_webhooks()
    item = health(world, sub, item_id)
    assert item["health"] == expected
    if time_field:
        assert item[time_field[0]] == time_field[1]


def test_login_repaired_after_login_required_is_healthy_again(world: World) -> None:
    item_id = new_item(world, "user-repaired")
    now = int(time.time())
    world.plaid.reset_login_item(item_id)
    deliver(world, item_webhook(item_id, "ERROR", **LOGIN_REQUIRED), iat=now - 20)
    world.drain_webhooks()
    assert health(world, "user-repaired", item_id)["health"] == "login_required"
    world.plaid.repair_item(item_id)
    deliver(world, item_webhook(item_id, "LOGIN_REPAIRED"), iat=now - 10)
    world.drain_webhooks()
    assert health(world, "user-repaired", item_id)["health"] == "healthy"


def test_an_older_webhook_after_a_newer_one_leaves_the_newer_state(world: World) -> None:
    item_id = new_item(world, "user-order")
    now = int(time.time())
    deliver(world, item_webhook(item_id, "PENDING_DISCONNECT", disconnect_time=LATER), iat=now - 10)
    deliver(world, item_webhook(item_id, "NEW_ACCOUNTS_AVAILABLE"), iat=now - 100)
    world.drain_webhooks()
    item = health(world, "user-order", item_id)
    assert item["health"] == "pending_disconnect"
    assert item["health_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 10))


def test_a_late_retry_of_a_login_error_leaves_the_item_healthy(
    world: World, output: Output
) -> None:
    """The login error's first delivery failed at the receiver; the user repaired the login
    in update mode; Plaid's retry, signed anew, comes after the LOGIN_REPAIRED."""
    item_id = new_item(world, "user-late-error")
    now = int(time.time())
    world.plaid.reset_login_item(item_id)
    world.plaid.repair_item(item_id)
    deliver(world, item_webhook(item_id, "LOGIN_REPAIRED"), iat=now - 10)
    world.drain_webhooks()
    deliver(world, item_webhook(item_id, "ERROR", **LOGIN_REQUIRED), iat=now)  # the retry
    world.drain_webhooks()
    assert health(world, "user-late-error", item_id)["health"] == "healthy"
    (line,) = [x for x in output.logs("webhook_applied") if x["webhook_code"] == "ERROR"]
    assert (line["outcome"], line["claimed_health"], line["health"]) == (
        "superseded",
        "login_required",
        "healthy",
    )
    assert line["plaid_request_id"], "the /item/get call is named by Plaid's request id"


def test_a_late_retry_of_login_repaired_leaves_the_item_login_required(world: World) -> None:
    """The reverse: the login was repaired, then required again; the repair's retry comes
    last. An app that showed "healthy" here would hide a broken Item from its user."""
    item_id = new_item(world, "user-late-repair")
    now = int(time.time())
    world.plaid.reset_login_item(item_id)
    deliver(world, item_webhook(item_id, "ERROR", **LOGIN_REQUIRED), iat=now - 10)
    world.drain_webhooks()
    deliver(world, item_webhook(item_id, "LOGIN_REPAIRED"), iat=now)  # the retry
    world.drain_webhooks()
    item = health(world, "user-late-repair", item_id)
    assert item["health"] == "login_required"


def test_a_login_webhook_plaid_cannot_confirm_now_comes_back_and_nothing_changes(
    world: World, output: Output
) -> None:
    item_id = new_item(world, "user-plaid-down")
    world.plaid.reset_login_item(item_id)
    deliver(world, item_webhook(item_id, "ERROR", **LOGIN_REQUIRED))  # queued: then Plaid fails
    outage = Scripted(500, {"error_code": "INTERNAL_SERVER_ERROR", "error_type": "API_ERROR"})
    world.plaid.script(*[outage] * RetryPolicy().max_attempts)  # one message's every attempt
    try:
        (first,) = world.drain_webhooks()
    finally:
        world.plaid.server.scripted.clear()  # none left for the module's other tests
    assert (first.received, first.deleted) == (1, 0), first  # back to the queue, unapplied
    assert health(world, "user-plaid-down", item_id)["health"] == "healthy"
    (failed,) = output.logs("webhook_failed")
    assert (failed["plaid_status"], failed["plaid_error_code"]) == (500, "INTERNAL_SERVER_ERROR")
    assert failed["error_code"] == "UPSTREAM_UNAVAILABLE"
    time.sleep(1.2)  # the queue's visibility timeout (queue_visibility_s=1)
    world.drain_webhooks()
    assert health(world, "user-plaid-down", item_id)["health"] == "login_required"
    assert world.dead_letters() == []


def test_a_login_webhook_with_too_little_time_left_fails_without_calling_plaid(
    world: World, output: Output
) -> None:
    """The processor keeps back WRITE_RESERVE_S for the write after Plaid's answer: with less
    left than that, it does not start the call, and the webhook comes back."""
    item_id = new_item(world, "user-no-time")
    world.plaid.reset_login_item(item_id)
    deliver(world, item_webhook(item_id, "ERROR", **LOGIN_REQUIRED))
    container = build_processor_container(world.env)
    asked = sum(1 for r in world.plaid.requests if r["path"] == "/item/get")
    (first,) = world.drain_webhooks(
        lambda event: handle_batch(event, container, LambdaContext(remaining_ms=7_000))
    )
    assert (first.received, first.deleted) == (1, 0), first
    (failed,) = output.logs("webhook_failed")
    assert (failed["error_code"], failed["cause"]) == (
        "UPSTREAM_TIMEOUT",
        "no time left in the invocation to call Plaid",
    )
    assert sum(1 for r in world.plaid.requests if r["path"] == "/item/get") == asked
    time.sleep(1.2)  # the queue's visibility timeout (queue_visibility_s=1)
    world.drain_webhooks()  # the processor's own timeout: time enough
    assert health(world, "user-no-time", item_id)["health"] == "login_required"


def test_the_same_webhook_twice_changes_nothing_the_second_time(world: World) -> None:
    item_id = new_item(world, "user-twice")
    signed_at = int(time.time()) - 30
    body, verification = world.signed(item_webhook(item_id, "NEW_ACCOUNTS_AVAILABLE"), signed_at)
    assert world.webhook(body, verification)["statusCode"] == 200
    assert world.webhook(body, verification)["statusCode"] == 200
    world.drain_webhooks()
    assert health(world, "user-twice", item_id)["health"] == "new_accounts_available"
    # Delivered again after a newer change: the queue may take it (outside its 5 minutes, or
    # signed anew); the processor's ordering keeps the newer state.
    deliver(world, item_webhook(item_id, "LOGIN_REPAIRED"), iat=signed_at + 10)
    world.drain_webhooks()
    assert world.webhook(body, verification)["statusCode"] == 200
    world.drain_webhooks()
    assert health(world, "user-twice", item_id)["health"] == "healthy"


def test_revoked_is_final(world: World) -> None:
    item_id = new_item(world, "user-revoked")
    now = int(time.time())
    deliver(world, item_webhook(item_id, "USER_PERMISSION_REVOKED"), iat=now - 30)
    world.drain_webhooks()
    asked = sum(1 for r in world.plaid.requests if r["path"] == "/item/get")
    deliver(world, item_webhook(item_id, "LOGIN_REPAIRED"), iat=now)
    world.drain_webhooks()
    assert health(world, "user-revoked", item_id)["health"] == "revoked"
    # Nothing is written over revoked, so Plaid is not asked (a revoked Item's /item/get may
    # be refused, which would send the webhook to the dead-letter queue).
    assert sum(1 for r in world.plaid.requests if r["path"] == "/item/get") == asked


def test_unknown_types_and_unknown_items_are_acknowledged_not_retried(world: World) -> None:
    item_id = new_item(world, "user-unknown")
    deliver(
        world,
        {
            "webhook_type": "TRANSACTIONS",
            "webhook_code": "SYNC_UPDATES_AVAILABLE",
            "item_id": item_id,
        },
    )
    deliver(world, item_webhook("item-nobody-has", "ERROR", **LOGIN_REQUIRED))
    outcomes = world.drain_webhooks()
    assert outcomes, "the processor ran"
    assert world.drain_webhooks() == []  # nothing came back
    assert world.dead_letters() == []
    assert health(world, "user-unknown", item_id)["health"] == "healthy"


def test_a_removed_item_is_not_revived_by_a_webhook(world: World) -> None:
    item_id = new_item(world, "user-removed")
    assert world.remove("user-removed", item_id)["statusCode"] == 204
    deliver(world, item_webhook(item_id, "NEW_ACCOUNTS_AVAILABLE"))
    world.drain_webhooks()
    assert body_of(world.list("user-removed"))["items"] == []
    assert world.drain_webhooks() == []


# ------------------------------------------------------------------ refused ---------------
def test_a_tampered_body_is_refused_and_never_queued(world: World) -> None:
    item_id = new_item(world, "user-tampered")
    body, verification = world.signed(item_webhook(item_id, "USER_PERMISSION_REVOKED"))
    tampered = body.replace(b"USER_PERMISSION_REVOKED", b"NEW_ACCOUNTS_AVAILABLE")
    answer = world.webhook(tampered, verification)
    assert answer["statusCode"] == 401
    problem = json.loads(answer["body"])
    assert problem["code"] == "WEBHOOK_UNVERIFIED"
    assert answer["headers"]["Content-Type"] == "application/problem+json"
    assert world.drain_webhooks() == []
    assert health(world, "user-tampered", item_id)["health"] == "healthy"


def test_forgeries_are_refused_and_never_queued(world: World) -> None:
    item_id = new_item(world, "user-forged")
    body = json.dumps(item_webhook(item_id, "USER_PERMISSION_REVOKED")).encode()
    stranger = SigningKey.new(kid=world.plaid.signing_key.kid)
    stale = world.plaid.signing_key.sign(body, iat=int(time.time()) - 301)
    for verification in (
        None,
        unsigned(body, world.plaid.signing_key.kid),
        hmac_with_public_key(body, world.plaid.signing_key),
        stranger.sign(body),
        stale,
    ):
        assert world.webhook(body, verification)["statusCode"] == 401
    assert world.drain_webhooks() == []
    assert health(world, "user-forged", item_id)["health"] == "healthy"


def test_an_oversized_or_non_json_body_is_refused(world: World) -> None:
    big = b'{"webhook_type":"ITEM","pad":"' + b"x" * 17_000 + b'"}'
    answer = world.webhook(big, world.plaid.signing_key.sign(big))
    assert (answer["statusCode"], json.loads(answer["body"])["code"]) == (413, "PAYLOAD_TOO_LARGE")
    text = b"not json at all"
    answer = world.webhook(text, world.plaid.signing_key.sign(text))
    assert (answer["statusCode"], json.loads(answer["body"])["code"]) == (400, "INVALID_REQUEST")
    assert world.drain_webhooks() == []


def test_a_rotated_out_key_is_refused_and_the_new_one_accepted(world: World) -> None:
    item_id = new_item(world, "user-rotation")
    old = world.plaid.signing_key
    body = json.dumps(item_webhook(item_id, "NEW_ACCOUNTS_AVAILABLE")).encode()
    old_token = old.sign(body)
    world.plaid.rotate_key()
    receiver = build_receiver_container(world.env)  # a fresh container: no key cached yet
    answer = handle_webhook(webhook_event(body, old_token), LambdaContext(10_000), receiver)
    assert answer["statusCode"] == 401
    new_token = world.plaid.signing_key.sign(body)
    answer = handle_webhook(webhook_event(body, new_token), LambdaContext(10_000), receiver)
    assert answer["statusCode"] == 200
    world.drain_webhooks()
    assert health(world, "user-rotation", item_id)["health"] == "new_accounts_available"


def test_a_flood_of_unknown_kids_makes_at_most_five_lookups_at_plaid(world: World) -> None:
    receiver = build_receiver_container(world.env)
    body = json.dumps(item_webhook("item-x", "LOGIN_REPAIRED")).encode()
    before = sum(1 for r in world.plaid.requests if r["path"] == KEY_PATH)
    statuses = []
    for _ in range(60):
        token = SigningKey.new(kid=str(uuid.uuid4())).sign(body)
        statuses.append(
            handle_webhook(webhook_event(body, token), LambdaContext(10_000), receiver)[
                "statusCode"
            ]
        )
    lookups = sum(1 for r in world.plaid.requests if r["path"] == KEY_PATH) - before
    assert lookups == 5
    assert statuses.count(401) == 5 and statuses.count(503) == 55
    assert world.drain_webhooks() == []


# ---------------------------------------------------------------- failures ---------------
def test_a_queue_that_cannot_be_reached_is_a_503_so_plaid_retries(world: World) -> None:
    env = {**world.env, "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9"}  # nothing listens
    receiver = build_receiver_container(env)
    body, verification = world.signed(item_webhook("item-y", "LOGIN_REPAIRED"))
    answer = handle_webhook(webhook_event(body, verification), LambdaContext(10_000), receiver)
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["code"] == "STORAGE_UNAVAILABLE"


def test_a_poison_message_ends_in_the_dead_letter_queue(world: World) -> None:
    sqs = world.client("sqs")
    sqs.send_message(
        QueueUrl=world.queue.url,
        MessageBody="this is no webhook",
        MessageGroupId="poison",
        MessageAttributes={"signed_at": {"DataType": "Number", "StringValue": "1"}},
    )
    deadline = time.monotonic() + 60
    while not world.dead_letters() and time.monotonic() < deadline:
        world.drain_webhooks()
        time.sleep(0.5)
    assert [json.dumps(b) for b in world.dead_letters()] == [json.dumps("this is no webhook")]


# ------------------------------------------------------------------ refresh ---------------
def refresh(world: World, sub: str, item_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = handle_items(
        event("POST", f"/items/{item_id}/refresh", sub, item_id=item_id),
        LambdaContext(),
        world.items,
    )
    return answer


def test_refresh_after_update_mode_reads_item_get(world: World, output: Output) -> None:
    item_id = new_item(world, "user-refresh")
    world.plaid.reset_login_item(item_id)
    answer = refresh(world, "user-refresh", item_id)
    assert answer["statusCode"] == 200, answer["body"]
    assert body_of(answer)["item"]["health"] == "login_required"
    world.plaid.repair_item(item_id)
    answer = refresh(world, "user-refresh", item_id)
    assert body_of(answer)["item"]["health"] == "healthy"
    line = output.logs("item_refreshed")[-1]  # Plaid's health, the one before, the one stored
    assert (line["health"], line["previous_health"], line["stored_health"]) == (
        "healthy",
        "login_required",
        "healthy",
    )
    assert line["plaid_request_id"]
    assert health(world, "user-refresh", item_id)["health"] == "healthy"
    # A webhook signed before the refresh does not undo it.
    deliver(world, item_webhook(item_id, "ERROR", **LOGIN_REQUIRED), iat=int(time.time()) - 120)
    world.drain_webhooks()
    assert health(world, "user-refresh", item_id)["health"] == "healthy"


def test_refresh_of_another_users_item_is_404(world: World) -> None:
    item_id = new_item(world, "user-owner")
    answer = refresh(world, "user-stranger", item_id)
    assert answer["statusCode"] == 404
    assert json.loads(answer["body"])["code"] == "ITEM_NOT_FOUND"
    assert refresh(world, "user-owner", "no-such-item")["statusCode"] == 404
