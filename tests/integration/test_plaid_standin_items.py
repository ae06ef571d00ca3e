"""The loopback Plaid stand-in plays Plaid Sandbox's Item endpoints, over real HTTP.

Each test starts a stand-in (ScriptablePlaidStandIn, so the control routes are there too) on
a loopback port with a clock of its own, and calls it as the service does: JSON bodies,
credentials in PLAID-CLIENT-ID / PLAID-SECRET. Every success body is validated against
Plaid's own response schema (shared/plaid beside this checkout, via conftest.plaid_schema:
skipped locally without it, a failure under CI); every error is Plaid's error object, checked
field by field and against Plaid's error schema. The stand-in never hands a test an access
token except through Plaid's own API (/item/public_token/exchange).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.doubles.plaid_standin import (
    ITEM_LOGIN_REQUIRED_MESSAGE,
    ITEM_NOT_FOUND_MESSAGE,
    PRODUCTS,
    ItemView,
    PlaidStandIn,
    plaid_error,
)
from infra.doubles.standin_control import ScriptablePlaidStandIn
from tests.conftest import CLIENT_ID, SECRET, plaid_schema
from tests.helpers_plaid import assert_plaid_error, valid

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
INSTITUTION = "ins_109508"  # First Platypus Bank, a Sandbox test institution
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
WEBHOOK = "https://hooks.example.com/plaid"
NOT_FOUND_ACCESS = "could not find matching access token"
NOT_FOUND_PUBLIC = "could not find matching public token"
EXPIRED_PUBLIC = (
    "provided public token is expired. Public tokens expire 30 minutes after creation at which"
    " point they can no longer be exchanged"
)
ACCESS_FORMAT = (
    "provided access token is in an invalid format. expected format:"
    " access-<environment>-<identifier>"
)
PUBLIC_FORMAT = (
    "provided public token is in an invalid format. expected format:"
    " public-<environment>-<identifier>"
)


class Clock:
    """The stand-in's clock: seconds since the epoch, moved only by the test."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Api:
    """Plaid's API as the service calls it: POST, JSON, keys in headers."""

    def __init__(self, base_url: str, verify: str | bool = True) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only: no proxy from the environment
        self.session.verify = verify

    def post(
        self, path: str, body: Any, keys: tuple[str, str] | None = (CLIENT_ID, SECRET)
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if keys:
            headers.update({"PLAID-CLIENT-ID": keys[0], "PLAID-SECRET": keys[1]})
        response = self.session.post(
            self.base_url + path, data=json.dumps(body), headers=headers, timeout=10
        )
        assert response.headers["X-Stand-In"] == "not-plaid"
        doc: dict[str, Any] = response.json()
        return response.status_code, doc

    def ok(self, path: str, body: Any) -> dict[str, Any]:
        status, doc = self.post(path, body)
        assert status == 200, doc
        return doc

    def public_token(self, products: list[str] | None = None, **options: Any) -> str:
        body: dict[str, Any] = {
            "institution_id": INSTITUTION,
            "initial_products": products or ["transactions"],
        }
        if options:
            body["options"] = options
        token: str = self.ok("/sandbox/public_token/create", body)["public_token"]
        return token

    def exchange(self, public_token: str) -> dict[str, Any]:
        return self.ok("/item/public_token/exchange", {"public_token": public_token})

    def item(self, products: list[str] | None = None, **options: Any) -> dict[str, Any]:
        """A new exchanged Item: {access_token, item_id, request_id}."""
        return self.exchange(self.public_token(products, **options))

    def control(self, path: str, content_type: str = "application/json") -> int:
        response = self.session.post(
            self.base_url + path, data="{}", headers={"Content-Type": content_type}, timeout=10
        )
        return response.status_code


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def standin(clock: Clock) -> Iterator[ScriptablePlaidStandIn]:
    with ScriptablePlaidStandIn(client_id=CLIENT_ID, secret=SECRET, clock=clock) as running:
        yield running


@pytest.fixture
def api(standin: ScriptablePlaidStandIn) -> Api:
    return Api(standin.base_url)


def link_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_name": "Test App",
        "language": "en",
        "country_codes": ["US"],
        "user": {"client_user_id": "user-0001"},
    }
    body.update(fields)
    return body


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- /sandbox/public_token/create ------------------------------------------------------------


