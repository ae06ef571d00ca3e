"""`linktoken.plaid_client.PlaidClient` over real sockets: a kept-alive connection to the
loopback stand-in and HTTPS proxies, each answer held to the attempt's deadline.
"""

from __future__ import annotations

import contextlib
import json
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
from tests.helpers_plaid import BODY, CREDENTIALS, raw_answer_server

POLICY = RetryPolicy()
TOKEN = {"link_token": "link-sandbox-abc", "expiration": "2026-11-25T18:00:00Z"}


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


# --- answers trickled or endless ---------------------------------------------------------------


def time_a_trickling_answer(
    remaining: float, policy: RetryPolicy, interval: float, tail: int
) -> tuple[float, PlaidCallError | None]:
    """Seconds one call takes when the answer's last `tail` bytes come one per `interval`."""
    payload = json.dumps(TOKEN).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
        len(payload)
    )
    deadline = time.monotonic() + remaining
    drip = [bytes([byte]) for byte in payload[-tail:]]
    with raw_answer_server([head + payload[:-tail], *drip], interval) as base_url:
        client = PlaidClient(base_url, policy, sleep=lambda _s: None)
        started = time.monotonic()
        try:
            client.create_link_token(BODY, CREDENTIALS, lambda: deadline - time.monotonic())
        except PlaidCallError as exc:
            return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_a_trickling_answer_does_not_outlive_the_invocation() -> None:
    """requests' read timeout bounds each socket read, not the answer: one byte every 0.2 s
    (under the 0.35 s read timeout the 1.2 s left allow) must not hold the call for 1.6 s."""
    elapsed, error = time_a_trickling_answer(1.2, POLICY, interval=0.2, tail=8)

    assert elapsed < 1.2
    assert error is not None and error.error.rule.problem_code == "UPSTREAM_TIMEOUT"


def test_an_attempt_never_outlasts_its_connect_and_read_timeouts() -> None:
    """The retry bound counts a full attempt as connect + read; trickling must not stretch it.

    (0.1 s, 2.0 s) and a byte every 1.8 s: a correct client gives up at ~2.1 s, the deadline
    checked only between reads returns at ~3.6 s; the bound sits 0.75 s above the first (a
    loaded machine's scheduling) and 0.75 s below the second.
    """
    policy = RetryPolicy(max_attempts=1, connect_timeout=0.1, read_timeout=2.0)

    elapsed, error = time_a_trickling_answer(100.0, policy, interval=1.8, tail=3)

    assert error is not None and error.error.rule.problem_code == "UPSTREAM_TIMEOUT"
    assert elapsed <= policy.connect_timeout + policy.read_timeout + 0.75


ANSWER_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: %s\r\n"
    b"Content-Length: %d\r\n\r\n" % (b"r" * 16, len(json.dumps(TOKEN)))
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@pytest.mark.parametrize(
    ("pieces", "interval"),
    [
        # A byte every 0.1 s from the first byte of the status line: ~9 s of headers.
        pytest.param([bytes([b]) for b in ANSWER_HEAD], 0.1, id="trickled-status-line"),
        # The status line at once, then the headers a byte at a time.
        pytest.param(
            [ANSWER_HEAD[:17], *(bytes([b]) for b in ANSWER_HEAD[17:])], 0.1, id="trickled-headers"
        ),
        # Interim 100 answers as fast as the socket takes them for ~6 s, each read well within
        # the read timeout: http.client skips them in a loop of its own.
        pytest.param([*[CONTINUE] * 3000, ANSWER_HEAD], 0.002, id="endless-100-continue"),
    ],
)
def test_status_line_and_headers_are_read_against_the_attempt_deadline(
    pieces: list[bytes], interval: float
) -> None:
    """requests reads the status line and headers with the read timeout per socket read, so a
    server that keeps each read under it held the call until it chose to stop (the function's
    timeout, with a slow enough trickle). Connect + read = 1.1 s must end the attempt."""
    policy = RetryPolicy(max_attempts=1, connect_timeout=0.1, read_timeout=1.0)
    body = json.dumps(TOKEN).encode()
    with raw_answer_server([*pieces, body], interval) as base_url:
        client = PlaidClient(base_url, policy, sleep=lambda _s: None)
        started = time.monotonic()
        with pytest.raises(PlaidCallError) as failed:
            client.create_link_token(BODY, CREDENTIALS, lambda: 100.0)
        elapsed = time.monotonic() - started

    assert failed.value.error.rule.problem_code == "UPSTREAM_TIMEOUT"
    assert failed.value.cause == "Plaid did not answer within the read timeout"
    assert failed.value.attempts == 1
    assert 1.0 <= elapsed < 3.0  # at the 1.1 s deadline; generous for a loaded machine
