"""The Plaid session honours REQUESTS_CA_BUNDLE: the real handler against a TLS stand-in.

A throwaway CA signs a certificate for localhost/127.0.0.1; the stand-in serves it. The
`plaid` fixture is overridden here, so `service_env` and `invoke` (conftest) point the service
at https://127.0.0.1:<port>.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import CLIENT_ID, SECRET, body_of, make_event

pytest.importorskip("cryptography.x509", reason="cryptography (a moto dependency) is needed")
from loopback import make_loopback_tls


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
    from plaid_standin import PlaidStandIn

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy"):
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
def test_untrusted_certificate_is_503_and_not_retried(
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
    assert (response["statusCode"], body["code"], body["retryable"]) == (
        503,
        "UPSTREAM_UNAVAILABLE",
        True,
    )
    assert plaid.requests == []  # no HTTP request ever reached the server
    assert plaid.connections == 0  # no handshake completed
    [line] = output.logs("link_token_failed")
    # The code treats a TLS failure as permanent for this invocation: one attempt, no retries.
    assert line["attempts"] == 1
    assert "TLS" in line["cause"]
    assert output.metrics()["PlaidRetries"][0]["PlaidRetries"] == [0.0]


def test_ca_bundle_is_read_when_the_session_is_created(
    invoke: Any, plaid: Any, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.other_ca))
    assert invoke(make_event({}))["statusCode"] == 503

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
    assert invoke(make_event({}))["statusCode"] == 503  # same container, same session

    invoke.runtime.reset()  # what the SnapStart restore hook does
    assert invoke(make_event({}))["statusCode"] == 200
