"""local_guard: every server the project starts on a developer's machine answers only to its
own loopback name and to no web page of another origin.

A DNS rebinding page reaches 127.0.0.1 under its own host name; a cross-site page sends its
Origin. Each server is checked over real HTTP on loopback (`make serve` itself in
tests/e2e/test_serve.py), then the guard's rules one by one.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from infra.doubles.loopback import make_loopback_tls
from infra.doubles.plaid_faults import PlaidFaults
from infra.doubles.plaid_standin import PlaidStandIn
from infra.doubles.secrets_faults import SecretsFaults
from infra.doubles.standin_control import ScriptablePlaidStandIn
from infra.gateway.local_guard import RequestGuard
from tests.web_fixture_server import WebFixtureServer

EVIL_HOST = "rebind.attacker.test"
EVIL_ORIGIN = "http://rebind.attacker.test"


def exchange(
    base_url: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: str | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], bytes]:
    target = urlsplit(base_url)
    assert target.hostname is not None
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(target.hostname, target.port, context=context)
    else:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=15)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@contextmanager
def moto() -> Iterator[str]:
    from infra.doubles.moto_server import moto_server

    with moto_server() as url:
        yield url


@contextmanager
def standin() -> Iterator[str]:
    with ScriptablePlaidStandIn() as running:
        yield running.base_url


@contextmanager
def plain_standin() -> Iterator[str]:
    with PlaidStandIn() as running:
        yield running.base_url


@contextmanager
def secrets_double() -> Iterator[str]:
    with SecretsFaults('{"client_id": "c", "secret": "s"}') as running:
        yield running.endpoint


@contextmanager
def page_server() -> Iterator[str]:
    with WebFixtureServer() as running:
        yield running.base_url


# Each server, and a request it answers normally (not 421/403) when it comes from a local client.
SERVERS: dict[str, tuple[Callable[[], AbstractContextManager[str]], str, str]] = {
    "moto": (moto, "POST", "/"),
    "plaid-stand-in": (standin, "POST", "/link/token/create"),
    "plain-stand-in": (plain_standin, "POST", "/link/token/create"),
    "secrets-double": (secrets_double, "POST", "/"),
    "web-fixture": (page_server, "GET", "/"),
}


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_each_local_server_refuses_a_foreign_host_and_a_foreign_origin(name: str) -> None:
    start, method, path = SERVERS[name]
    body = "{}" if method == "POST" else None
    with start() as base_url:
        port = urlsplit(base_url).port
        status, _, _ = exchange(base_url, method, path, {}, body)
        assert status not in {403, 421}, (name, status)
        localhost, _, _ = exchange(base_url, method, path, {"host": f"localhost:{port}"}, body)
        assert localhost == status
        for headers, expected in (
            ({"host": f"{EVIL_HOST}:{port}"}, 421),
            ({"host": EVIL_HOST}, 421),
            ({"host": f"127.0.0.2:{port}"}, 421),
            ({"origin": EVIL_ORIGIN}, 403),
            ({"origin": "null"}, 403),
        ):
            refused, reply_headers, raw = exchange(base_url, method, path, headers, body)
            assert refused == expected, (name, headers, refused)
            assert reply_headers["content-type"] == "application/problem+json"
            problem = json.loads(raw)
            assert problem["status"] == expected and problem["detail"]
            assert not [h for h in reply_headers if h.startswith("access-control-")]


def test_the_tls_plaid_double_refuses_a_foreign_host_too(tmp_path: Path) -> None:
    tls = make_loopback_tls(tmp_path)
    client = ssl.create_default_context(cafile=str(tls.ca_pem))
    with PlaidFaults(tls.server_context()) as double:
        port = urlsplit(double.base_url).port
        ok, _, _ = exchange(double.base_url, "POST", "/link/token/create", {}, "{}", client)
        assert ok == 400, "the Sandbox-like answer to a request without keys"
        rebound = {"host": f"{EVIL_HOST}:{port}"}
        status, _, _ = exchange(
            double.base_url, "POST", "/link/token/create", rebound, "{}", client
        )
        assert status == 421
        assert double.request_count == 1, "the refused request never reached the double"


def test_moto_serves_neither_its_control_api_nor_preflights() -> None:
    with moto() as base_url:
        for path in ("/moto-api/data.json", "/moto-api/", "/moto-api/reset", "/%6Doto-api/"):
            method = "POST" if path.endswith("reset") else "GET"
            status, _, raw = exchange(base_url, method, path, {})
            assert status == 404, path
            assert b"SecretString" not in raw
        preflight = {"access-control-request-method": "POST"}
        status, headers, _ = exchange(base_url, "OPTIONS", "/", preflight)
        assert status == 403
        assert not [h for h in headers if h.startswith("access-control-")]


def test_the_script_endpoint_takes_only_json_so_no_page_can_post_it_without_a_preflight() -> None:
    with ScriptablePlaidStandIn() as running:
        script = json.dumps([{"status": 500, "body": {}}])
        plain = {"content-type": "text/plain"}
        status, _, _ = exchange(running.base_url, "POST", "/_standin/script", plain, script)
        assert status == 415
        assert not running.server.scripted
        as_json = {"content-type": "application/json"}
        status, _, _ = exchange(running.base_url, "POST", "/_standin/script", as_json, script)
        assert status == 204
        assert len(running.server.scripted) == 1


def test_the_fixture_page_may_call_its_own_server_but_no_other_page_may() -> None:
    with WebFixtureServer() as running:
        own = {"origin": running.base_url, "authorization": "Bearer x.eyJzdWIiOiJ1In0.x"}
        status, _, _ = exchange(running.base_url, "POST", "/link-token", own, "{}")
        assert status == 200
        other = {"origin": "http://127.0.0.1:1", "authorization": "Bearer x.eyJzdWIiOiJ1In0.x"}
        status, _, _ = exchange(running.base_url, "POST", "/link-token", other, "{}")
        assert status == 403


@pytest.mark.parametrize(
    ("hosts", "origins", "verdict"),
    [
        (["127.0.0.1:3000"], [], None),
        (["LOCALHOST:3000"], [], None),
        (["127.0.0.1:3000"], ["http://app.test:5173"], None),
        (["127.0.0.1:3000"], ["http://app.test:5173/"], None),
        (["127.0.0.1:3000"], ["http://127.0.0.1:3000"], None),
        (["localhost:3000"], ["http://localhost:3000"], None),
        (["localhost:3000"], ["http://127.0.0.1:3000"], 403),  # another origin, same machine
        (["127.0.0.1:3000"], ["https://127.0.0.1:3000"], 403),
        (["127.0.0.1:3001"], [], 421),
        (["127.0.0.1"], [], 421),
        (["rebind.attacker.test:3000"], [], 421),
        (["localhost.:3000"], [], 421),
        ([], [], 400),
        (["127.0.0.1:3000", "evil.test:3000"], [], 400),
        (["127.0.0.1:3000"], ["http://evil.test"], 403),
        (["127.0.0.1:3000"], ["http://app.test:5173", "http://evil.test"], 403),
        (["127.0.0.1:3000"], ["null"], 403),
    ],
)
def test_the_rules_of_the_guard(hosts: list[str], origins: list[str], verdict: int | None) -> None:
    guard = RequestGuard.for_address(
        ("127.0.0.1", 3000), own_origin=True, origins=("http://app.test:5173",)
    )
    refusal = guard.check(hosts, origins)
    assert (refusal.status if refusal else None) == verdict


def test_ipv6_loopback_names_itself_in_brackets_and_beyond_loopback_any_host_may_do() -> None:
    v6 = RequestGuard.for_address(("::1", 3000, 0, 0))
    assert v6.check(["[::1]:3000"], []) is None
    assert v6.check(["localhost:3000"], []) is None
    assert v6.check(["::1:3000"], []) is not None
    network = RequestGuard.for_address(
        ("0.0.0.0", 3000),  # noqa: S104 - what HOST=0.0.0.0 binds
        own_origin=True,
        any_host=True,
    )
    assert network.check(["192.168.1.20:3000"], ["http://192.168.1.20:3000"]) is None
    refusal = network.check(["192.168.1.20:3000"], ["http://evil.test"])
    assert refusal is not None and refusal.status == 403
    emulator = RequestGuard.for_address(("127.0.0.1", 3000), alias_hosts=("10.0.2.2",))
    assert emulator.check(["10.0.2.2:3000"], []) is None
    assert emulator.check(["10.0.2.2:3001"], []) is not None
    anywhere = RequestGuard.for_address(("127.0.0.1", 3000), origins=("*",))
    assert anywhere.check(["127.0.0.1:3000"], ["http://any.test"]) is None


def test_a_refusal_is_an_rfc_9457_problem() -> None:
    refusal = RequestGuard.for_address(("127.0.0.1", 3000)).check(["evil.test:3000"], [])
    assert refusal is not None
    doc: dict[str, Any] = json.loads(refusal.body())
    assert doc["type"] == "about:blank"
    assert (doc["status"], doc["title"]) == (421, "Misdirected Request")
    assert "evil.test:3000" in doc["detail"]
    assert ("content-type", "application/problem+json") in refusal.headers()


@pytest.mark.parametrize("name", ["plaid-stand-in", "secrets-double", "web-fixture"])
def test_the_doubles_take_only_a_bounded_decimal_content_length(name: str) -> None:
    start, _, path = SERVERS[name]
    path = "/link-token" if name == "web-fixture" else path
    with start() as base_url:
        # -1 was read(-1): everything until the client hangs up, while it stays connected.
        for length, expected in (("-1", 400), ("+5", 400), ("0x10", 400), ("99999999999", 413)):
            status, headers, _ = exchange(base_url, "POST", path, {"content-length": length})
            assert status == expected, (name, length, status)
            assert headers["content-type"] == "application/problem+json"
        chunked = {"transfer-encoding": "chunked"}
        status, _, _ = exchange(base_url, "POST", path, chunked, "0\r\n\r\n")
        assert status == 400
