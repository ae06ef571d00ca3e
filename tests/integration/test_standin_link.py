"""Link's side of the Plaid stand-in: every link token it issues can be completed once, as the
user finishing Link does (`PlaidStandIn.complete_link`, the control server's
`POST /_standin/link/complete`), and make serve's same-origin route that passes a page's
completion on to it (`infra/gateway/standin_link.py`), with its guard.

Over real HTTP on loopback, with the stand-in's clock moved by the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from infra.doubles.plaid_standin import (
    LINK_ACCOUNTS,
    LINK_INSTITUTION,
    PUBLIC_TOKEN_LIFETIME,
    UPDATE_LINK_TOKEN_LIFETIME,
    LinkSessionRefused,
)
from infra.doubles.standin_control import ScriptablePlaidStandIn
from infra.gateway.apigw_event import IncomingRequest
from infra.gateway.standin_link import COMPLETE_PATH, StandInLink
from tests.conftest import CLIENT_ID, SECRET

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
MARKER = ("x-plaid-stand-in", "not-plaid; tokens work nowhere")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def standin(clock: Clock) -> Iterator[ScriptablePlaidStandIn]:
    with ScriptablePlaidStandIn(client_id=CLIENT_ID, secret=SECRET, clock=clock) as running:
        yield running


def plaid(standin: ScriptablePlaidStandIn, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    """A Plaid call as the service makes it (keys in headers)."""
    response = requests.post(
        standin.base_url + path,
        data=json.dumps(body),
        headers={
            "Content-Type": "application/json",
            "PLAID-CLIENT-ID": CLIENT_ID,
            "PLAID-SECRET": SECRET,
        },
        timeout=10,
    )
    doc: dict[str, Any] = response.json()
    return response.status_code, doc


def link_token(standin: ScriptablePlaidStandIn, **fields: Any) -> str:
    body = {
        "client_name": "Test App",
        "language": "en",
        "country_codes": ["US"],
        "user": {"client_user_id": "user-0001"},
        **fields,
    }
    if "access_token" not in fields:
        body.setdefault("products", ["transactions"])
    status, doc = plaid(standin, "/link/token/create", body)
    assert status == 200, doc
    return str(doc["link_token"])


def exchange(standin: ScriptablePlaidStandIn, public_token: str) -> tuple[int, dict[str, Any]]:
    return plaid(standin, "/item/public_token/exchange", {"public_token": public_token})


# --- PlaidStandIn.complete_link ----------------------------------------------------------------


def test_a_new_items_session_gives_an_exchangeable_public_token_and_links_metadata(
    standin: ScriptablePlaidStandIn,
) -> None:
    completed = standin.complete_link(link_token(standin), link_session_id="session-1")
    assert completed["mode"] == "new"
    assert completed["public_token"].startswith("public-sandbox-")
    metadata = completed["metadata"]
    assert metadata["institution"] == LINK_INSTITUTION
    assert metadata["link_session_id"] == "session-1"
    assert [(a["name"], a["mask"], a["type"], a["subtype"]) for a in metadata["accounts"]] == [
        (a["name"], a["mask"], a["type"], a["subtype"]) for a in LINK_ACCOUNTS
    ]
    assert all(len(a["id"]) == 37 for a in metadata["accounts"])
    assert "access" not in json.dumps(completed)
    status, doc = exchange(standin, completed["public_token"])
    assert status == 200, doc
    (item,) = standin.items()
    assert (item.item_id, item.institution_id) == (doc["item_id"], "ins_109508")


def test_a_link_token_serves_one_session_and_only_its_own_stand_ins(
    standin: ScriptablePlaidStandIn, clock: Clock
) -> None:
    token = link_token(standin)
    standin.complete_link(token)
    with pytest.raises(LinkSessionRefused) as used:
        standin.complete_link(token)
    assert used.value.status == 409
    with pytest.raises(LinkSessionRefused) as unknown:
        standin.complete_link("link-sandbox-00000000-0000-4000-8000-000000000000")
    assert unknown.value.status == 404
    old = link_token(standin, access_token=exchange_new(standin)[0])
    clock.now += UPDATE_LINK_TOKEN_LIFETIME
    with pytest.raises(LinkSessionRefused) as expired:
        standin.complete_link(old)
    assert expired.value.status == 410


def exchange_new(standin: ScriptablePlaidStandIn) -> tuple[str, str]:
    """A new Item through a completed session: (access_token, item_id)."""
    status, doc = exchange(standin, standin.complete_link(link_token(standin))["public_token"])
    assert status == 200, doc
    return str(doc["access_token"]), str(doc["item_id"])


def test_an_expired_public_token_is_plaids_invalid_public_token(
    standin: ScriptablePlaidStandIn,
) -> None:
    completed = standin.complete_link(link_token(standin), expired_public_token=True)
    status, doc = exchange(standin, completed["public_token"])
    assert (status, doc["error_code"]) == (400, "INVALID_PUBLIC_TOKEN")
    assert doc["error_message"].startswith("provided public token is expired")
    assert PUBLIC_TOKEN_LIFETIME == 30 * 60


def test_an_update_mode_session_repairs_its_item(standin: ScriptablePlaidStandIn) -> None:
    access_token, item_id = exchange_new(standin)
    standin.reset_login_item(item_id)
    assert [item.error for item in standin.items()] == ["ITEM_LOGIN_REQUIRED"]
    completed = standin.complete_link(link_token(standin, access_token=access_token))
    assert completed["mode"] == "update"
    assert [item.error for item in standin.items()] == [None]
    assert len(standin.items()) == 1, "update mode makes no Item"
    # Link gives a public token in update mode too; exchanging it (apps need not) gives the
    # Item's own access token, as Plaid's does.
    status, doc = exchange(standin, completed["public_token"])
    assert (status, doc["access_token"], doc["item_id"]) == (200, access_token, item_id)


def test_an_update_mode_session_of_a_removed_item_or_with_an_expired_token_is_refused(
    standin: ScriptablePlaidStandIn,
) -> None:
    access_token, _ = exchange_new(standin)
    update = link_token(standin, access_token=access_token)
    with pytest.raises(LinkSessionRefused) as expired:
        standin.complete_link(update, expired_public_token=True)
    assert expired.value.status == 400
    status, _doc = plaid(standin, "/item/remove", {"access_token": access_token})
    assert status == 200
    with pytest.raises(LinkSessionRefused) as removed:
        standin.complete_link(update)
    assert removed.value.status == 404


# --- the control server's routes ---------------------------------------------------------------


def control(
    standin: ScriptablePlaidStandIn, path: str, body: Any, content_type: str = "application/json"
) -> requests.Response:
    return requests.post(
        standin.base_url + path,
        data=body if isinstance(body, str) else json.dumps(body),
        headers={"Content-Type": content_type},
        timeout=10,
    )


def test_the_control_server_completes_sessions_and_lists_items_without_tokens(
    standin: ScriptablePlaidStandIn,
) -> None:
    token = link_token(standin)
    answer = control(standin, COMPLETE_PATH, {"link_token": token})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    _, doc = exchange(standin, answer.json()["public_token"])
    item_id = doc["item_id"]
    assert control(standin, f"/_standin/items/{item_id}/reset_login", {}).status_code == 204
    listing = requests.get(standin.base_url + "/_standin/items", timeout=10)
    assert listing.json() == [
        {
            "item_id": item_id,
            "institution_id": "ins_109508",
            "removed": False,
            "error": "ITEM_LOGIN_REQUIRED",
        }
    ]
    assert "access-" not in listing.text
    assert control(standin, "/_standin/items/nope/reset_login", {}).status_code == 404
    again = control(standin, COMPLETE_PATH, {"link_token": token})
    assert (again.status_code, again.text) == (
        409,
        "a link token serves one Link session: it is used",
    )


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ({"link_token": "x"}, "text/plain", 415),
        ("[]", "application/json", 400),
        ({"link_token": ""}, "application/json", 400),
        ({"link_token": "x", "outcome": "explode"}, "application/json", 400),
        ({"link_token": "x", "access_token": "y"}, "application/json", 400),
        ({"link_token": "x", "link_session_id": "a b"}, "application/json", 400),
        ({"link_token": "link-sandbox-unknown"}, "application/json", 404),
    ],
)
def test_the_control_server_refuses_malformed_completions(
    standin: ScriptablePlaidStandIn, body: Any, content_type: str, status: int
) -> None:
    assert control(standin, COMPLETE_PATH, body, content_type).status_code == status


# --- make serve's route: infra/gateway/standin_link.py ------------------------------------------

ADDRESS = ("127.0.0.1", 3000)
OWN = "127.0.0.1:3000"


def request(
    body: Any = None,
    *,
    method: str = "POST",
    path: str = COMPLETE_PATH,
    host: str = OWN,
    origin: str | None = None,
    content_type: str = "application/json",
) -> IncomingRequest:
    headers = [("Host", host), ("Content-Type", content_type)]
    if origin is not None:
        headers.append(("Origin", origin))
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return IncomingRequest(method, path, "", headers, raw, "127.0.0.1")


@pytest.fixture
def route(standin: ScriptablePlaidStandIn) -> StandInLink:
    return StandInLink(ADDRESS, standin.base_url, MARKER)


def test_the_page_completes_a_session_on_its_own_origin(
    route: StandInLink, standin: ScriptablePlaidStandIn
) -> None:
    token = link_token(standin)
    answer = route.answer(request({"link_token": token}, origin=f"http://{OWN}"))
    assert answer is not None and answer.status == 200, answer
    assert answer.header("content-type") == "application/json"
    assert answer.header("cache-control") == "no-store"
    assert answer.header(MARKER[0]) == MARKER[1]
    doc = json.loads(answer.body)
    assert set(doc) == {"mode", "public_token", "metadata"}
    assert doc["mode"] == "new"
    assert exchange(standin, doc["public_token"])[0] == 200
    # localhost on the same port is the same server; no Origin at all is curl or a test.
    other = route.answer(request({"link_token": link_token(standin)}, host="localhost:3000"))
    assert other is not None and other.status == 200


def test_other_paths_are_not_the_routes() -> None:
    route = StandInLink(ADDRESS, "http://127.0.0.1:9")
    assert route.answer(request({}, path="/items")) is None
    assert route.answer(request({}, path=COMPLETE_PATH + "/")) is None


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"host": "rebind.attacker.test:3000"}, 421),
        ({"host": "10.0.2.2:3000"}, 421),  # make serve's emulator alias: not for this route
        ({"origin": "http://app.test:5173"}, 403),  # even an ALLOWED_ORIGINS one: no CORS
        ({"origin": "null"}, 403),
        ({"method": "OPTIONS", "origin": f"http://{OWN}"}, 403),
        ({"method": "GET"}, 405),
        ({"content_type": "text/plain"}, 415),
        ({"content_type": "application/x-www-form-urlencoded"}, 415),
    ],
)
def test_the_route_refuses_what_a_foreign_page_could_send(
    route: StandInLink, standin: ScriptablePlaidStandIn, kwargs: dict[str, Any], status: int
) -> None:
    answer = route.answer(request({"link_token": link_token(standin)}, **kwargs))
    assert answer is not None and answer.status == status, answer
    assert answer.header("content-type") == "application/problem+json"
    assert json.loads(answer.body)["status"] == status
    if status == 405:
        assert answer.header("allow") == "POST"


def test_the_route_passes_on_the_stand_ins_refusals_and_bounds_the_body(
    route: StandInLink, standin: ScriptablePlaidStandIn
) -> None:
    unknown = route.answer(request({"link_token": "link-sandbox-never-issued"}))
    assert unknown is not None and unknown.status == 404
    assert json.loads(unknown.body)["detail"] == "this stand-in issued no such link token"
    large = route.answer(request(b"{" + b" " * 5000 + b"}"))
    assert large is not None and large.status == 413
    malformed = route.answer(request({"link_token": 1}))
    assert malformed is not None and malformed.status == 400


def test_a_stand_in_that_does_not_answer_is_a_502() -> None:
    route = StandInLink(ADDRESS, "http://127.0.0.1:9")  # the discard port: nothing listens
    answer = route.answer(request({"link_token": "link-sandbox-x"}))
    assert answer is not None and answer.status == 502
    assert "did not answer" in json.loads(answer.body)["detail"]
