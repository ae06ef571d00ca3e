"""`linktoken.plaid_client.PlaidClient` over real sockets: a kept-alive connection to the
loopback stand-in and HTTPS proxies, each answer held to the attempt's deadline.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from linktoken.plaid_client import (
    PlaidCallError,
    PlaidClient,
    RetryPolicy,
)
from tests.conftest import CLIENT_ID, SECRET
from tests.helpers_plaid import BODY, CREDENTIALS

POLICY = RetryPolicy()


# --- the deadline -----------------------------------------------------------------------------


def test_a_fresh_deadline_for_each_answer_on_a_kept_alive_connection(
    plaid: Any,
) -> None:
    """The deadline belongs to one attempt: later answers on the same connection get their own."""
    client = PlaidClient(plaid.base_url, RetryPolicy(connect_timeout=0.1, read_timeout=0.5))
    for _ in range(3):
        client.create_link_token(BODY, CREDENTIALS, lambda: 100.0)
        time.sleep(0.7)  # longer than a whole attempt: a deadline kept from before would fire

    assert plaid.connections == 1


@contextmanager
def connect_proxy(interval: float = 0.0) -> Iterator[tuple[str, list[str]]]:
    """An HTTP proxy on loopback that tunnels CONNECT requests (its answer to CONNECT sent a
    byte every `interval` seconds when not 0); yields its URL and the targets asked for."""
    listener = socket.create_server(("127.0.0.1", 0))
    targets: list[str] = []
    done = threading.Event()

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def tunnel(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            relay(conn)

    def relay(conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(65536)
            if not chunk:
                return
            request += chunk
        target = request.split(b" ")[1].decode()
        targets.append(target)
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        established = b"HTTP/1.1 200 Connection established\r\n\r\n"
        for byte in established if interval else [established]:
            conn.sendall(bytes([byte]) if isinstance(byte, int) else byte)
            if interval and done.wait(interval):
                return
        threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
        pipe(conn, upstream)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                threading.Thread(target=tunnel, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", targets
    finally:
        done.set()
        listener.close()


@pytest.fixture
def tls_plaid(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The stand-in over TLS, trusted through REQUESTS_CA_BUNDLE; no proxy from outside."""
    pytest.importorskip("cryptography.x509", reason="cryptography (a moto dependency) is needed")
    from infra.doubles.loopback import make_loopback_tls
    from infra.doubles.plaid_standin import PlaidStandIn

    tls = make_loopback_tls(tmp_path)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_pem))
    with PlaidStandIn(client_id=CLIENT_ID, secret=SECRET, tls=tls.server_context()) as standin:
        yield standin


def test_through_an_https_proxy_answers_are_read_on_one_kept_tunnel(
    tls_plaid: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect_proxy() as (proxy_url, targets):
        monkeypatch.setenv("HTTPS_PROXY", proxy_url)
        client = PlaidClient(tls_plaid.base_url, POLICY)
        tokens = [client.create_link_token(BODY, CREDENTIALS, lambda: 100.0) for _ in range(2)]

    assert all(token.link_token.startswith("link-sandbox-") for token in tokens)
    assert targets == [tls_plaid.base_url.removeprefix("https://")]  # one tunnel, kept alive
    assert tls_plaid.connections == 1


def test_a_proxy_trickling_its_connect_answer_is_held_to_the_attempt_deadline(
    tls_plaid: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each byte well within the 0.2 s connect timeout, ~2 s in all: the 1.2 s attempt ends it,
    as a proxy that never answers CONNECT ends in requests' read timeout."""
    policy = RetryPolicy(max_attempts=1, connect_timeout=0.2, read_timeout=1.0)
    with connect_proxy(interval=0.05) as (proxy_url, _targets):
        monkeypatch.setenv("HTTPS_PROXY", proxy_url)
        client = PlaidClient(tls_plaid.base_url, policy)
        started = time.monotonic()
        with pytest.raises(PlaidCallError) as failed:
            client.create_link_token(BODY, CREDENTIALS, lambda: 100.0)
        elapsed = time.monotonic() - started

    assert failed.value.error.rule.problem_code == "UPSTREAM_TIMEOUT"
    assert failed.value.error.retryable
    assert 1.0 <= elapsed < 1.9  # the tunnel would have opened at ~2 s
    assert tls_plaid.requests == []
