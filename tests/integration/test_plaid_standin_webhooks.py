"""The Plaid stand-in plays Plaid's webhooks as Sandbox does, over real HTTP on loopback.

A receiver in the test (a small HTTP server on 127.0.0.1) records what the stand-in posts.
Each webhook is verified here, with PyJWT, as a receiver must: ES256 only, against the JWK
the stand-in serves at /webhook_verification_key/get, the body's SHA-256 claim, a fresh iat
(the service's own verifier is not used: it is tested against this stand-in). Each body is
compared with the one written in the test and validated against the matching `$defs` entry of
Plaid's item_webhooks.schema.json (shared/plaid, via conftest.plaid_schema).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from infra.doubles.plaid_standin import (
    FIRE_WEBHOOK_CODES,
    FIRE_WEBHOOK_TYPES,
    ITEM_LOGIN_REQUIRED_MESSAGE,
)
from infra.doubles.standin_control import ScriptablePlaidStandIn
from infra.doubles.standin_webhooks import Delivery
from tests.conftest import CLIENT_ID, SECRET, plaid_schema
from tests.helpers_plaid import assert_plaid_error, valid, valid_against

WEEK = 7 * 24 * 3600
LOGIN_REQUIRED_ERROR: dict[str, Any] = {
    "error_type": "ITEM_ERROR",
    "error_code": "ITEM_LOGIN_REQUIRED",
    "error_code_reason": None,
    "error_message": ITEM_LOGIN_REQUIRED_MESSAGE,
    "display_message": None,
    "status": 400,
    "causes": [],
    "documentation_url": "https://plaid.com/docs/errors/item/#item_login_required",
    "suggested_action": None,
}
PERMISSION_REVOKED_ERROR: dict[str, Any] = {
    "error_type": "ITEM_ERROR",
    "error_code": "USER_PERMISSION_REVOKED",
    "error_code_reason": None,
    "error_message": (
        "the holder of this account has revoked their permission for your application to access it"
    ),
    "display_message": None,
    "status": 400,
    "causes": [],
    "documentation_url": "https://plaid.com/docs/errors/item/#user_permission_revoked",
    "suggested_action": None,
}
WEBHOOK_INVALID = (
    "Webhook for this item is either not set up, or invalid. Please update the item's webhook"
    " and try again."
)


class Clock:
    """The stand-in's clock, frozen at a real moment (so an iat from it is fresh) and moved
    only by the test."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """A webhook endpoint on 127.0.0.1: records every POST, answers the statuses queued in
    `statuses` (200 once they are spent); while `hold` is clear, answers wait for it."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[Received] = []
        self.statuses: deque[int] = deque()
        self.hold = threading.Event()
        self.hold.set()
        self.on_post: Callable[[], None] = lambda: None  # run as each POST arrives
        self._tls = tls
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(
                    Received(self.path, dict(self.headers), body, time.monotonic())
                )
                receiver.on_post()
                receiver.hold.wait(10)
                status = receiver.statuses.popleft() if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}/webhooks/plaid"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(received.body) for received in self.received]

    def __enter__(self) -> Receiver:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.hold.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def standin(clock: Clock) -> Iterator[ScriptablePlaidStandIn]:
    with ScriptablePlaidStandIn(client_id=CLIENT_ID, secret=SECRET, clock=clock) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@dataclass(frozen=True)
class Linked:
    access_token: str
    item_id: str
    account_ids: list[str]


def plaid(
    standin: ScriptablePlaidStandIn,
    path: str,
    body: Any,
    keys: tuple[str, str] | None = (CLIENT_ID, SECRET),
    timeout: float = 10,
) -> tuple[int, dict[str, Any]]:
    """A Plaid call as the service makes it (keys in headers)."""
    headers = {"Content-Type": "application/json"}
    if keys:
        headers.update({"PLAID-CLIENT-ID": keys[0], "PLAID-SECRET": keys[1]})
    response = requests.post(
        standin.base_url + path, data=json.dumps(body), headers=headers, timeout=timeout
    )
    doc: dict[str, Any] = response.json()
    return response.status_code, doc


def ok(standin: ScriptablePlaidStandIn, path: str, body: Any) -> dict[str, Any]:
    status, doc = plaid(standin, path, body)
    assert status == 200, doc
    return doc


def fire(
    standin: ScriptablePlaidStandIn, item: Linked, **fields: Any
) -> tuple[int, dict[str, Any]]:
    """/sandbox/item/fire_webhook for `item` with these fields."""
    return plaid(
        standin, "/sandbox/item/fire_webhook", {"access_token": item.access_token, **fields}
    )


def fired(standin: ScriptablePlaidStandIn, item: Linked, code: str) -> dict[str, Any]:
    """/sandbox/item/fire_webhook for `item` and `code`, which must succeed."""
    status, doc = fire(standin, item, webhook_code=code)
    assert status == 200, doc
    return doc