def test_sandbox_public_token_create_gives_a_public_sandbox_token(
    api: Api, standin: ScriptablePlaidStandIn
) -> None:
    body = api.ok(
        "/sandbox/public_token/create",
        {
            "institution_id": INSTITUTION,
            "initial_products": ["transactions", "auth"],
            "options": {"webhook": WEBHOOK, "override_username": "user_good"},
        },
    )

    valid(body, "sandbox_public_token_create_response.schema.json")
    assert re.fullmatch(f"public-sandbox-{UUID}", body["public_token"])
    assert re.fullmatch(r"[0-9a-f]{15}", body["request_id"])
    [item] = standin.items()
    assert (item.institution_id, item.removed, item.error) == (INSTITUTION, False, None)


@pytest.mark.parametrize(
    ("body", "error_type", "error_code", "message"),
    [
        ({"initial_products": ["auth"]}, "INVALID_REQUEST", "MISSING_FIELDS",
         "the following required fields are missing: institution_id"),
        ({"institution_id": INSTITUTION}, "INVALID_REQUEST", "MISSING_FIELDS",
         "the following required fields are missing: initial_products"),
        ({}, "INVALID_REQUEST", "MISSING_FIELDS",
         "the following required fields are missing: institution_id, initial_products"),
        ({"institution_id": None, "initial_products": ["auth"]}, "INVALID_REQUEST",
         "MISSING_FIELDS", "the following required fields are missing: institution_id"),
        ({"institution_id": "", "initial_products": ["auth"]}, "INVALID_REQUEST",
         "INVALID_FIELD", "institution_id must be a properly formatted, non-empty string"),
        ({"institution_id": 109508, "initial_products": ["auth"]}, "INVALID_REQUEST",
         "INVALID_FIELD", "institution_id must be a properly formatted, non-empty string"),
        ({"institution_id": INSTITUTION, "initial_products": []}, "INVALID_REQUEST",
         "INVALID_FIELD", "initial_products must be a non-empty list of products"),
        ({"institution_id": INSTITUTION, "initial_products": "auth"}, "INVALID_REQUEST",
         "INVALID_FIELD", "initial_products must be a non-empty list of products"),
        ({"institution_id": INSTITUTION, "initial_products": ["transaction"]}, "INVALID_REQUEST",
         "INVALID_FIELD", "initial_products has unknown products: transaction"),
        ({"institution_id": INSTITUTION, "initial_products": ["auth"], "options": None},
         "INVALID_REQUEST", "INVALID_FIELD", "options must be an object"),
        ({"institution_id": INSTITUTION, "initial_products": ["auth"],
          "options": {"force_error": "ITEM_LOGIN_REQUIRED"}}, "INVALID_REQUEST", "UNKNOWN_FIELDS",
         "the following fields are not recognized by this endpoint: options.force_error"),
        ({"institution_id": INSTITUTION, "initial_products": ["auth"], "options": {"webhook": 1}},
         "INVALID_REQUEST", "INVALID_FIELD",
         "options.webhook must be a properly formatted, non-empty string"),
        ({"institution_id": INSTITUTION, "initial_products": ["auth"], "products": ["auth"]},
         "INVALID_REQUEST", "UNKNOWN_FIELDS",
         "the following fields are not recognized by this endpoint: products"),
        ({"institution_id": "ins_standin", "initial_products": ["auth"]}, "INVALID_INPUT",
         "INVALID_INSTITUTION", "invalid institution_id provided"),
    ],
    ids=[
        "no-institution", "no-products", "neither", "null-institution", "empty-institution",
        "number-institution", "empty-products", "products-not-a-list", "unknown-product",
        "null-options", "unknown-option", "bad-webhook", "unknown-field", "unknown-institution",
    ],
)  # fmt: skip
def test_sandbox_public_token_create_refuses_what_plaid_refuses(
    api: Api,
    standin: ScriptablePlaidStandIn,
    body: dict[str, Any],
    error_type: str,
    error_code: str,
    message: str,
) -> None:
    assert_plaid_error(
        api.post("/sandbox/public_token/create", body), error_type, error_code, message
    )
    assert standin.items() == ()


