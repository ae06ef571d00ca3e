"""The web example against the real `make serve` (handler, local authorizer, Plaid stand-in)
in headless Chromium: the flow a developer sees at http://127.0.0.1:3000/.

Failures are produced the way they happen for real: a bad bearer token for the local
authorizer, and Plaid errors scripted into the Plaid stand-in through its control endpoint,
which the real handler turns into its problem documents.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.request
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


def test_the_whole_flow_against_make_serve(tab: Tab) -> None:
    tab.open()
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
    tab.choose("Link an account (onSuccess)")
    tab.wait_state("success")
    screenshot(tab.page, "serve-success")
    tab.assert_clean()


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
