"""Headless Chromium for the web example's tests: Debian's browser driven by Playwright.

Plaid's CDN script is replaced by the page's own Link stand-in (`examples/web/link-standin.js`,
which records every `Plaid.create` call); every other request that is not loopback is
aborted and recorded, so a test can assert the page reached nothing else.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / ".artifacts/web"
# Generous: a deadline only matters when something is wrong, and the tests share two cores
# with other work (every wait is for a state, never a fixed pause).
TIMEOUT_MS = 30_000
POLL_MS = 25
STORAGE_KEY = "plaid-link-session"  # examples/web/oauth.js
PLAID_CDN_SCRIPT = "https://cdn.plaid.com/link/v2/stable/link-initialize.js"
LINK_STAND_IN = ROOT / "examples/web/link-standin.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
# Records every state the page shows (examples/web/app.js sets #status[data-state]), with its
# text, as the page shows it: a test can assert on a short-lived state ("waiting") after it
# has passed, instead of racing to read it while it lasts.
STATUS_RECORDER = """(() => {
window.__statusHistory = [];
const attach = () => {
  const status = document.getElementById("status");
  if (!status) return false;
  const record = () => {
    const last = window.__statusHistory[window.__statusHistory.length - 1];
    const entry = { state: status.dataset.state, text: status.innerText };
    if (!last || last.state !== entry.state || last.text !== entry.text) window.__statusHistory.push(entry);
  };
  new MutationObserver(record).observe(status, { attributes: true, childList: true, subtree: true, characterData: true });
  record();
  return true;
};
// Attach as soon as the parser has inserted #status, before the page's scripts run.
const finder = new MutationObserver(() => attach() && finder.disconnect());
finder.observe(document, { childList: true, subtree: true });
})();
"""
# Chromium logs a failed or non-2xx fetch as a console error of its own; such a line is
# expected only for the statuses (or net errors) a test provokes on purpose.
_RESOURCE_ERROR = re.compile(
    r"^Failed to load resource: (?:the server responded with a status of (\d+)|net::(\w+))"
)


def ensure_chromium() -> Path:
    """The browser, installed from Debian if missing; skip (fail under CI) if impossible."""
    if not _runs(CHROMIUM):
        script = ROOT / "infra/scripts/install-chromium.sh"
        # The project's own script, run with the absolute bash: no untrusted input.
        result = subprocess.run(  # noqa: S603
            ["/bin/bash", str(script)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0 or not _runs(CHROMIUM):
            message = (
                f"no browser: {CHROMIUM} is missing and could not be installed "
                f"({result.stderr.strip()[-300:]}); run infra/scripts/install-chromium.sh as root"
            )
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
    return CHROMIUM


def _runs(path: Path) -> bool:
    try:
        version = subprocess.run([path, "--version"], capture_output=True, check=False)  # noqa: S603
        return version.returncode == 0
    except OSError:
        return False


@dataclass
class PageWatch:
    """What a page did that a test may assert on."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    cdn_loads: int = 0

    def unexpected_console_errors(
        self, statuses: Collection[int] = (), net_errors: Collection[str] = ()
    ) -> list[str]:
        """Console errors other than the resource failures the test provoked on purpose."""
        unexpected = list(self.page_errors)
        for text in self.console_errors:
            match = _RESOURCE_ERROR.match(text)
            if match and (
                (match[1] and int(match[1]) in statuses) or (match[2] and match[2] in net_errors)
            ):
                continue
            unexpected.append(text)
        return unexpected


def open_context(browser: Any, *, plaid_cdn: bool = True) -> tuple[Any, Any, PageWatch]:
    """A fresh context (own sessionStorage) and page, with the network fenced to loopback.
    `plaid_cdn=False` plays a browser that cannot load Plaid's script (offline, blocked)."""
    context = browser.new_context(viewport={"width": 900, "height": 1000})
    watch = PageWatch()
    stand_in = LINK_STAND_IN.read_text()

    def route(route: Any) -> None:
        url = route.request.url
        if url.split("?", 1)[0] == PLAID_CDN_SCRIPT and not plaid_cdn:
            route.abort("internetdisconnected")
        elif url.split("?", 1)[0] == PLAID_CDN_SCRIPT:
            watch.cdn_loads += 1
            route.fulfill(status=200, content_type="text/javascript", body=stand_in)
        elif urlsplit(url).hostname in LOOPBACK_HOSTS or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            watch.blocked.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", route)
    context.add_init_script(STATUS_RECORDER)
    page = context.new_page()

    def on_console(message: Any) -> None:
        if message.type == "error":
            watch.console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watch.page_errors.append(str(exc)))
    return context, page, watch