def test_the_stand_in_knows_exactly_plaids_products() -> None:
    schema = json.loads(plaid_schema("sandbox_public_token_create_request.schema.json").read_text())
    assert set(schema["properties"]["initial_products"]["items"]["enum"]) == PRODUCTS


# --- /item/public_token/exchange -------------------------------------------------------------


def test_exchange_gives_an_access_token_and_a_plaid_like_item_id(
    api: Api, standin: ScriptablePlaidStandIn
) -> None:
    body = api.exchange(api.public_token())

    valid(body, "item_public_token_exchange_response.schema.json")
    assert re.fullmatch(f"access-sandbox-{UUID}", body["access_token"])
    assert re.fullmatch(r"[A-Za-z0-9]{37}", body["item_id"])
    assert [item.item_id for item in standin.items()] == [body["item_id"]]
    other = api.item()
    assert other["item_id"] != body["item_id"]
    assert other["access_token"] != body["access_token"]


@pytest.mark.parametrize(
    ("body", "error_type", "error_code", "message"),
    [
        ({}, "INVALID_REQUEST", "MISSING_FIELDS",
         "the following required fields are missing: public_token"),
        ({"public_token": ""}, "INVALID_REQUEST", "INVALID_FIELD",
         "public_token must be a properly formatted, non-empty string"),
        ({"public_token": ["public-sandbox-x"]}, "INVALID_REQUEST", "INVALID_FIELD",
         "public_token must be a properly formatted, non-empty string"),
        ({"public_token": "beb195c7ab7f2f3ed343f822250cc574"}, "INVALID_INPUT",
         "INVALID_PUBLIC_TOKEN", PUBLIC_FORMAT),
        ({"public_token": "public-sandbox-"}, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN",
         PUBLIC_FORMAT),
        ({"public_token": "access-sandbox-6f0a1d2e-3b4c-4d5e-8f60-718293a4b5c6"},
         "INVALID_INPUT", "INVALID_PUBLIC_TOKEN",
         'provided token is the wrong type. expected "public", got "access"'),
        ({"public_token": "public-production-6f0a1d2e-3b4c-4d5e-8f60-718293a4b5c6"},
         "INVALID_INPUT", "INVALID_PUBLIC_TOKEN",
         'provided public token is for the wrong Plaid environment. expected "sandbox", got "production"'),
        ({"public_token": "public-sandbox-6f0a1d2e-3b4c-4d5e-8f60-718293a4b5c6"},
         "INVALID_INPUT", "INVALID_PUBLIC_TOKEN", NOT_FOUND_PUBLIC),
        ({"public_token": "public-sandbox-x", "access_token": "access-sandbox-x"},
         "INVALID_REQUEST", "UNKNOWN_FIELDS",
         "the following fields are not recognized by this endpoint: access_token"),
    ],
    ids=["missing", "empty", "not-a-string", "malformed", "no-identifier", "wrong-type",
         "production", "unknown", "unknown-field"],
)  # fmt: skip
def test_exchange_refuses_what_plaid_refuses(
    api: Api, body: dict[str, Any], error_type: str, error_code: str, message: str
) -> None:
    assert_plaid_error(
        api.post("/item/public_token/exchange", body), error_type, error_code, message
    )


