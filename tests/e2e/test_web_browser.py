"""The web example (`examples/web/`) in headless Chromium, against the test fixture server.

Plaid's CDN script is replaced by the Link stand-in, which records `Plaid.create` calls; no
request leaves loopback. A screenshot of each state goes to `.artifacts/web/`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from linktoken.plaid_errors import BY_ERROR_CODE
from linktoken.problems import Problem
from tests.browser import STORAGE_KEY, Tab, browser_tab, launch, screenshot
from tests.web_fixture_server import (
    WEB_ROOT,
    WebFixtureServer,
    gateway_answer,
    item_record,
    problem_answer,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield from launch(playwright)


@pytest.fixture
def server() -> Iterator[WebFixtureServer]:
    with WebFixtureServer() as running:
        yield running


@pytest.fixture
def tab(browser: Any, server: WebFixtureServer) -> Iterator[Tab]:
    with browser_tab(browser, server.base_url) as opened:
        yield opened


def test_happy_path_creates_link_once_with_the_token_after_it_arrived(
    tab: Tab, server: WebFixtureServer
) -> None:
    tab.open()
    assert tab.plaid_calls() == [] and tab.watch.cdn_loads == 0, "Link loaded before any token"
    screenshot(tab.page, "idle")

    tab.connect()
    tab.link_dialog().wait_for()
    screenshot(tab.page, "link-open")

    calls = tab.plaid_calls()
    assert len(calls) == 1
    (token,) = tab.wait_tokens(1)
    assert calls[0]["token"] == token
    assert calls[0]["receivedRedirectUri"] is None
    assert tab.wait_timeline(2) == ["token-response", "cdn-request"]
    assert [r["sub"] for r in server.requests] == ["user-0001"]
    assert json.loads(server.requests[0]["body"]) == {"platform": "web"}
    assert tab.stored()["link_token"] == token
    assert tab.page.evaluate("localStorage.length") == 0, "the token belongs in sessionStorage"

    tab.choose("Link an account (onSuccess)")
    tab.wait_state("success")
    text = tab.status()
    assert "Bank account linked" in text
    assert (
        "First Platypus Bank is connected: Plaid Checking ending in 0000, Plaid Saving ending in 1111"
        in text
    )
    assert tab.focused_id() == "status-title"
    assert tab.stored() is None, "a used token must not be kept"
    assert len(tab.plaid_calls()) == 1
    assert len(server.requests) == 1, "one link token"
    # Link's onSuccess arguments went to POST /items exactly as the Link stand-in gave them.
    (completed,) = server.completions
    (exchange,) = [r for r in server.items_requests if r["method"] == "POST"]
    assert json.loads(exchange["body"]) == {
        "public_token": completed["public_token"],
        "metadata": completed["metadata"],
    }
    assert exchange["sub"] == "user-0001"
    (listed,) = tab.listed_items()
    assert listed["health"] == "healthy" and "First Platypus Bank" in listed["text"]
    screenshot(tab.page, "success")
    tab.assert_clean()


def test_keyboard_and_screen_reader_basics(tab: Tab) -> None:
    tab.open()
    unlabelled = tab.page.evaluate(
        "[...document.querySelectorAll('input, textarea, select')]"
        ".filter((el) => el.labels.length === 0).map((el) => el.id)"
    )
    assert unlabelled == []
    assert tab.page.get_attribute("#status", "aria-live") == "polite"
    tab.connect()
    tab.link_dialog().wait_for()
    focused = tab.page.evaluate("document.activeElement.textContent")
    assert focused == "Link an account (onSuccess)", "focus moves into the Link dialog"
    tab.page.keyboard.press("Escape")  # closes Link: onExit without an error
    tab.wait_state("exit")
    assert "Plaid Link closed" in tab.status()
    assert tab.focused_id() == "status-title"
    tab.assert_clean()


def test_api_gateway_401_says_to_sign_in_again(tab: Tab, server: WebFixtureServer) -> None:
    tab.open()
    # Not a JWT: the local authorizer answers like API Gateway's.
    tab.page.get_by_label("Or paste a real bearer token (JWT)").fill("not-a-jwt")
    text = tab.connect_until_error()
    assert "not signed in (401 Unauthorized)" in text
    assert "Sign in again" in text
    assert len(server.requests) == 1, "a 401 is not retried"
    screenshot(tab.page, "error-401")
    tab.assert_clean(statuses={401})


def rejected_for_a_product() -> Problem:
    """A 502 for a product Plaid refuses: the problem the operator-hint tests show."""
    return Problem(
        "UPSTREAM_REJECTED",
        "Plaid rejected the service's request because of this service's configuration.",
        plaid_request_id="a20988b9f1c73af",
        plaid_error_code="INVALID_PRODUCT",
    )


def test_502_shows_title_code_detail_and_request_id(tab: Tab, server: WebFixtureServer) -> None:
    problem = rejected_for_a_product()
    answer = problem_answer(problem)
    request_id = json.loads(answer.body)["request_id"]
    server.script(answer)
    tab.open()
    text = tab.connect_until_error()
    assert "Plaid rejected the service's request" in text  # the problem's title
    assert "UPSTREAM_REJECTED" in text
    assert problem.detail in text
    assert request_id in text
    assert "a20988b9f1c73af" in text
    # A service on loopback is the developer's own: the operator's cause is shown.
    assert f"Operator hint\n{BY_ERROR_CODE['INVALID_PRODUCT'].cause}" in text
    assert len(server.requests) == 1, "retryable: false means no retry"
    screenshot(tab.page, "error-502")
    tab.assert_clean(statuses={502})


DEPLOYED_API = "https://api.example.test/link-token"  # answered by the test, never resolved


@pytest.mark.parametrize(
    ("headers", "hint_shown"),
    [({}, False), ({"X-Plaid-Stand-In": "not-plaid; tokens work nowhere"}, True)],
    ids=["deployed-api", "stand-in-marker"],
)
def test_the_operator_hint_is_shown_only_for_a_development_service(
    tab: Tab, headers: dict[str, str], hint_shown: bool
) -> None:
    problem = rejected_for_a_product()
    answer = problem_answer(problem)
    request_id = json.loads(answer.body)["request_id"]
    cors = {
        "Access-Control-Allow-Origin": tab.base_url,
        "Access-Control-Expose-Headers": "retry-after,x-plaid-stand-in",
    }

    def api(route: Any) -> None:
        if route.request.method == "OPTIONS":  # the preflight: Authorization is not simple
            route.fulfill(
                status=204,
                headers={
                    **cors,
                    "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": "authorization,content-type",
                },
            )
        else:
            route.fulfill(
                status=answer.status,
                headers={**answer.headers, **cors, **headers},
                body=answer.body,
            )

    tab.page.route(DEPLOYED_API, api)
    tab.open()
    tab.set_endpoint(DEPLOYED_API)
    text = tab.connect_until_error()
    # What end users and support need is there either way.
    assert "UPSTREAM_REJECTED" in text
    assert request_id in text and "a20988b9f1c73af" in text
    assert "INVALID_PRODUCT" in text
    # The operator's cause only where the page knows the service is a development one.
    assert ("Operator hint" in text) is hint_shown
    assert (BY_ERROR_CODE["INVALID_PRODUCT"].cause in text) is hint_shown
    tab.assert_clean(statuses={502})


def test_429_with_retry_after_is_retried_after_the_wait(tab: Tab, server: WebFixtureServer) -> None:
    server.script(problem_answer(Problem("RATE_LIMITED", "Slow down.", retry_after=1)))
    tab.open()
    tab.connect()
    tab.link_dialog().wait_for()
    # The countdown lasts about a second: read it from the page's recorded states, not live.
    waiting = [entry["text"] for entry in tab.status_history() if entry["state"] == "waiting"]
    assert len(waiting) == 1 and "Attempt 2 of 3" in waiting[0], waiting
    announced = re.search(r"in (\d+\.\d) s\.", waiting[0])
    assert announced and 1.0 <= float(announced[1]) <= 1.2, "Retry-After 1 s plus up to 20 %"
    first, second = server.requests
    waited = second["at"] - first["at"]
    # Timers never fire early; the upper bound only catches a wait of the wrong order.
    assert 1.0 <= waited < 10, f"retried after {waited:.2f} s; Retry-After said 1 s"
    calls = tab.plaid_calls()
    assert len(calls) == 1 and calls[0]["token"] == tab.wait_tokens(1)[0]
    tab.assert_clean(statuses={429})


def test_api_gateway_throttling_backs_off_then_gives_up(tab: Tab, server: WebFixtureServer) -> None:
    server.script(*[gateway_answer(429, "Too Many Requests")] * 3)
    tab.open()
    text = tab.connect_until_error()
    assert "Too many requests right now (429)" in text
    assert "Tried 3 times" in text
    times = [r["at"] for r in server.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.5 and times[2] - times[1] >= 1.0, "backoff without jitter floor"
    tab.assert_clean(statuses={429})


def test_a_retry_after_beyond_the_cap_is_left_to_the_user(
    tab: Tab, server: WebFixtureServer
) -> None:
    server.script(problem_answer(Problem("RATE_LIMITED", "Slow down.", retry_after=30)))
    tab.open()
    text = tab.connect_until_error()
    assert "RATE_LIMITED" in text
    assert "asks to wait 30 s" in text
    assert len(server.requests) == 1, "no automatic wait longer than the cap"
    tab.assert_clean(statuses={429})


def test_api_gateway_500_is_not_retried_and_says_who_answered(
    tab: Tab, server: WebFixtureServer
) -> None:
    server.script(gateway_answer(500, "Internal Server Error"))
    tab.open()
    text = tab.connect_until_error()
    assert "The API answered 500 Internal Server Error" in text
    assert "Yb1xKhJ3IAMEabc=" in text  # apigw-requestid, the only id API Gateway gives
    assert "report the apigw-requestid" in text  # from docs/errors.md, via errors.json
    assert len(server.requests) == 1
    screenshot(tab.page, "error-gateway-500")
    tab.assert_clean(statuses={500})


def test_exit_with_error_shows_plaid_code_and_the_documented_fix(tab: Tab) -> None:
    fixes = json.loads((WEB_ROOT / "errors.json").read_text())["link_exit"]
    tab.open()
    tab.connect()
    tab.choose("Fail with INVALID_LINK_TOKEN (onExit)")
    tab.wait_state("exit")
    text = tab.status()
    assert "INVALID_LINK_TOKEN" in text
    assert fixes["INVALID_LINK_TOKEN"] in text
    assert "request-standin-" in text  # Link's request id, for Plaid support
    assert tab.stored() is None, "an invalid token is forgotten"
    assert tab.focused_id() == "status-title"
    screenshot(tab.page, "exit-error")

    tab.page.get_by_role("button", name="Try again").click()  # a fresh token, not the old one
    tab.link_dialog().wait_for()
    tokens = tab.wait_tokens(2)
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    assert tab.plaid_calls()[-1]["token"] == tokens[1]
    tab.assert_clean()


def test_oauth_return_with_an_expired_token_starts_again_only_after_a_click(
    tab: Tab, server: WebFixtureServer
) -> None:
    tab.open()
    tab.page.evaluate(
        f"sessionStorage.setItem('{STORAGE_KEY}', JSON.stringify("
        "{link_token: 'link-sandbox-expired', expiration: '2020-01-01T00:00:00Z'}))"
    )
    tab.page.goto(server.base_url + "/?oauth_state_id=abc")
    tab.wait_state("idle")
    notice = tab.notice()
    assert notice and "expired meanwhile" in notice and "Press the button" in notice
    assert "oauth_state_id" not in tab.page.url, "a later reload is not a return"
    assert tab.stored() is None, "the expired token is dropped"
    assert server.requests == [] and tab.plaid_calls() == [], "nothing without the user's click"

    tab.connect()
    tab.link_dialog().wait_for()
    calls = tab.plaid_calls()
    assert len(calls) == 1
    assert calls[0]["token"] == tab.wait_tokens(1)[0] != "link-sandbox-expired"
    assert calls[0]["receivedRedirectUri"] is None, "a new token starts a new session"
    assert len(server.requests) == 1
    tab.assert_clean()


def test_a_link_with_oauth_state_id_but_no_session_fetches_nothing(
    tab: Tab, server: WebFixtureServer
) -> None:
    # A crafted link to the page: no Link session of this tab went to a bank.
    tab.page.goto(server.base_url + "/?oauth_state_id=crafted")
    tab.wait_state("idle")
    notice = tab.notice()
    assert notice and "no Link session from before the redirect" in notice
    assert tab.page.get_by_role("button", name="Connect a bank account").is_enabled()
    assert "oauth_state_id" not in tab.page.url
    # The page is settled in "idle" (nothing pending): it asked for no token, loaded no Link.
    assert [entry["state"] for entry in tab.status_history()] == ["loading", "idle"]
    assert server.requests == [] and tab.timeline == []
    assert tab.plaid_calls() == [] and tab.watch.cdn_loads == 0
    tab.assert_clean()


def test_stand_in_mode_says_so_and_never_loads_plaids_cdn(browser: Any) -> None:
    with WebFixtureServer(stand_in=True) as server, browser_tab(browser, server.base_url) as tab:
        tab.open()
        assert not tab.page.is_visible("#standin-banner")
        tab.connect()
        tab.link_dialog().wait_for()
        assert tab.page.is_visible("#standin-banner")
        assert "Local Plaid stand-in in use" in tab.page.inner_text("#standin-banner")
        assert tab.watch.cdn_loads == 0
        assert tab.wait_timeline(2) == ["token-response", "standin-script-request"]
        assert tab.plaid_calls()[0]["token"] == tab.wait_tokens(1)[0]
        assert tab.stored()["stand_in"] is True
        screenshot(tab.page, "stand-in")
        tab.assert_clean()


def test_plaid_script_that_cannot_load_is_reported(browser: Any, server: WebFixtureServer) -> None:
    with browser_tab(browser, server.base_url, plaid_cdn=False) as tab:
        tab.open()
        tab.connect()
        tab.wait_state("error")
        text = tab.status()
        assert "Plaid Link could not be loaded" in text
        assert "https://cdn.plaid.com" in text  # the CSP hint
        assert tab.plaid_calls() == []
        assert tab.focused_id() == "status-title"
        tab.assert_clean(net_errors={"ERR_INTERNET_DISCONNECTED"})


@pytest.mark.parametrize(
    ("health", "label", "action"),
    [
        ("healthy", "Connected", "Repair connection"),
        ("login_required", "Needs reconnecting", "Reconnect"),
        ("pending_expiration", "Access ends soon", "Reconnect"),
        ("pending_disconnect", "Disconnecting soon", "Reconnect"),
        ("new_accounts_available", "New accounts found", "Reconnect"),
        ("revoked", "Disconnected", None),
        ("something_new", "Status unknown", "Repair connection"),
    ],
)
def test_each_health_is_said_in_words_with_the_button_that_fixes_it(
    browser: Any, health: str, label: str, action: str | None
) -> None:
    with WebFixtureServer() as server, browser_tab(browser, server.base_url) as tab:
        extra = {"consent_expiration_time": "2027-03-01T00:00:00Z"}
        server.set_items(item_record("item-1", health, **extra))
        tab.open()
        tab.wait_listed(lambda items: len(items) == 1, "the seeded Item")
        entry = tab.listed("item-1")
        text = entry.inner_text()
        assert label in text and "Plaid Checking ending in 0000 (checking)" in text
        # Words, not the API's value; only a value the page does not know is quoted as is.
        assert (f"“{health}”" in text) is (health == "something_new")
        assert "_" not in text.split("Linked ")[0] or health == "something_new"
        # What is seen ("Remove"), and the accessible name that says which bank ("Remove
        # First Platypus Bank", a visually hidden part): two Items' buttons are told apart.
        seen = [b.split("\n")[0].strip() for b in entry.get_by_role("button").all_inner_texts()]
        assert seen == ([action] if action else []) + ["Remove"]
        for label_seen in seen:
            name = f"{label_seen} First Platypus Bank"
            assert entry.get_by_role("button", name=name, exact=True).count() == 1, name
        if health == "pending_expiration":
            assert "2027" in text
        screenshot(tab.page, f"item-{health}")
        tab.assert_clean()


def test_a_link_token_the_server_did_not_issue_keeps_the_link_stand_in_open_with_why(
    tab: Tab, server: WebFixtureServer
) -> None:
    tab.open()
    tab.page.evaluate(
        f"sessionStorage.setItem('{STORAGE_KEY}', JSON.stringify("
        "{link_token: 'link-sandbox-never-issued', expiration: '2099-01-01T00:00:00Z'}))"
    )
    tab.page.goto(server.base_url + "/?oauth_state_id=abc")
    tab.link_dialog().wait_for()
    tab.choose("Link an account (onSuccess)")
    alert = tab.link_dialog().get_by_role("alert")
    alert.wait_for()
    assert "could not finish this Link session (404)" in alert.inner_text()
    assert "no such link token" in alert.inner_text()
    assert tab.link_dialog().get_by_role("button", name="Close (onExit without error)").is_enabled()
    assert [r for r in server.items_requests if r["method"] == "POST"] == [], "nothing exchanged"
    tab.assert_clean(statuses={404})


def reconnect_seeded_item(tab: Tab, server: WebFixtureServer) -> None:
    """Open the page on one Item that needs a new login and finish Link in update mode."""
    server.set_items(item_record("item-1", "login_required"))
    tab.open()
    tab.wait_listed(lambda items: len(items) == 1, "the seeded Item")
    tab.listed("item-1").get_by_role("button", name="Reconnect First Platypus Bank").click()
    tab.link_dialog().wait_for()
    assert json.loads(server.requests[-1]["body"]) == {"platform": "web", "item_id": "item-1"}


def test_update_mode_success_refreshes_the_item_from_plaid_and_lists_it_connected(
    tab: Tab, server: WebFixtureServer
) -> None:
    reconnect_seeded_item(tab, server)
    tab.choose("Link an account (onSuccess)")
    tab.wait_state("repaired")
    text = tab.status()
    assert "First Platypus Bank reconnected" in text
    assert "still reports" not in text and "could not check" not in text
    refreshes = [r for r in server.items_requests if r["method"] == "REFRESH"]
    assert [(r["item_id"], r["sub"]) for r in refreshes] == [("item-1", "user-0001")]
    assert not [r for r in server.items_requests if r["method"] == "POST"], "nothing to exchange"
    (listed,) = tab.listed_items()
    assert listed["health"] == "healthy" and "Connected" in listed["text"]
    tab.assert_clean()


def test_a_refresh_that_fails_says_the_list_follows_plaids_confirmation(
    tab: Tab, server: WebFixtureServer
) -> None:
    reconnect_seeded_item(tab, server)
    server.script_items(problem_answer(rejected_for_a_product()))  # the refresh's answer
    tab.choose("Link an account (onSuccess)")
    tab.wait_state("repaired")
    text = tab.status()
    assert "First Platypus Bank reconnected" in text
    assert "could not check it with Plaid just now (502 UPSTREAM_REJECTED)" in text
    assert "the list updates when Plaid confirms the repair" in text
    assert [r["method"] for r in server.items_requests].count("REFRESH") == 1, "502: not retried"
    (listed,) = tab.listed_items()
    assert listed["health"] == "login_required", "the stored health is shown as it is"
    screenshot(tab.page, "refresh-failed")
    tab.assert_clean(statuses={502})