def control(
    standin: ScriptablePlaidStandIn,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> requests.Response:
    return requests.post(
        standin.base_url + path,
        data=json.dumps(body if body is not None else {}),
        headers={"Content-Type": content_type},
        timeout=10,
    )


def link_item(standin: ScriptablePlaidStandIn, webhook: str | None) -> Linked:
    """A new Item through Link, its link token carrying `webhook`, exchanged as the service does."""
    body: dict[str, Any] = {
        "client_name": "Test App",
        "language": "en",
        "country_codes": ["US"],
        "user": {"client_user_id": "user-0001"},
        "products": ["transactions"],
    }
    if webhook is not None:
        body["webhook"] = webhook
    completed = standin.complete_link(ok(standin, "/link/token/create", body)["link_token"])
    exchanged = ok(
        standin, "/item/public_token/exchange", {"public_token": completed["public_token"]}
    )
    accounts = [account["id"] for account in completed["metadata"]["accounts"]]
    return Linked(exchanged["access_token"], exchanged["item_id"], accounts)


def sandbox_item(standin: ScriptablePlaidStandIn, webhook: str | None) -> Linked:
    """A new Item through /sandbox/public_token/create (`options.webhook`), exchanged."""
    body: dict[str, Any] = {"institution_id": "ins_109508", "initial_products": ["auth"]}
    if webhook is not None:
        body["options"] = {"webhook": webhook}
    public_token = ok(standin, "/sandbox/public_token/create", body)["public_token"]
    exchanged = ok(standin, "/item/public_token/exchange", {"public_token": public_token})
    return Linked(exchanged["access_token"], exchanged["item_id"], [])


def update_mode(standin: ScriptablePlaidStandIn, access_token: str, **fields: Any) -> None:
    """Link in update mode for the Item of `access_token`, completed by the user."""
    body = {
        "client_name": "Test App",
        "language": "en",
        "country_codes": ["US"],
        "user": {"client_user_id": "user-0001"},
        "access_token": access_token,
        **fields,
    }
    standin.complete_link(ok(standin, "/link/token/create", body)["link_token"])


def verification_key(standin: ScriptablePlaidStandIn, kid: str) -> dict[str, Any]:
    answer = ok(standin, "/webhook_verification_key/get", {"key_id": kid})
    valid(answer, "webhook_verification_key_get_response.schema.json")
    key: dict[str, Any] = answer["key"]
    return key


def verify(standin: ScriptablePlaidStandIn, received: Received) -> dict[str, Any]:
    """The claims of a webhook's Plaid-Verification, checked as a receiver must."""
    token = received.headers["Plaid-Verification"]
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["typ"]) == ("ES256", "JWT")
    jwk = verification_key(standin, header["kid"])
    assert jwk["expired_at"] is None
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["ES256"],
        leeway=60,  # clock skew, as receivers allow
    )
    assert claims["request_body_sha256"] == hashlib.sha256(received.body).hexdigest()
    assert abs(time.time() - claims["iat"]) <= 60
    return claims


def valid_webhook(body: dict[str, Any], name: str) -> None:
    """`body` is valid against Plaid's ITEM webhook schema `name` (item_webhooks.schema.json)."""
    schemas = json.loads(plaid_schema("item_webhooks.schema.json").read_text())
    valid_against(body, schemas["$defs"][name])


def assert_error(
    answer: tuple[int, dict[str, Any]], error_type: str, error_code: str, message: str | None
) -> None:
    """Plaid's error object (assert_plaid_error), valid against plaid_error.schema.json."""
    assert_plaid_error(answer, error_type, error_code, message)
    valid(answer[1], "plaid_error.schema.json")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- /sandbox/item/reset_login ---------------------------------------------------------------


def test_reset_login_sends_the_item_error_webhook_signed_like_plaid(
    standin: ScriptablePlaidStandIn, receiver: Receiver, clock: Clock
) -> None:
    item = sandbox_item(standin, receiver.url)

    ok(standin, "/sandbox/item/reset_login", {"access_token": item.access_token})

    [delivery] = standin.wait_deliveries(1)
    [received] = receiver.received
    assert received.path == "/webhooks/plaid"
    assert received.headers["Content-Type"] == "application/json"
    assert verify(standin, received)["iat"] == int(clock.now)
    expected = {
        "webhook_type": "ITEM",
        "webhook_code": "ERROR",
        "item_id": item.item_id,
        "error": LOGIN_REQUIRED_ERROR,
        "environment": "sandbox",
    }
    assert json.loads(received.body) == expected
    valid_webhook(expected, "ItemErrorWebhook")
    assert delivery == Delivery(receiver.url, expected, 1, 200, None)
    assert delivery.delivered


