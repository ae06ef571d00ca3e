"""The Plaid session honours REQUESTS_CA_BUNDLE: the real handler against a TLS stand-in.

A throwaway CA signs a certificate for localhost/127.0.0.1; the stand-in serves it. The
`plaid` fixture is overridden here, so `service_env` and `invoke` (conftest) point the service
at https://127.0.0.1:<port>.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from linktoken.plaid_client import PlaidClient, RetryPolicy
from tests.conftest import CLIENT_ID, SECRET, body_of, make_event
from tests.helpers_app import closed_port

pytest.importorskip("cryptography.x509", reason="cryptography (a moto dependency) is needed")
from infra.doubles.loopback import make_loopback_tls


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA that signed the stand-in's certificate
    other_ca: Path  # a CA that did not
    server_context: ssl.SSLContext


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    tls = make_loopback_tls(folder / "ours", "Test CA")
    other = make_loopback_tls(folder / "other", "Other CA")
    return Pki(ca=tls.ca_pem, other_ca=other.ca_pem, server_context=tls.server_context())


@pytest.fixture
def plaid(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The stand-in over TLS; no proxy or CA bundle from the outer environment applies."""
    from infra.doubles.plaid_standin import PlaidStandIn

    for name in (
        *("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy"),
        *("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"),
    ):
        monkeypatch.delenv(name, raising=False)
    with PlaidStandIn(client_id=CLIENT_ID, secret=SECRET, tls=pki.server_context) as standin:
        yield standin


def test_call_over_https_succeeds_with_the_ca_bundle(
    invoke: Any, plaid: Any, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
    assert plaid.base_url.startswith("https://127.0.0.1:")

    response = invoke(make_event({}))

    assert response["statusCode"] == 200
    assert body_of(response)["link_token"].startswith("link-sandbox-")
    [request] = plaid.requests
    assert request["headers"]["PLAID-SECRET"] == SECRET  # it really reached the stand-in


def test_twenty_calls_share_one_tls_connection(
    invoke: Any, plaid: Any, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))

    statuses = [invoke(make_event({}))["statusCode"] for _ in range(20)]

    assert statuses == [200] * 20
    assert len(plaid.requests) == 20
    assert plaid.connections == 1  # keep-alive: one handshake for all twenty


@pytest.mark.parametrize("bundle", ["other", None], ids=["another-ca", "system-cas"])
def test_untrusted_certificate_is_500_misconfigured_and_not_retried(
    invoke: Any,
    plaid: Any,
    pki: Pki,
    output: Any,
    monkeypatch: pytest.MonkeyPatch,
    bundle: str | None,
) -> None:
    if bundle == "other":
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.other_ca))

    response = invoke(make_event({}))

    body = body_of(response)
    # Only an operator can fix a trust failure: the app is told not to retry.
    assert (response["statusCode"], body["code"], body["retryable"]) == (
        500,
        "MISCONFIGURED",
        False,
    )
    assert plaid.requests == []  # no HTTP request ever reached the server: no credential sent
    assert plaid.connections == 0  # no handshake completed
    [line] = output.logs("link_token_failed")
    assert line["attempts"] == 1
    assert "certificate did not verify" in line["cause"]
    assert output.metrics()["PlaidRetries"][0]["PlaidRetries"] == [0.0]


def test_a_handshake_cut_short_is_transient_and_retried(
    invoke: Any, service_env: dict[str, str], output: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        stop = threading.Event()

        def hang_up() -> None:  # accept, then close before any TLS byte
            server.settimeout(0.1)
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                conn.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        url = f"https://127.0.0.1:{port}"
        invoke.container.service.plaid = PlaidClient(url, RetryPolicy(), sleep=lambda _s: None)
        try:
            response = invoke(make_event({}))
        finally:
            stop.set()
            thread.join()

    body = body_of(response)
    assert (response["statusCode"], body["code"], body["retryable"]) == (
        503,
        "UPSTREAM_UNAVAILABLE",
        True,
    )
    assert output.logs("link_token_failed")[0]["attempts"] == RetryPolicy().max_attempts


@pytest.mark.parametrize(
    ("no_proxy", "status", "reached_plaid"),
    [("localhost,127.0.0.1", 200, True), ("plaid.com", 503, False)],
    ids=["bypassed-by-no-proxy", "through-the-proxy"],
)
def test_https_proxy_is_used_unless_no_proxy_covers_plaids_host(
    invoke: Any,
    plaid: Any,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str,
    status: int,
    reached_plaid: bool,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
    with closed_port() as proxy_port:  # a proxy that refuses: using it means 503
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy_port}")
        monkeypatch.setenv("NO_PROXY", no_proxy)

        response = invoke(make_event({}))

    assert response["statusCode"] == status
    assert bool(plaid.requests) is reached_plaid


def test_proxy_variables_are_read_as_requests_and_the_standard_library_read_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.example:3128")
    monkeypatch.setenv("https_proxy", "http://lower.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = PlaidClient("https://sandbox.plaid.com").session

    assert session.proxies["https"] == "http://lower.example:3128"  # lower case wins

    monkeypatch.setenv("no_proxy", ".plaid.com")
    assert "https" not in PlaidClient("https://sandbox.plaid.com").session.proxies


def test_ca_bundle_is_read_when_the_session_is_created(
    invoke: Any, plaid: Any, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.other_ca))
    assert invoke(make_event({}))["statusCode"] == 500

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
    assert invoke(make_event({}))["statusCode"] == 500  # same container, same session

    invoke.container.reset()  # what the SnapStart restore hook does
    assert invoke(make_event({}))["statusCode"] == 200