class Tab:
    """One browser tab on the example page, with the order of what the page did.

    What Playwright reports through events (responses, requests, console lines) can reach
    the test after the page has already acted on it, and a token's body is read after its
    response event: read those through `wait_tokens`, `wait_timeline` and `wait_until`,
    which wait for the count the test asserts, never right after a page state appeared.
    """

    def __init__(self, page: Any, watch: PageWatch, base_url: str) -> None:
        self.page = page
        self.watch = watch
        self.base_url = base_url
        # "token-response", "cdn-request", "standin-script-request", in the order they happened
        self.timeline: list[str] = []
        self.tokens: list[str] = []  # bodies read so far: use wait_tokens()
        self.token_statuses: list[int] = []
        page.on("response", self._on_response)
        page.on("request", self._on_request)

    def _on_response(self, response: Any) -> None:
        if response.url.endswith("/link-token") and response.request.method == "POST":
            self.timeline.append("token-response")
            self.token_statuses.append(response.status)
            if response.status == 200:
                # body() is a round trip to the browser: the test goes on meanwhile.
                self.tokens.append(json.loads(response.body())["link_token"])

    def _on_request(self, request: Any) -> None:
        if request.url.startswith(PLAID_CDN_SCRIPT):
            self.timeline.append("cdn-request")
        elif request.url.endswith("/link-standin.js"):
            self.timeline.append("standin-script-request")

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        """Poll `condition` (with a generous deadline) while Playwright delivers events."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {TIMEOUT_MS / 1000:.0f} s for {what}")
            self.page.wait_for_timeout(POLL_MS)  # lets the event handlers run

    def wait_tokens(self, count: int) -> list[str]:
        """The link tokens of the page's 200 answers, once at least `count` have been read."""
        self.wait_until(lambda: len(self.tokens) >= count, f"{count} link token(s)")
        return list(self.tokens)

    def wait_timeline(self, count: int) -> list[str]:
        """The timeline, once at least `count` entries have been recorded."""
        self.wait_until(lambda: len(self.timeline) >= count, f"{count} timeline entries")
        return list(self.timeline)

    def open(self, query: str = "") -> None:
        self.page.goto(self.base_url + "/" + query)
        self.wait_state("idle")

    def connect(self) -> None:
        """Press the button with the keyboard, as a keyboard user would."""
        button = self.page.get_by_role("button", name="Connect a bank account")
        button.focus()
        self.page.keyboard.press("Enter")

    def set_endpoint(self, url: str) -> None:
        self.page.get_by_text("Service address").click()  # opens the <details>
        self.page.get_by_label("Link token endpoint").fill(url)

    def connect_until_error(self) -> str:
        """Connect, expect a failure before Link; return the status text shown."""
        self.connect()
        self.wait_state("error")
        text = self.status()
        assert "Unable to fetch link_token" not in text
        assert self.plaid_calls() == [] and self.watch.cdn_loads == 0, "Link without a token"
        assert self.focused_id() == "status-title", "focus moves to the outcome"
        return text

    def wait_state(self, *states: str) -> None:
        selector = ", ".join(f'#status[data-state="{state}"]' for state in states)
        self.page.wait_for_selector(selector)

    def status(self) -> str:
        return str(self.page.inner_text("#status"))

    def status_history(self) -> list[dict[str, str]]:
        """Every state the page has shown since it loaded: [{state, text}, ...]."""
        history: list[dict[str, str]] = self.page.evaluate("window.__statusHistory || []")
        return history

    def notice(self) -> str | None:
        """The notice above the status, or None while it is hidden."""
        if not self.page.is_visible("#notice"):
            return None
        return str(self.page.inner_text("#notice"))

    def plaid_calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self.page.evaluate("window.__plaidCalls || []")
        return calls

    def link_dialog(self) -> Any:
        return self.page.get_by_role("dialog", name="Plaid Link stand-in (this is not Plaid)")

    def choose(self, outcome: str) -> None:
        self.link_dialog().get_by_role("button", name=outcome).click()

    def sign_in(self, sub: str) -> None:
        """Type another development user, as a person would (the page lists that user's
        banks once the field changes), and wait for that list."""
        loads = self.list_loads()
        field = self.page.get_by_label("Development user (the token's sub)")
        field.fill(sub)
        field.press("Tab")  # leaving the field is its change event
        self.wait_list_loaded(loads)

    def list_loads(self) -> int:
        """How many times the page has shown an answer of GET /items."""
        return int(self.page.get_attribute("#items", "data-loads") or 0)

    def wait_list_loaded(self, after: int) -> None:
        """Wait until the page has shown an answer of GET /items after the `after`-th."""
        self.wait_until(lambda: self.list_loads() > after, f"answer {after + 1} of GET /items")

    def listed_items(self) -> list[dict[str, str]]:
        """The banks the page lists: [{item_id, health, text}], in page order."""
        listed: list[dict[str, str]] = self.page.evaluate(
            "[...document.querySelectorAll('#item-list > li')].map((li) =>"
            " ({item_id: li.dataset.itemId, health: li.dataset.health, text: li.innerText}))"
        )
        return listed

    def wait_listed(self, condition: Callable[[list[dict[str, str]]], bool], what: str) -> None:
        """Poll the list until `condition(listed_items())` holds."""
        self.wait_until(lambda: condition(self.listed_items()), what)

    def listed(self, item_id: str) -> Any:
        """The list entry of one Item."""
        return self.page.locator(f'#item-list > li[data-item-id="{item_id}"]')

    def stored(self) -> Any:
        return self.page.evaluate(f"JSON.parse(sessionStorage.getItem('{STORAGE_KEY}'))")

    def focused_id(self) -> str:
        return str(self.page.evaluate("document.activeElement && document.activeElement.id"))

    def assert_clean(
        self, statuses: Collection[int] = (), net_errors: Collection[str] = ()
    ) -> None:
        assert self.watch.blocked == [], "the page tried to leave loopback"
        assert self.watch.unexpected_console_errors(statuses, net_errors) == []


@contextmanager
def browser_tab(browser: Any, base_url: str, *, plaid_cdn: bool = True) -> Iterator[Tab]:
    """A `Tab` on `base_url` in a fresh context, closed afterwards."""
    context, page, watch = open_context(browser, plaid_cdn=plaid_cdn)
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield Tab(page, watch, base_url)
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save the page as `.artifacts/web/<name>.png` (a CI artifact)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def launch(playwright: Any) -> Iterator[Any]:
    browser = playwright.chromium.launch(executable_path=str(ensure_chromium()), args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()