def test_the_webhook_is_sent_after_the_answer_not_within_it(
    standin: ScriptablePlaidStandIn, receiver: Receiver
) -> None:
    item = sandbox_item(standin, receiver.url)
    receiver.hold.clear()  # the receiver takes its time to answer

    started = time.monotonic()
    status, _ = plaid(
        standin, "/sandbox/item/reset_login", {"access_token": item.access_token}, timeout=1.5
    )

    assert status == 200
    assert time.monotonic() - started < 1.0
    assert standin.deliveries() == ()  # still under way
    receiver.hold.set()
    assert [d.status for d in standin.wait_deliveries(1)] == [200]


def test_an_item_without_a_webhook_url_is_reset_without_a_webhook(
    standin: ScriptablePlaidStandIn, receiver: Receiver
) -> None:
    silent = sandbox_item(standin, None)
    heard = sandbox_item(standin, receiver.url)

    ok(standin, "/sandbox/item/reset_login", {"access_token": silent.access_token})
    fired(standin, heard, "LOGIN_REPAIRED")

    # Deliveries keep their order: a webhook for the first reset would have come first.
    assert [d.webhook["item_id"] for d in standin.wait_deliveries(1)] == [heard.item_id]
    assert standin.items()[0].error == "ITEM_LOGIN_REQUIRED"


# --- /sandbox/item/fire_webhook --------------------------------------------------------------