def test_a_public_token_is_exchanged_once(api: Api, standin: ScriptablePlaidStandIn) -> None:
    public_token = api.public_token()
    first = api.exchange(public_token)

    again = api.post("/item/public_token/exchange", {"public_token": public_token})

    assert_plaid_error(again, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN", NOT_FOUND_PUBLIC)
    assert "access_token" not in again[1]
    assert [item.item_id for item in standin.items()] == [first["item_id"]]
    api.ok("/item/get", {"access_token": first["access_token"]})  # the first one still works


def test_a_public_token_lives_thirty_minutes(api: Api, clock: Clock) -> None:
    young, old = api.public_token(), api.public_token()
    clock.advance(30 * 60 - 1)
    assert api.exchange(young)["access_token"]

    clock.advance(1)
    expired = api.post("/item/public_token/exchange", {"public_token": old})

    assert_plaid_error(expired, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN", EXPIRED_PUBLIC)


def test_concurrent_exchanges_of_one_public_token_give_one_access_token(
    standin: ScriptablePlaidStandIn, clock: Clock
) -> None:
    public_token = Api(standin.base_url).public_token()
    callers = [Api(standin.base_url) for _ in range(16)]
    for caller in callers:  # each connected beforehand, so all 16 requests arrive at once
        assert caller.post("/item/get", {})[0] == 400

    def slow_clock() -> float:
        # Widens the window between "not yet exchanged" and "exchanged": only the lock keeps
        # the other requests out of it.
        time.sleep(0.02)
        return clock()

    standin.clock = slow_clock
    barrier = threading.Barrier(len(callers))

    def exchange(caller: Api) -> int:
        barrier.wait()
        return caller.post("/item/public_token/exchange", {"public_token": public_token})[0]

    with ThreadPoolExecutor(len(callers)) as pool:
        statuses = sorted(pool.map(exchange, callers))

    assert statuses == [200] + [400] * 15
    assert len(standin.items()) == 1
    assert standin.connections == 1 + len(callers)


# --- /item/get -------------------------------------------------------------------------------


def test_item_get_describes_the_item_as_plaid_does(api: Api, clock: Clock) -> None:
    created_at = clock()
    exchanged = api.item(["transactions", "auth"], webhook=WEBHOOK)
    clock.advance(3600)

    body = api.ok("/item/get", {"access_token": exchanged["access_token"]})

    valid(body, "item_get_response.schema.json")
    item = body["item"]
    assert item["item_id"] == exchanged["item_id"]
    assert item["institution_id"] == INSTITUTION
    assert item["institution_name"] == "First Platypus Bank"
    assert item["webhook"] == WEBHOOK
    assert item["error"] is None
    assert item["billed_products"] == item["products"] == ["auth", "transactions"]
    assert item["consented_products"] == ["auth", "transactions"]
    assert not set(item["available_products"]) & set(item["billed_products"])
    assert "balance" in item["available_products"]
    assert item["consent_expiration_time"] is None
    assert item["update_type"] == "background"
    assert item["created_at"] == iso(created_at)
    assert body["status"]["transactions"]["last_successful_update"] == iso(created_at)
    assert body["request_id"] != exchanged["request_id"]


def test_an_item_without_a_webhook_has_a_null_one(api: Api) -> None:
    body = api.ok("/item/get", {"access_token": api.item(["auth"])["access_token"]})

    valid(body, "item_get_response.schema.json")
    assert body["item"]["webhook"] is None
    assert body["item"]["products"] == ["auth"]
    assert body["status"]["transactions"] is None


ACCESS_TOKEN_ERRORS = [
    ({}, "INVALID_REQUEST", "MISSING_FIELDS",
     "the following required fields are missing: access_token"),
    ({"access_token": ""}, "INVALID_REQUEST", "INVALID_FIELD",
     "access_token must be a properly formatted, non-empty string"),
    ({"access_token": 42}, "INVALID_REQUEST", "INVALID_FIELD",
     "access_token must be a properly formatted, non-empty string"),
    ({"access_token": "bad-access_token"}, "INVALID_INPUT", "INVALID_ACCESS_TOKEN",
     ACCESS_FORMAT),
    ({"access_token": "public-sandbox-6f0a1d2e-3b4c-4d5e-8f60-718293a4b5c6"}, "INVALID_INPUT",
     "INVALID_ACCESS_TOKEN", 'provided token is the wrong type. expected "access", got "public"'),
    ({"access_token": "access-production-6f0a1d2e-3b4c-4d5e-8f60-718293a4b5c6"},
     "INVALID_INPUT", "INVALID_ACCESS_TOKEN",
     'provided access token is for the wrong Plaid environment. expected "sandbox", got "production"'),
    ({"access_token": "access-sandbox-6f0a1d2e-3b4c-4d5e-8f60-718293a4b5c6"}, "INVALID_INPUT",
     "INVALID_ACCESS_TOKEN", NOT_FOUND_ACCESS),
]  # fmt: skip
ACCESS_TOKEN_ERROR_IDS = [
    "missing",
    "empty",
    "not-a-string",
    "malformed",
    "wrong-type",
    "production",
    "unknown",
]
ACCESS_TOKEN_PATHS = ["/item/get", "/item/remove", "/sandbox/item/reset_login"]


@pytest.mark.parametrize("path", ACCESS_TOKEN_PATHS)
@pytest.mark.parametrize(
    ("body", "error_type", "error_code", "message"), ACCESS_TOKEN_ERRORS, ids=ACCESS_TOKEN_ERROR_IDS
)
def test_item_endpoints_refuse_bad_access_tokens(
    api: Api, path: str, body: dict[str, Any], error_type: str, error_code: str, message: str
) -> None:
    api.item()  # a real Item exists: the refusals are not for want of any

    assert_plaid_error(api.post(path, body), error_type, error_code, message)


@pytest.mark.parametrize("path", ACCESS_TOKEN_PATHS)
def test_item_endpoints_refuse_fields_plaid_does_not_know(api: Api, path: str) -> None:
    access_token = api.item()["access_token"]
    body = {"access_token": access_token, "item_id": "x"}

    answer = api.post(path, body)

    assert_plaid_error(
        answer,
        "INVALID_REQUEST",
        "UNKNOWN_FIELDS",
        "the following fields are not recognized by this endpoint: item_id",
    )


# --- /item/remove ----------------------------------------------------------------------------


def test_a_removed_items_access_token_is_refused_everywhere(
    api: Api, standin: ScriptablePlaidStandIn
) -> None:
    kept, removed = api.item(), api.item()

    body = api.ok("/item/remove", {"access_token": removed["access_token"]})

    valid(body, "item_remove_response.schema.json")
    assert set(body) == {"request_id"}
    token = {"access_token": removed["access_token"]}
    for path in ACCESS_TOKEN_PATHS:  # /item/remove again included: Sandbox says the same
        assert_plaid_error(
            api.post(path, token), "ITEM_ERROR", "ITEM_NOT_FOUND", ITEM_NOT_FOUND_MESSAGE
        )
    update = api.post("/link/token/create", link_body(**token))
    assert_plaid_error(update, "ITEM_ERROR", "ITEM_NOT_FOUND", ITEM_NOT_FOUND_MESSAGE)
    assert {(i.item_id, i.removed) for i in standin.items()} == {
        (kept["item_id"], False),
        (removed["item_id"], True),
    }
    api.ok("/item/get", {"access_token": kept["access_token"]})  # only that Item went


def test_item_remove_takes_plaids_reason_fields(api: Api) -> None:
    access_token = api.item()["access_token"]
    body = {"access_token": access_token, "reason_code": "OTHER", "reason_note": "user asked"}

    valid(api.ok("/item/remove", body), "item_remove_response.schema.json")


# --- /sandbox/item/reset_login and repair ---------------------------------------------------


def test_reset_login_puts_the_item_in_item_login_required_and_repair_clears_it(
    api: Api, standin: ScriptablePlaidStandIn
) -> None:
    exchanged = api.item()
    token = {"access_token": exchanged["access_token"]}

    reset = api.ok("/sandbox/item/reset_login", token)

    valid(reset, "sandbox_item_reset_login_response.schema.json")
    assert reset["reset_login"] is True
    broken = api.ok("/item/get", token)
    valid(broken, "item_get_response.schema.json")
    valid(broken["item"]["error"], "plaid_error.schema.json")
    error = broken["item"]["error"]
    assert (error["error_type"], error["error_code"]) == ("ITEM_ERROR", "ITEM_LOGIN_REQUIRED")
    assert error["error_message"] == ITEM_LOGIN_REQUIRED_MESSAGE
    assert error["display_message"] is None
    assert [i.error for i in standin.items()] == ["ITEM_LOGIN_REQUIRED"]

    standin.repair(exchanged["access_token"])

    repaired = api.ok("/item/get", token)
    valid(repaired, "item_get_response.schema.json")
    assert repaired["item"]["error"] is None
    assert [i.error for i in standin.items()] == [None]


def test_an_item_in_login_required_can_still_be_removed(api: Api) -> None:
    token = {"access_token": api.item()["access_token"]}
    api.ok("/sandbox/item/reset_login", token)

    api.ok("/item/remove", token)

    assert_plaid_error(api.post("/item/get", token), "ITEM_ERROR", "ITEM_NOT_FOUND", None)


def test_repair_refuses_an_unknown_or_removed_access_token(api: Api, standin: PlaidStandIn) -> None:
    token = {"access_token": api.item()["access_token"]}
    api.ok("/sandbox/item/reset_login", token)
    api.ok("/item/remove", token)

    with pytest.raises(LookupError) as removed:
        standin.repair(token["access_token"])
    with pytest.raises(LookupError):
        standin.repair("access-sandbox-6f0a1d2e-3b4c-4d5e-8f60-718293a4b5c6")

    assert token["access_token"] not in str(removed.value)
    assert [i.error for i in standin.items()] == ["ITEM_LOGIN_REQUIRED"]


def test_the_control_route_repairs_an_item_by_its_id(
    api: Api, standin: ScriptablePlaidStandIn
) -> None:
    exchanged = api.item()
    token = {"access_token": exchanged["access_token"]}
    api.ok("/sandbox/item/reset_login", token)
    repair = f"/_standin/items/{exchanged['item_id']}/repair"
    before = len(standin.requests)

    assert api.control(repair, content_type="text/plain") == 415
    assert api.ok("/item/get", token)["item"]["error"]["error_code"] == "ITEM_LOGIN_REQUIRED"
    assert api.control(repair) == 204

    assert api.ok("/item/get", token)["item"]["error"] is None
    assert api.control(repair) == 204  # nothing left to repair: still fine
    assert api.control("/_standin/items/NoSuchItem000/repair") == 404
    assert [r["path"] for r in standin.requests[before:]] == ["/item/get", "/item/get"]


def test_the_control_route_does_not_repair_a_removed_item(api: Api) -> None:
    exchanged = api.item()
    api.ok("/item/remove", {"access_token": exchanged["access_token"]})

    assert api.control(f"/_standin/items/{exchanged['item_id']}/repair") == 404


def test_the_control_route_refuses_a_web_pages_request(api: Api) -> None:
    exchanged = api.item()
    token = {"access_token": exchanged["access_token"]}
    api.ok("/sandbox/item/reset_login", token)

    response = api.session.post(
        f"{api.base_url}/_standin/items/{exchanged['item_id']}/repair",
        data="{}",
        headers={"Content-Type": "application/json", "Origin": "https://evil.example"},
        timeout=10,
    )

    assert response.status_code == 403
    assert api.ok("/item/get", token)["item"]["error"]["error_code"] == "ITEM_LOGIN_REQUIRED"


# --- /link/token/create in update mode -------------------------------------------------------


def test_update_mode_link_token_for_a_known_item(api: Api, clock: Clock) -> None:
    token = {"access_token": api.item()["access_token"]}

    body = api.ok("/link/token/create", link_body(**token))

    valid(body, "link_token_create_response.schema.json")
    assert re.fullmatch(f"link-sandbox-{UUID}", body["link_token"])
    assert body["expiration"] == iso(clock() + 30 * 60)


def test_update_mode_takes_account_selection(api: Api) -> None:
    token = {"access_token": api.item()["access_token"]}
    body = link_body(update={"account_selection_enabled": True}, **token)

    valid(api.ok("/link/token/create", body), "link_token_create_response.schema.json")


def test_update_mode_is_allowed_for_an_item_in_login_required(api: Api) -> None:
    token = {"access_token": api.item()["access_token"]}
    api.ok("/sandbox/item/reset_login", token)

    body = api.ok("/link/token/create", link_body(**token))

    valid(body, "link_token_create_response.schema.json")
    assert api.ok("/item/get", token)["item"]["error"]["error_code"] == "ITEM_LOGIN_REQUIRED"


@pytest.mark.parametrize("products", [["transactions"], [], None])
def test_update_mode_refuses_products(api: Api, products: list[str] | None) -> None:
    token = {"access_token": api.item()["access_token"]}

    answer = api.post("/link/token/create", link_body(products=products, **token))

    assert_plaid_error(answer, "INVALID_REQUEST", "INVALID_FIELD", None)
    assert "products" in answer[1]["error_message"]


@pytest.mark.parametrize(
    ("update", "error_code", "message"),
    [
        ("yes", "INVALID_FIELD", "update must be an object"),
        ({"account_selection_enabled": "true"}, "INVALID_FIELD",
         "update.account_selection_enabled must be a boolean"),
        ({"account_selection": True}, "UNKNOWN_FIELDS",
         "the following fields are not recognized by this endpoint: update.account_selection"),
    ],
    ids=["not-an-object", "not-a-boolean", "unknown-key"],
)  # fmt: skip
def test_update_mode_refuses_a_bad_update_object(
    api: Api, update: Any, error_code: str, message: str
) -> None:
    token = {"access_token": api.item()["access_token"]}

    answer = api.post("/link/token/create", link_body(update=update, **token))

    assert_plaid_error(answer, "INVALID_REQUEST", error_code, message)


@pytest.mark.parametrize(
    ("body", "error_type", "error_code", "message"),
    [error for error in ACCESS_TOKEN_ERRORS if error[0]],  # update mode needs a token
    ids=ACCESS_TOKEN_ERROR_IDS[1:],
)
def test_update_mode_refuses_bad_access_tokens(
    api: Api, body: dict[str, Any], error_type: str, error_code: str, message: str
) -> None:
    api.item()

    answer = api.post("/link/token/create", link_body(**body))

    assert_plaid_error(answer, error_type, error_code, message)


def test_a_new_item_link_token_is_as_before(api: Api, clock: Clock) -> None:
    body = api.ok("/link/token/create", link_body(products=["transactions"]))

    valid(body, "link_token_create_response.schema.json")
    assert body["expiration"] == iso(clock() + 4 * 3600)
    no_products = api.post("/link/token/create", link_body())
    assert_plaid_error(
        no_products, "INVALID_REQUEST", "INVALID_FIELD", "products must be a non-empty list"
    )


# --- what every endpoint shares --------------------------------------------------------------

ENDPOINTS: dict[str, Callable[[Api], dict[str, Any]]] = {
    "/sandbox/public_token/create": lambda api: {
        "institution_id": INSTITUTION,
        "initial_products": ["auth"],
    },
    "/item/public_token/exchange": lambda api: {"public_token": api.public_token()},
    "/item/get": lambda api: {"access_token": api.item()["access_token"]},
    "/item/remove": lambda api: {"access_token": api.item()["access_token"]},
    "/sandbox/item/reset_login": lambda api: {"access_token": api.item()["access_token"]},
    "/link/token/create": lambda api: link_body(access_token=api.item()["access_token"]),
}


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_every_endpoint_checks_the_keys(
    api: Api, standin: ScriptablePlaidStandIn, path: str
) -> None:
    body = ENDPOINTS[path](api)
    before = standin.items()

    assert_plaid_error(
        api.post(path, body, keys=None),
        "INVALID_REQUEST",
        "MISSING_FIELDS",
        "client_id and secret are required",
    )
    assert_plaid_error(
        api.post(path, body, keys=(CLIENT_ID, "wrong-secret")),
        "INVALID_INPUT",
        "INVALID_API_KEYS",
        "invalid client_id or secret provided",
    )
    assert standin.items() == before  # a refused request changes nothing
    in_body = api.post(path, {**body, "client_id": CLIENT_ID, "secret": SECRET}, keys=None)
    assert in_body[0] == 200, in_body  # Plaid also takes the keys in the body


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_an_unreadable_body_is_refused(api: Api, path: str) -> None:
    response = api.session.post(
        api.base_url + path,
        data="{not json",
        headers={"PLAID-CLIENT-ID": CLIENT_ID, "PLAID-SECRET": SECRET},
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_BODY"


def test_every_error_is_plaids_error_object(api: Api) -> None:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(
        json.loads(plaid_schema("plaid_error.schema.json").read_text())
    )
    token = {"access_token": api.item()["access_token"]}
    api.ok("/item/remove", token)
    errors = [
        api.post("/sandbox/public_token/create", {"institution_id": INSTITUTION})[1],
        api.post("/item/public_token/exchange", {"public_token": "public-sandbox-nope"})[1],
        api.post("/item/get", token)[1],
        api.post("/link/token/create", link_body(products=["auth"], **token))[1],
        api.post("/item/get", token, keys=None)[1],
        api.post("/no/such/route", {})[1],
    ]

    assert [list(validator.iter_errors(error)) for error in errors] == [[]] * len(errors)


def test_items_is_a_snapshot_without_tokens(api: Api, standin: ScriptablePlaidStandIn) -> None:
    exchanged = api.item()
    api.public_token()  # created, never exchanged: an Item all the same, as at Plaid

    snapshot = standin.items()
    api.ok("/sandbox/item/reset_login", {"access_token": exchanged["access_token"]})

    assert all(isinstance(item, ItemView) for item in snapshot)
    assert [item.error for item in snapshot] == [None, None]  # taken before the reset
    assert snapshot[0].item_id == exchanged["item_id"]
    assert exchanged["access_token"] not in repr(standin.items())


def test_scripted_answers_come_first_and_leave_the_items_alone(
    api: Api, standin: ScriptablePlaidStandIn
) -> None:
    public_token = api.public_token()
    standin.script(plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR", "scripted"))

    scripted = api.post("/item/public_token/exchange", {"public_token": public_token})
    exchanged = api.exchange(public_token)  # the scripted answer did not spend the token

    assert scripted[0] == 500
    assert scripted[1]["error_message"] == "scripted"
    assert exchanged["item_id"] == standin.items()[0].item_id
    paths = [r["path"] for r in standin.requests]
    assert paths == ["/sandbox/public_token/create", *["/item/public_token/exchange"] * 2]


def test_scripted_answers_over_http_come_first_too(
    api: Api, standin: ScriptablePlaidStandIn
) -> None:
    token = {"access_token": api.item()["access_token"]}
    script = json.dumps([{"status": 200, "body": {"request_id": "scripted"}}])
    response = api.session.post(
        standin.control_url, data=script, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code == 204

    assert api.ok("/item/remove", token) == {"request_id": "scripted"}
    assert not standin.items()[0].removed  # Sandbox behaviour never ran
    assert api.ok("/item/remove", token)["request_id"] != "scripted"
    assert standin.items()[0].removed


def test_the_requests_listing_never_shows_an_access_token(
    api: Api, standin: ScriptablePlaidStandIn
) -> None:
    access_token = api.item()["access_token"]
    api.ok("/item/get", {"access_token": access_token})

    listing = api.session.get(standin.base_url + "/_standin/requests", timeout=10)

    assert listing.status_code == 200
    assert access_token not in listing.text
    assert listing.json()[-1] == {"path": "/item/get", "body": {"access_token": "<redacted>"}}


def test_items_persist_across_keep_alive_tls_and_compression(tmp_path: Path) -> None:
    pytest.importorskip("cryptography.x509", reason="cryptography (a moto dependency) is needed")
    from infra.doubles.loopback import make_loopback_tls

    tls = make_loopback_tls(tmp_path)
    with PlaidStandIn(
        client_id=CLIENT_ID, secret=SECRET, tls=tls.server_context(), compress="gzip"
    ) as running:
        api = Api(running.base_url, verify=str(tls.ca_pem))
        exchanged = api.item()
        response = api.session.post(
            running.base_url + "/item/get",
            data=json.dumps({"access_token": exchanged["access_token"]}),
            headers={"PLAID-CLIENT-ID": CLIENT_ID, "PLAID-SECRET": SECRET},
            timeout=10,
        )

        assert response.headers["Content-Encoding"] == "gzip"
        assert response.json()["item"]["item_id"] == exchanged["item_id"]
        assert running.connections == 1  # one kept-alive TLS connection for all three calls
        assert len(running.requests) == 3


def test_the_faults_double_plays_the_items_too(tmp_path: Path) -> None:
    pytest.importorskip("cryptography.x509", reason="cryptography (a moto dependency) is needed")
    from infra.doubles.loopback import make_loopback_tls
    from infra.doubles.plaid_faults import PlaidFaults

    tls = make_loopback_tls(tmp_path)
    with PlaidFaults(tls.server_context(), client_id=CLIENT_ID, secret=SECRET) as double:
        api = Api(double.base_url, verify=str(tls.ca_pem))
        exchanged = api.item()

        body = api.ok("/item/get", {"access_token": exchanged["access_token"]})

    assert body["item"]["item_id"] == exchanged["item_id"]
    assert [item.item_id for item in double.sandbox.items()] == [exchanged["item_id"]]
