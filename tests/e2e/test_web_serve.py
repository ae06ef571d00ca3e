"""The web example against the real `make serve` (handlers, local authorizer, moto's DynamoDB
and KMS, Plaid stand-in) in headless Chromium: the flow a developer sees at
http://127.0.0.1:3000/, from the link token to the Item listed, reconnected and removed.

Failures are produced the way they happen for real: a bad bearer token for the local
authorizer, Plaid errors scripted into the Plaid stand-in through its control endpoint (which
the real handlers turn into their problem documents), the same bank linked twice, and a public
token the Link stand-in makes already expired. An Item's health changes as deployed: the
stand-in's `/sandbox/item/reset_login` posts a signed ITEM ERROR webhook to make serve's
receiver, which queues it (moto's SQS) for the processor. Each test that links a bank signs
in as a user of its own: the server (and its table) is the module's.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.gateway.serve_process import ServeProcess, serve
from linktoken.plaid_errors import BY_ERROR_CODE
from tests.browser import TIMEOUT_MS, Tab, browser_tab, launch, open_context, screenshot
from tests.web_fixture_server import WebFixtureServer


@pytest.fixture(scope="module")
def served() -> Iterator[ServeProcess]:
    with serve() as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield from launch(playwright)


@pytest.fixture
def tab(browser: Any, served: ServeProcess) -> Iterator[Tab]:
    script_plaid(served, [], method="DELETE")
    context, page, watch = open_context(browser)
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield Tab(page, watch, served.url)
    finally:
        context.close()


def script_plaid(served: ServeProcess, answers: list[dict[str, Any]], method: str = "POST") -> None:
    """Queue answers in the Plaid stand-in (loopback only), through make serve's control URL."""
    assert served.control_url and served.control_url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(  # noqa: S310 - the loopback URL checked above
        served.control_url, data=json.dumps(answers).encode(), method=method
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status == 204


def plaid_error(status: int, error_type: str, error_code: str, **headers: str) -> dict[str, Any]:
    body = {
        "error_type": error_type,
        "error_code": error_code,
        "error_message": "scripted by the test",
        "display_message": None,
        "request_id": "a20988b9f1c73af",
    }
    return {"status": status, "body": body, "headers": headers}


def standin_get(served: ServeProcess, path: str) -> Any:
    """A listing of the Plaid stand-in's control server (loopback only): its requests, Items."""
    assert served.standin_url and served.standin_url.startswith("http://127.0.0.1:")
    url = served.standin_url + path
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def standin_post(served: ServeProcess, path: str) -> None:
    assert served.standin_url and served.standin_url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(  # noqa: S310 - the loopback URL checked above
        served.standin_url + path, data=b"{}", method="POST"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status == 204


def standin_item(served: ServeProcess, item_id: str) -> dict[str, Any]:
    (item,) = [i for i in standin_get(served, "/_standin/items") if i["item_id"] == item_id]
    return dict(item)


def requests_of(tab: Tab) -> list[Any]:
    """Every request the page makes from now on (Playwright's Request objects)."""
    sent: list[Any] = []

    def record(request: Any) -> None:
        sent.append(request)

    tab.page.on("request", record)
    return sent


def new_user(tab: Tab) -> str:
    """Sign the page in as a user of this test's own (empty list)."""
    sub = f"web-{uuid.uuid4().hex[:12]}"
    tab.sign_in(sub)
    assert tab.listed_items() == []
    return sub


def link_a_bank(tab: Tab, outcome: str = "Link an account (onSuccess)") -> None:
    tab.page.locator("#connect").click()
    tab.link_dialog().wait_for()
    tab.choose(outcome)


def linked_item(tab: Tab) -> str:
    """Link the stand-in's bank; its item_id once the page lists it."""
    link_a_bank(tab)
    tab.wait_state("success")
    tab.wait_listed(lambda items: len(items) == 1, "the linked bank in the list")
    return tab.listed_items()[0]["item_id"]


def test_the_whole_flow_against_make_serve(tab: Tab, served: ServeProcess) -> None:
    tab.open()
    sub = new_user(tab)
    sent = requests_of(tab)
    tab.connect()
    tab.link_dialog().wait_for()
    calls = tab.plaid_calls()
    (token,) = tab.wait_tokens(1)
    assert len(calls) == 1 and calls[0]["token"] == token
    assert token.startswith("link-sandbox-")
    # make serve says its Plaid is the stand-in: the page says so and opens the local Link
    # stand-in, strictly after the token arrived; Plaid's CDN is never asked.
    assert tab.page.is_visible("#standin-banner")
    assert tab.wait_timeline(2) == ["token-response", "standin-script-request"]
    assert tab.watch.cdn_loads == 0
    screenshot(tab.page, "serve-link-open")
    with tab.page.expect_response("**/_standin/link/complete") as completion:
        tab.choose("Link an account (onSuccess)")
    completed = completion.value.json()
    assert completed["mode"] == "new" and completed["public_token"].startswith("public-sandbox-")
    tab.wait_state("success")
    text = tab.status()
    assert "Bank account linked" in text
    assert (
        "First Platypus Bank is connected: Plaid Checking ending in 0000, Plaid Saving ending in 1111"
        in text
    )
    # POST /items got Link's onSuccess arguments exactly as the Link stand-in gave them.
    tab.wait_until(
        lambda: any(r.method == "POST" and r.url.endswith("/items") for r in sent), "POST /items"
    )
    (exchange,) = [r for r in sent if r.method == "POST" and r.url.endswith("/items")]
    assert exchange.post_data_json == {
        "public_token": completed["public_token"],
        "metadata": completed["metadata"],
    }
    assert f'"sub":"{sub}"' in _claims(exchange.headers["authorization"])
    item_id = re.search(r"item_id\n(\w+)", text)
    assert item_id, text
    tab.wait_listed(lambda items: len(items) == 1, "the linked bank in the list")
    (listed,) = tab.listed_items()
    assert (listed["item_id"], listed["health"]) == (item_id[1], "healthy")
    assert "First Platypus Bank" in listed["text"] and "Connected" in listed["text"]
    assert "Plaid Checking ending in 0000" in listed["text"]
    assert "Plaid Saving ending in 1111" in listed["text"]
    assert standin_item(served, item_id[1])["removed"] is False
    screenshot(tab.page, "serve-success")
    tab.assert_clean()


def _claims(authorization: str) -> str:
    import base64

    payload = authorization.split(" ", 1)[1].split(".")[1]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().replace(" ", "")


def test_a_bad_bearer_token_gets_the_authorizers_401(tab: Tab) -> None:
    tab.open()
    tab.page.get_by_label("Or paste a real bearer token (JWT)").fill("not-a-jwt")
    text = tab.connect_until_error()
    assert "not signed in (401 Unauthorized)" in text
    tab.assert_clean(statuses={401})


def test_plaid_rejecting_the_product_shows_the_502_with_code_and_request_id(
    tab: Tab, served: ServeProcess
) -> None:
    script_plaid(served, [plaid_error(400, "INVALID_INPUT", "INVALID_PRODUCT")])
    tab.open()
    text = tab.connect_until_error()
    assert "UPSTREAM_REJECTED" in text
    assert "a20988b9f1c73af" in text
    assert BY_ERROR_CODE["INVALID_PRODUCT"].cause in text
    request_id = text.split("request_id (for support)", 1)[1].split()[0]
    # The id the page shows is the one in the log line (read from make serve's output by a
    # thread of this process: wait for it rather than read the output at once).
    served.wait_for(re.escape(request_id))
    screenshot(tab.page, "serve-error-502")
    tab.assert_clean(statuses={502})


def test_a_rate_limited_service_is_retried_after_retry_after(
    tab: Tab, served: ServeProcess
) -> None:
    # Three rate-limited Plaid answers: the service gives up and passes Retry-After on.
    limited = plaid_error(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", **{"Retry-After": "1"})
    script_plaid(served, [limited] * 3)
    tab.open()
    tab.connect()
    tab.link_dialog().wait_for(timeout=90_000)  # the service's own retries come first
    # The browser's own timings of its two requests, not when Playwright reported them.
    first, second = tab.page.evaluate(
        "performance.getEntriesByType('resource')"
        ".filter((entry) => entry.name.endsWith('/link-token'))"
        ".map((entry) => ({status: entry.responseStatus, start: entry.startTime,"
        " end: entry.responseEnd}))"
    )
    assert (first["status"], second["status"]) == (429, 200)
    assert len(tab.plaid_calls()) == 1 and tab.plaid_calls()[0]["token"] == tab.wait_tokens(1)[0]
    # Retry-After: 1 s from the end of the 429 to the start of the retry (timer clamping aside).
    assert second["start"] - first["end"] >= 999
    tab.assert_clean(statuses={429})


def test_oauth_return_reopens_link_with_the_stored_token(tab: Tab) -> None:
    tab.open()
    sub = new_user(tab)
    tab.connect()
    # Read the token before the page navigates away (its body is gone after that).
    (token,) = tab.wait_tokens(1)
    tab.choose("Go through a bank's OAuth page")
    tab.page.wait_for_url("**/?oauth_state_id=*")
    tab.link_dialog().wait_for()
    calls = tab.plaid_calls()  # a new page load: only the re-open is recorded
    assert len(calls) == 1
    assert calls[0]["token"] == token
    assert calls[0]["receivedRedirectUri"] == tab.page.url
    assert "oauth_state_id=" in calls[0]["receivedRedirectUri"]
    assert tab.timeline.count("token-response") == 1, "no new token for a resumed session"
    screenshot(tab.page, "oauth-resumed")
    tab.choose("Link an account (onSuccess)")
    tab.wait_state("success")
    assert "oauth_state_id" not in tab.page.url
    # The same user as before the redirect: the session kept it, and the bank is theirs.
    assert tab.page.input_value("#sub") == sub
    tab.wait_listed(lambda items: len(items) == 1, "the bank linked after the OAuth return")
    tab.assert_clean()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_network_failure_is_reported(tab: Tab) -> None:
    tab.open()
    tab.set_endpoint(f"http://127.0.0.1:{_closed_port()}/link-token")
    text = tab.connect_until_error()
    assert "Could not reach the service" in text
    assert "ALLOWED_ORIGINS" in text
    screenshot(tab.page, "error-network")
    tab.assert_clean(net_errors={"ERR_CONNECTION_REFUSED"})


def test_a_page_on_an_allowed_origin_gets_its_token_through_cors(browser: Any) -> None:
    with (
        WebFixtureServer() as page_origin,  # the page, hosted on another origin
        serve({"ALLOWED_ORIGINS": page_origin.base_url}) as api,
        browser_tab(browser, page_origin.base_url) as tab,
    ):
        tab.open()
        tab.set_endpoint(api.url + "/link-token")
        tab.connect()
        tab.link_dialog().wait_for()
        assert tab.plaid_calls()[0]["token"] == tab.wait_tokens(1)[0]
        # The stand-in marker is an exposed header: readable across origins too.
        assert tab.page.is_visible("#standin-banner")
        assert page_origin.requests == [], "the token came from make serve"
        tab.assert_clean()


def test_a_page_on_an_origin_not_allowed_gets_a_cors_message(
    browser: Any, served: ServeProcess
) -> None:
    with WebFixtureServer() as page_origin, browser_tab(browser, page_origin.base_url) as tab:
        tab.open()
        tab.set_endpoint(served.url + "/link-token")
        text = tab.connect_until_error()
        assert "Could not reach the service" in text
        assert f"CORS: {page_origin.base_url} must be in its ALLOWED_ORIGINS" in text
        screenshot(tab.page, "error-cors")
        # Chromium's console line can reach the test after the page showed the error.
        tab.wait_until(
            lambda: any("CORS policy" in line for line in tab.watch.console_errors),
            "Chromium's CORS console error",
        )
        unexpected = tab.watch.unexpected_console_errors(net_errors={"ERR_FAILED"})
        assert unexpected and all("CORS policy" in line for line in unexpected), unexpected


def test_linking_the_same_bank_again_says_it_is_linked_and_adds_nothing(tab: Tab) -> None:
    tab.open()
    new_user(tab)
    item_id = linked_item(tab)
    loads = tab.list_loads()
    link_a_bank(tab)  # the stand-in links the same institution and accounts again
    tab.wait_state("duplicate")
    text = tab.status()
    assert "This bank is already linked" in text
    assert (
        "You linked First Platypus Bank before (Plaid Checking ending in 0000, Plaid Saving ending in 1111)"
        in text
    )
    assert "nothing new was added" in text
    assert f"Existing item_id\n{item_id}" in text
    assert "DUPLICATE_ITEM" in text
    assert tab.focused_id() == "status-title"
    tab.wait_list_loaded(loads)
    (listed,) = tab.listed_items()
    assert listed["item_id"] == item_id, "nothing new"
    assert tab.listed(item_id).get_attribute("aria-current") == "true", "the existing one marked"
    screenshot(tab.page, "serve-duplicate")
    tab.assert_clean(statuses={409})


def test_an_expired_public_token_says_to_open_link_again(tab: Tab) -> None:
    tab.open()
    new_user(tab)
    link_a_bank(tab, "Link an account with an expired public token (onSuccess)")
    tab.wait_state("error")
    text = tab.status()
    assert "The public token cannot be exchanged" in text  # the problem's title
    assert "INVALID_PUBLIC_TOKEN" in text
    assert "Press “Try again” to open Link again" in text
    assert tab.focused_id() == "status-title"
    assert tab.listed_items() == []
    screenshot(tab.page, "serve-invalid-public-token")
    # Opening Link again gives a new public token, exchanged at once.
    tab.page.get_by_role("button", name="Try again").click()
    tab.link_dialog().wait_for()
    tab.choose("Link an account (onSuccess)")
    tab.wait_state("success")
    tab.wait_listed(lambda items: len(items) == 1, "the bank linked on the second try")
    tab.assert_clean(statuses={400})


def webhooks_to(served: ServeProcess, item_id: str) -> list[dict[str, Any]]:
    """The webhooks the stand-in sent about one Item, oldest first."""
    sent = standin_get(served, "/_standin/webhooks")
    return [w for w in sent if w["webhook"].get("item_id") == item_id]


def refresh_until(tab: Tab, health: str, what: str) -> None:
    """Press "Refresh the list" until the page lists one Item with `health` (the webhook's
    way through the queue and the processor takes a poll or two)."""

    def listed_with_health() -> bool:
        loads = tab.list_loads()
        tab.page.get_by_role("button", name="Refresh the list").click()
        tab.wait_list_loaded(loads)
        listed = tab.listed_items()
        if len(listed) == 1 and listed[0]["health"] == health:
            return True
        tab.page.wait_for_timeout(250)
        return False

    tab.wait_until(listed_with_health, what)


def test_reset_login_webhook_shows_reconnect_and_update_mode_repairs_it(
    tab: Tab, served: ServeProcess
) -> None:
    tab.open()
    new_user(tab)
    item_id = linked_item(tab)
    # Sandbox's reset_login at the stand-in: it signs an ITEM ERROR webhook and posts it to
    # the webhook URL the Item's link token carried, make serve's own receiver.
    standin_post(served, f"/_standin/items/{item_id}/reset_login")
    assert standin_item(served, item_id)["error"] == "ITEM_LOGIN_REQUIRED"
    refresh_until(tab, "login_required", "the ITEM_LOGIN_REQUIRED webhook applied")
    (error_webhook,) = webhooks_to(served, item_id)
    assert error_webhook["url"] == f"{served.url}/webhooks/plaid"
    assert error_webhook["status"] == 200, error_webhook
    assert error_webhook["webhook"]["webhook_code"] == "ERROR"
    assert error_webhook["webhook"]["error"]["error_code"] == "ITEM_LOGIN_REQUIRED"
    (listed,) = tab.listed_items()
    assert "Needs reconnecting" in listed["text"]
    assert "log in again" in listed["text"]
    screenshot(tab.page, "serve-login-required")

    sent = requests_of(tab)
    tab.listed(item_id).get_by_role("button", name="Reconnect First Platypus Bank").click()
    tab.link_dialog().wait_for()
    tokens = tab.wait_tokens(2)
    assert tab.plaid_calls()[-1]["token"] == tokens[-1] != tokens[0]
    tab.wait_until(
        lambda: any(r.url.endswith("/link-token") for r in sent), "the update-mode POST /link-token"
    )
    (asked,) = [r for r in sent if r.url.endswith("/link-token")]
    assert asked.post_data_json == {"platform": "web", "item_id": item_id}
    # The service asked Plaid for an update-mode token: the Item's access token, no products.
    plaid_sent = [
        r["body"]
        for r in standin_get(served, "/_standin/requests")
        if r["path"] == "/link/token/create"
    ][-1]
    assert plaid_sent["access_token"] == "<redacted>"
    assert "products" not in plaid_sent
    screenshot(tab.page, "serve-reconnect-open")

    tab.choose("Link an account (onSuccess)")
    tab.wait_state("repaired")
    text = tab.status()
    assert "First Platypus Bank reconnected" in text
    assert "nothing new was linked" in text
    assert "could not check" not in text and "still reports" not in text, text
    # The page asked the service to refresh the Item from Plaid's /item/get at once, and
    # the list it then showed says the bank works again.
    refreshes = [r for r in sent if r.method == "POST" and r.url.endswith(f"/{item_id}/refresh")]
    assert len(refreshes) == 1
    assert "/item/get" in [r["path"] for r in standin_get(served, "/_standin/requests")]
    (listed,) = tab.listed_items()
    assert (listed["item_id"], listed["health"]) == (item_id, "healthy")
    assert "Connected" in listed["text"]
    assert not [r for r in sent if r.method == "POST" and r.url.endswith("/items")], (
        "update mode: nothing to exchange"
    )
    assert standin_item(served, item_id)["error"] is None, "the stand-in's Item is repaired"
    screenshot(tab.page, "serve-reconnected")
    tab.assert_clean()


def test_remove_disconnects_the_bank_and_it_leaves_the_list(tab: Tab, served: ServeProcess) -> None:
    tab.open()
    new_user(tab)
    item_id = linked_item(tab)
    tab.listed(item_id).get_by_role("button", name="Remove First Platypus Bank").click()
    tab.wait_state("removed")
    assert "First Platypus Bank removed" in tab.status()
    assert tab.focused_id() == "status-title"
    tab.wait_listed(lambda items: items == [], "the list without the removed bank")
    assert "No bank linked yet" in tab.page.inner_text("#items-status")
    assert standin_item(served, item_id)["removed"] is True, "removed at Plaid too"
    screenshot(tab.page, "serve-removed")
    tab.assert_clean()