FIRED: list[tuple[str, str | None, str, Callable[[Linked, float], dict[str, Any]]]] = [
    ("NEW_ACCOUNTS_AVAILABLE", None, "NewAccountsAvailableWebhook",
     lambda item, now: {"webhook_type": "ITEM", "webhook_code": "NEW_ACCOUNTS_AVAILABLE",
                        "item_id": item.item_id, "error": None, "environment": "sandbox"}),
    ("PENDING_DISCONNECT", "ITEM", "PendingDisconnectWebhook",
     lambda item, now: {"webhook_type": "ITEM", "webhook_code": "PENDING_DISCONNECT",
                        "item_id": item.item_id, "reason": "INSTITUTION_MIGRATION",
                        "disconnect_time": iso(now + WEEK), "environment": "sandbox"}),
    ("USER_PERMISSION_REVOKED", None, "UserPermissionRevokedWebhook",
     lambda item, now: {"webhook_type": "ITEM", "webhook_code": "USER_PERMISSION_REVOKED",
                        "item_id": item.item_id, "error": PERMISSION_REVOKED_ERROR,
                        "environment": "sandbox"}),
    ("USER_ACCOUNT_REVOKED", "ITEM", "UserAccountRevokedWebhook",
     lambda item, now: {"webhook_type": "ITEM", "webhook_code": "USER_ACCOUNT_REVOKED",
                        "item_id": item.item_id, "account_id": item.account_ids[0],
                        "environment": "sandbox"}),
    ("LOGIN_REPAIRED", None, "ItemLoginRepairedWebhook",
     lambda item, now: {"webhook_type": "ITEM", "webhook_code": "LOGIN_REPAIRED",
                        "item_id": item.item_id, "environment": "sandbox"}),
    ("ERROR", "ITEM", "ItemErrorWebhook",
     lambda item, now: {"webhook_type": "ITEM", "webhook_code": "ERROR", "item_id": item.item_id,
                        "error": LOGIN_REQUIRED_ERROR, "environment": "sandbox"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "webhook_type", "schema_name", "expected"), FIRED, ids=[f[0] for f in FIRED]
)
def test_fire_webhook_sends_each_item_webhook_plaid_fires(
    standin: ScriptablePlaidStandIn,
    receiver: Receiver,
    clock: Clock,
    code: str,
    webhook_type: str | None,
    schema_name: str,
    expected: Callable[[Linked, float], dict[str, Any]],
) -> None:
    item = link_item(standin, receiver.url)
    body = {"access_token": item.access_token, "webhook_code": code}
    if webhook_type:
        body["webhook_type"] = webhook_type

    answer = ok(standin, "/sandbox/item/fire_webhook", body)

    valid(answer, "sandbox_item_fire_webhook_response.schema.json")
    assert answer["webhook_fired"] is True
    [delivery] = standin.wait_deliveries(1)
    [received] = receiver.received
    verify(standin, received)
    assert json.loads(received.body) == expected(item, clock.now)
    valid_webhook(json.loads(received.body), schema_name)
    assert (delivery.attempts, delivery.status, delivery.error) == (1, 200, None)
    # Firing only sends: the Item itself is as it was.
    assert ok(standin, "/item/get", {"access_token": item.access_token})["item"]["error"] is None


@pytest.mark.parametrize(
    ("fields", "error_code", "message"),
    [
        ({}, "MISSING_FIELDS", "the following required fields are missing: webhook_code"),
        ({"webhook_code": None}, "MISSING_FIELDS",
         "the following required fields are missing: webhook_code"),
        ({"webhook_code": 7}, "INVALID_FIELD",
         "webhook_code must be a properly formatted, non-empty string"),
        ({"webhook_code": "NOPE"}, "INVALID_FIELD", None),
        ({"webhook_code": "PENDING_EXPIRATION"}, "INVALID_FIELD", None),  # not Plaid's to fire
        ({"webhook_code": "DEFAULT_UPDATE"}, "INVALID_FIELD", None),
        ({"webhook_code": "SYNC_UPDATES_AVAILABLE", "webhook_type": "TRANSACTIONS"},
         "INVALID_FIELD", None),
        ({"webhook_code": "NEW_ACCOUNTS_AVAILABLE", "webhook_type": "AUTH"}, "INVALID_FIELD",
         None),
        ({"webhook_code": "ERROR", "webhook_type": "NOPE"}, "INVALID_FIELD", None),
        ({"webhook_code": "ERROR", "webhook_type": 3}, "INVALID_FIELD",
         "webhook_type must be a properly formatted, non-empty string"),
        ({"webhook_code": "ERROR", "webhook": "http://127.0.0.1:1/"}, "UNKNOWN_FIELDS",
         "the following fields are not recognized by this endpoint: webhook"),
    ],
    ids=[
        "no-code", "null-code", "number-code", "unknown-code", "pending-expiration",
        "default-update", "transactions-type", "item-code-other-type", "unknown-type",
        "number-type", "unknown-field",
    ],
)  # fmt: skip
def test_fire_webhook_refuses_what_it_does_not_play_and_sends_nothing(
    standin: ScriptablePlaidStandIn,
    receiver: Receiver,
    fields: dict[str, Any],
    error_code: str,
    message: str | None,
) -> None:
    item = link_item(standin, receiver.url)

    answer = fire(standin, item, **fields)

    assert_error(answer, "INVALID_REQUEST", error_code, message)
    fired(standin, item, "LOGIN_REPAIRED")
    assert [d.webhook["webhook_code"] for d in standin.wait_deliveries(1)] == ["LOGIN_REPAIRED"]


def test_fire_webhook_names_what_it_plays_when_it_refuses(standin: ScriptablePlaidStandIn) -> None:
    item = link_item(standin, "http://127.0.0.1:9/webhooks/plaid")

    def refusal(**fields: Any) -> str:
        status, doc = fire(standin, item, **fields)
        assert status == 400
        return str(doc["error_message"])

    assert refusal(webhook_code="NOPE") == (
        "webhook_code must be one of AUTHORIZATION_GRANTED, DEFAULT_UPDATE, ERROR, LOGIN_REPAIRED,"
        " NEW_ACCOUNTS_AVAILABLE, PENDING_DISCONNECT, PRODUCT_READY, RECURRING_TRANSACTIONS_UPDATE,"
        " SMS_MICRODEPOSITS_VERIFICATION, SYNC_UPDATES_AVAILABLE, USER_ACCOUNT_REVOKED,"
        " USER_PERMISSION_REVOKED"
    )
    assert refusal(webhook_code="ERROR", webhook_type="NOPE") == (
        "webhook_type must be one of ASSETS, AUTH, HOLDINGS, INVESTMENTS_TRANSACTIONS, ITEM,"
        " LIABILITIES, TRANSACTIONS"
    )
    assert refusal(webhook_code="DEFAULT_UPDATE", webhook_type="TRANSACTIONS") == (
        "the stand-in fires ITEM webhooks only (ERROR, LOGIN_REPAIRED, NEW_ACCOUNTS_AVAILABLE,"
        " PENDING_DISCONNECT, USER_ACCOUNT_REVOKED, USER_PERMISSION_REVOKED),"
        " not TRANSACTIONS DEFAULT_UPDATE"
    )


def test_fire_webhook_for_an_item_without_a_webhook_url_is_sandbox_webhook_invalid(
    standin: ScriptablePlaidStandIn, receiver: Receiver
) -> None:
    silent = sandbox_item(standin, None)
    heard = link_item(standin, receiver.url)

    answer = fire(standin, silent, webhook_code="ERROR")

    assert_error(answer, "SANDBOX_ERROR", "SANDBOX_WEBHOOK_INVALID", WEBHOOK_INVALID)
    fired(standin, heard, "ERROR")
    assert [d.webhook["item_id"] for d in standin.wait_deliveries(1)] == [heard.item_id]


def test_fire_webhook_checks_the_keys_and_the_access_token(
    standin: ScriptablePlaidStandIn, receiver: Receiver
) -> None:
    item = link_item(standin, receiver.url)
    body = {"access_token": item.access_token, "webhook_code": "ERROR"}

    assert_error(
        plaid(standin, "/sandbox/item/fire_webhook", body, keys=None),
        "INVALID_REQUEST",
        "MISSING_FIELDS",
        "client_id and secret are required",
    )
    assert_error(
        plaid(standin, "/sandbox/item/fire_webhook", body, keys=(CLIENT_ID, "nope")),
        "INVALID_INPUT",
        "INVALID_API_KEYS",
        "invalid client_id or secret provided",
    )
    assert_error(
        plaid(standin, "/sandbox/item/fire_webhook", {"webhook_code": "ERROR"}),
        "INVALID_REQUEST",
        "MISSING_FIELDS",
        "the following required fields are missing: access_token",
    )
    never_issued = {**body, "access_token": "access-sandbox-6f0a1d2e-3b4c-4d5e-8f60-718293a4b5c6"}
    assert_error(
        plaid(standin, "/sandbox/item/fire_webhook", never_issued),
        "INVALID_INPUT",
        "INVALID_ACCESS_TOKEN",
        "could not find matching access token",
    )
    ok(standin, "/item/remove", {"access_token": item.access_token})
    assert_error(
        plaid(standin, "/sandbox/item/fire_webhook", body), "ITEM_ERROR", "ITEM_NOT_FOUND", None
    )
    with pytest.raises(TimeoutError):
        standin.wait_deliveries(1, timeout=0.5)  # nothing was sent
    assert receiver.received == []


def test_the_stand_in_knows_exactly_plaids_fire_webhook_values() -> None:
    schema = json.loads(plaid_schema("sandbox_item_fire_webhook_request.schema.json").read_text())
    assert set(schema["properties"]["webhook_code"]["enum"]) == FIRE_WEBHOOK_CODES
    assert set(schema["properties"]["webhook_type"]["enum"]) == FIRE_WEBHOOK_TYPES


# --- Link in update mode ---------------------------------------------------------------------


def test_completing_update_mode_repairs_the_item_and_sends_login_repaired(
    standin: ScriptablePlaidStandIn, receiver: Receiver
) -> None:
    item = link_item(standin, receiver.url)
    assert ok(standin, "/item/get", {"access_token": item.access_token})["item"]["webhook"] == (
        receiver.url  # the link token's webhook became the Item's
    )
    ok(standin, "/sandbox/item/reset_login", {"access_token": item.access_token})

    # An update-mode link token's webhook has no effect, as at Plaid.
    update_mode(standin, item.access_token, webhook="http://127.0.0.1:9/elsewhere")

    deliveries = standin.wait_deliveries(2)
    assert [d.webhook["webhook_code"] for d in deliveries] == ["ERROR", "LOGIN_REPAIRED"]
    assert [d.url for d in deliveries] == [receiver.url, receiver.url]
    repaired = {
        "webhook_type": "ITEM",
        "webhook_code": "LOGIN_REPAIRED",
        "item_id": item.item_id,
        "environment": "sandbox",
    }
    assert json.loads(receiver.received[1].body) == repaired
    valid_webhook(repaired, "ItemLoginRepairedWebhook")
    for received in receiver.received:
        verify(standin, received)
    assert ok(standin, "/item/get", {"access_token": item.access_token})["item"]["error"] is None


def test_update_mode_on_a_healthy_item_sends_nothing(
    standin: ScriptablePlaidStandIn, receiver: Receiver
) -> None:
    item = link_item(standin, receiver.url)

    update_mode(standin, item.access_token, update={"account_selection_enabled": True})
    fired(standin, item, "NEW_ACCOUNTS_AVAILABLE")

    codes = [d.webhook["webhook_code"] for d in standin.wait_deliveries(1)]
    assert codes == ["NEW_ACCOUNTS_AVAILABLE"]


def test_a_link_token_webhook_must_be_a_string(standin: ScriptablePlaidStandIn) -> None:
    body = {
        "client_name": "Test App",
        "language": "en",
        "country_codes": ["US"],
        "user": {"client_user_id": "user-0001"},
        "products": ["transactions"],
        "webhook": 5,
    }

    assert_error(
        plaid(standin, "/link/token/create", body),
        "INVALID_REQUEST",
        "INVALID_FIELD",
        "webhook must be a properly formatted, non-empty string",
    )


# --- /webhook_verification_key/get and key rotation ------------------------------------------


def test_the_verification_key_is_plaids_jwk_of_the_signing_key() -> None:
    clock = Clock()
    clock.now = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the key is made at the stand-in's clock
    with ScriptablePlaidStandIn(client_id=CLIENT_ID, secret=SECRET, clock=clock) as standin:
        kid = standin.signing_key.kid
        key = verification_key(standin, kid)

    assert {k: key[k] for k in ("alg", "crv", "kid", "kty", "use")} == {
        "alg": "ES256",
        "crv": "P-256",
        "kid": kid,
        "kty": "EC",
        "use": "sig",
    }
    assert (key["created_at"], key["expired_at"]) == (1_767_225_600, None)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key["x"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key["y"])
    assert set(key) == {"alg", "crv", "kid", "kty", "use", "x", "y", "created_at", "expired_at"}


def test_an_unknown_key_id_is_plaids_invalid_webhook_verification_key_id(
    standin: ScriptablePlaidStandIn,
) -> None:
    answer = plaid(standin, "/webhook_verification_key/get", {"key_id": "6c5516e1-not-a-kid"})

    assert_error(answer, "INVALID_INPUT", "INVALID_WEBHOOK_VERIFICATION_KEY_ID", None)


@pytest.mark.parametrize(
    ("body", "keys", "error_type", "error_code", "message"),
    [
        ({}, True, "INVALID_REQUEST", "MISSING_FIELDS",
         "the following required fields are missing: key_id"),
        ({"key_id": None}, True, "INVALID_REQUEST", "MISSING_FIELDS",
         "the following required fields are missing: key_id"),
        ({"key_id": 5}, True, "INVALID_REQUEST", "INVALID_FIELD",
         "key_id must be a properly formatted, non-empty string"),
        ({"key_id": ""}, True, "INVALID_REQUEST", "INVALID_FIELD",
         "key_id must be a properly formatted, non-empty string"),
        ({"key_id": "KID", "kid": "KID"}, True, "INVALID_REQUEST", "UNKNOWN_FIELDS",
         "the following fields are not recognized by this endpoint: kid"),
        ({"key_id": "KID"}, False, "INVALID_REQUEST", "MISSING_FIELDS",
         "client_id and secret are required"),
    ],
    ids=["no-key-id", "null-key-id", "number-key-id", "empty-key-id", "unknown-field", "no-keys"],
)  # fmt: skip
def test_the_verification_key_endpoint_refuses_what_plaid_refuses(
    standin: ScriptablePlaidStandIn,
    body: dict[str, Any],
    keys: bool,
    error_type: str,
    error_code: str,
    message: str,
) -> None:
    body = {k: standin.signing_key.kid if v == "KID" else v for k, v in body.items()}

    answer = plaid(
        standin, "/webhook_verification_key/get", body, keys=(CLIENT_ID, SECRET) if keys else None
    )

    assert_error(answer, error_type, error_code, message)


def test_a_wrong_secret_gets_no_key(standin: ScriptablePlaidStandIn) -> None:
    answer = plaid(
        standin,
        "/webhook_verification_key/get",
        {"key_id": standin.signing_key.kid},
        keys=(CLIENT_ID, "nope"),
    )

    assert_error(
        answer, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret provided"
    )


def test_rotation_signs_with_a_new_key_and_the_old_one_answers_expired(
    standin: ScriptablePlaidStandIn, receiver: Receiver, clock: Clock
) -> None:
    item = link_item(standin, receiver.url)
    fired(standin, item, "NEW_ACCOUNTS_AVAILABLE")
    standin.wait_deliveries(1)
    verify(standin, receiver.received[0])
    old_kid = jwt.get_unverified_header(receiver.received[0].headers["Plaid-Verification"])["kid"]
    created = int(clock.now)
    clock.now += 1

    new_kid = standin.rotate_key().kid
    fired(standin, item, "NEW_ACCOUNTS_AVAILABLE")
    standin.wait_deliveries(2)

    second = receiver.received[1]
    assert jwt.get_unverified_header(second.headers["Plaid-Verification"])["kid"] == new_kid
    assert new_kid != old_kid
    verify(standin, second)
    old = verification_key(standin, old_kid)  # still answered, as Plaid does
    assert (old["created_at"], old["expired_at"]) == (created, created + 1)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(second.headers["Plaid-Verification"], jwt.PyJWK(old).key, algorithms=["ES256"])


def test_the_control_route_rotates_the_key(standin: ScriptablePlaidStandIn, clock: Clock) -> None:
    old_kid = standin.signing_key.kid

    refused = control(standin, "/_standin/webhook_key/rotate", content_type="text/plain")
    assert refused.status_code == 415
    assert standin.signing_key.kid == old_kid
    rotated = control(standin, "/_standin/webhook_key/rotate")

    assert rotated.status_code == 200
    assert rotated.json() == {"key_id": standin.signing_key.kid}
    assert rotated.json()["key_id"] != old_kid
    assert verification_key(standin, old_kid)["expired_at"] == int(clock.now)
    assert verification_key(standin, rotated.json()["key_id"])["expired_at"] is None


# --- where webhooks go, and retries ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/plaid",
        "http://192.0.2.10:{port}/webhooks/plaid",
        "http://0.0.0.0:{port}/webhooks/plaid",  # reaches the receiver if sent: it must not be
        "http://127.0.0.1.nip.io:{port}/webhooks/plaid",
        "ftp://127.0.0.1:{port}/webhooks/plaid",
        "http://127.0.0.1:{port}x/webhooks/plaid",
    ],
    ids=["public-host", "private-address", "any-address", "name-of-loopback", "ftp", "bad-port"],
)
def test_a_webhook_url_that_is_not_loopback_is_never_sent_to(
    standin: ScriptablePlaidStandIn, receiver: Receiver, url: str
) -> None:
    url = url.format(port=receiver.port)
    item = sandbox_item(standin, url)

    answer = fired(standin, item, "ERROR")

    assert answer["webhook_fired"] is True  # Plaid would fire it: the stand-in will not
    [delivery] = standin.wait_deliveries(1)
    assert (delivery.url, delivery.attempts, delivery.status) == (url, 0, None)
    assert delivery.error is not None
    assert delivery.error.startswith("refused: ")
    assert not delivery.delivered
    assert receiver.received == []


def test_localhost_is_delivered_to_127_0_0_1_with_its_own_host_header(
    standin: ScriptablePlaidStandIn, receiver: Receiver
) -> None:
    url = f"http://localhost:{receiver.port}/webhooks/plaid?source=plaid"
    item = link_item(standin, url)

    fired(standin, item, "LOGIN_REPAIRED")

    assert [d.status for d in standin.wait_deliveries(1)] == [200]
    [received] = receiver.received
    assert received.path == "/webhooks/plaid?source=plaid"
    assert received.headers["Host"] == f"localhost:{receiver.port}"
    verify(standin, received)


def test_a_failing_receiver_is_retried_each_attempt_signed_afresh(
    standin: ScriptablePlaidStandIn, receiver: Receiver, clock: Clock
) -> None:
    receiver.statuses.extend([500, 503])
    start = int(clock.now)

    def one_second_later() -> None:
        clock.now += 1

    receiver.on_post = one_second_later
    item = link_item(standin, receiver.url)

    fired(standin, item, "ERROR")

    [delivery] = standin.wait_deliveries(1)
    assert (delivery.attempts, delivery.status, delivery.error) == (3, 200, None)
    assert len(receiver.received) == 3
    assert len({received.body for received in receiver.received}) == 1  # the same bytes
    iats = [verify(standin, received)["iat"] for received in receiver.received]
    assert iats == [start, start + 1, start + 2]  # signed at each attempt, not once
    arrivals = [received.at for received in receiver.received]
    assert all(later - earlier >= 0.15 for earlier, later in itertools.pairwise(arrivals))


def test_a_receiver_that_keeps_failing_gets_three_attempts(
    standin: ScriptablePlaidStandIn, receiver: Receiver
) -> None:
    receiver.statuses.extend([500, 500, 500, 500])
    item = link_item(standin, receiver.url)

    fired(standin, item, "ERROR")

    [delivery] = standin.wait_deliveries(1)
    assert (delivery.attempts, delivery.status, delivery.error) == (3, 500, "HTTP 500")
    assert not delivery.delivered
    assert len(receiver.received) == 3


def test_a_receiver_that_is_not_listening_gets_three_attempts(
    standin: ScriptablePlaidStandIn,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    item = link_item(standin, f"http://127.0.0.1:{port}/webhooks/plaid")

    started = time.monotonic()
    fired(standin, item, "ERROR")

    [delivery] = standin.wait_deliveries(1)
    assert (delivery.attempts, delivery.status) == (3, None)
    assert delivery.error is not None
    assert delivery.error.startswith("ConnectionRefusedError")
    assert time.monotonic() - started >= 0.4  # two pauses of 0.2 s between the three attempts


def test_https_receivers_are_verified_with_the_tls_context_given(
    tmp_path: Path, clock: Clock
) -> None:
    from infra.doubles.loopback import make_loopback_tls

    tls = make_loopback_tls(tmp_path)
    trusting = ssl.create_default_context(cafile=str(tls.ca_pem))
    with Receiver(tls.server_context()) as https_receiver:
        for context, expected in ((trusting, 200), (None, None)):
            with ScriptablePlaidStandIn(
                client_id=CLIENT_ID, secret=SECRET, clock=clock, webhook_tls=context
            ) as running:
                item = link_item(running, https_receiver.url)
                fired(running, item, "ERROR")
                [delivery] = running.wait_deliveries(1)
                assert delivery.status == expected, delivery.error
                if expected is None:  # the system's CAs do not know the loopback CA
                    assert delivery.error is not None
                    assert "CERTIFICATE_VERIFY_FAILED" in delivery.error
                else:
                    verify(running, https_receiver.received[-1])


# --- the control routes and the Python API ---------------------------------------------------


def test_the_control_routes_reset_repair_and_fire_by_item_id(
    standin: ScriptablePlaidStandIn, receiver: Receiver, clock: Clock
) -> None:
    item = link_item(standin, receiver.url)
    base = f"/_standin/items/{item.item_id}"

    assert control(standin, f"{base}/reset_login").status_code == 204
    assert control(standin, f"{base}/repair").status_code == 204
    expire = control(standin, f"{base}/fire_webhook", {"webhook_code": "PENDING_EXPIRATION"})
    assert expire.status_code == 204
    assert control(standin, f"{base}/fire_webhook", {"webhook_code": "NOPE"}).status_code == 400
    assert control(standin, f"{base}/fire_webhook", {"code": "ERROR"}).status_code == 400
    assert (
        control(
            standin, f"{base}/fire_webhook", {"webhook_code": "ERROR"}, content_type="text/plain"
        ).status_code
        == 415
    )
    unknown = control(
        standin, "/_standin/items/NoSuchItem000/fire_webhook", {"webhook_code": "ERROR"}
    )
    assert unknown.status_code == 404

    standin.fire_item_webhook(item.item_id, "NEW_ACCOUNTS_AVAILABLE")  # after all of them

    deliveries = standin.wait_deliveries(4)
    # In order, and nothing between: the refused requests sent nothing.
    assert [d.webhook["webhook_code"] for d in deliveries] == [
        "ERROR", "LOGIN_REPAIRED", "PENDING_EXPIRATION", "NEW_ACCOUNTS_AVAILABLE"
    ]  # fmt: skip
    expiring = {
        "webhook_type": "ITEM",
        "webhook_code": "PENDING_EXPIRATION",
        "item_id": item.item_id,
        "consent_expiration_time": iso(clock.now + WEEK),
        "environment": "sandbox",
    }
    assert json.loads(receiver.received[2].body) == expiring
    valid_webhook(expiring, "PendingExpirationWebhook")
    verify(standin, receiver.received[2])


def test_the_control_route_lists_the_deliveries_without_tokens(
    standin: ScriptablePlaidStandIn, receiver: Receiver
) -> None:
    item = link_item(standin, receiver.url)
    refused = sandbox_item(standin, "https://hooks.example.com/plaid")
    ok(standin, "/sandbox/item/reset_login", {"access_token": item.access_token})
    ok(standin, "/sandbox/item/reset_login", {"access_token": refused.access_token})
    deliveries = standin.wait_deliveries(2)

    listing = requests.get(standin.base_url + "/_standin/webhooks", timeout=10)

    assert listing.status_code == 200
    assert listing.json() == [asdict(d) for d in deliveries]
    assert [(d["url"], d["attempts"], d["status"], d["error"]) for d in listing.json()] == [
        (receiver.url, 1, 200, None),
        ("https://hooks.example.com/plaid", 0, None,
         "refused: the webhook URL names no loopback address"),
    ]  # fmt: skip
    assert listing.json()[0]["webhook"]["item_id"] == item.item_id
    assert item.access_token not in listing.text
    assert refused.access_token not in listing.text


def test_fire_item_webhook_refuses_an_unknown_item_a_code_or_a_missing_url(
    standin: ScriptablePlaidStandIn,
) -> None:
    silent = sandbox_item(standin, None)
    removed = link_item(standin, "http://127.0.0.1:9/webhooks/plaid")
    ok(standin, "/item/remove", {"access_token": removed.access_token})

    with pytest.raises(ValueError, match="no webhook URL"):
        standin.fire_item_webhook(silent.item_id, "ERROR")
    with pytest.raises(ValueError, match="webhook_code must be one of"):
        standin.fire_item_webhook(silent.item_id, "DEFAULT_UPDATE")
    with pytest.raises(LookupError):
        standin.fire_item_webhook(removed.item_id, "ERROR")
    with pytest.raises(LookupError):
        standin.fire_item_webhook("NoSuchItem000", "ERROR")
    assert standin.deliveries() == ()


def test_closing_the_stand_in_finishes_the_webhooks_already_sent(
    receiver: Receiver, clock: Clock
) -> None:
    receiver.on_post = lambda: time.sleep(0.1)  # slower than the stand-in's shutdown
    with ScriptablePlaidStandIn(client_id=CLIENT_ID, secret=SECRET, clock=clock) as running:
        item = link_item(running, receiver.url)
        for _ in range(3):
            running.fire_item_webhook(item.item_id, "NEW_ACCOUNTS_AVAILABLE")

    assert [d.status for d in running.deliveries()] == [200, 200, 200]
