"""A loopback Plaid double that misbehaves on cue, over TLS. It is NOT Plaid.

Healthy, it answers like the stand-in (`plaid_standin.PlaidStandIn.sandbox_answer`, one source
of truth for what Plaid says). Scripted, it does what a real network and a real Plaid do on a
bad day, at the socket level, so the service's real HTTP stack (requests, urllib3, ssl) meets
them: an error status with any body, an answer after a delay, a connection reset in the
middle of an answer, a request accepted and never answered, a status line and headers sent a
byte at a time, an answer far too large, a certificate nobody trusts, and no listener at all
(connection refused). It counts TCP
connections, TLS handshakes that failed and requests that arrived, so a test can tell a
kept-alive connection from a new one and prove no credential was sent.

    with PlaidFaults(tls, client_id="id", secret="sec") as plaid:
        plaid.script(Reply(503, error_body(...)), Reset())
        with plaid.refusing():          # nothing listens on the port inside this block
            ...
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from infra.doubles.loopback import LoopbackHandler
from infra.doubles.plaid_standin import PlaidStandIn, plaid_error


@dataclass(frozen=True)
class Reply:
    """An answer: status, body (bytes as they are, anything else as JSON), extra headers,
    seconds to wait before answering."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Reset:
    """Send the status line, the headers and part of the body, then reset the connection."""


@dataclass(frozen=True)
class Silent:
    """Accept the request and never answer; the connection is closed after `hold` seconds."""

    hold: float = 30.0


@dataclass(frozen=True)
class Trickle:
    """Send a good answer's status line and headers one byte every `interval` seconds (each
    read well within any read timeout), then its body; the connection is closed after."""

    interval: float = 0.5


Action = Reply | Reset | Silent | Trickle


def error_body(status: int, error_type: str, error_code: str, message: str) -> Reply:
    """A Plaid-shaped error answer (the stand-in's shape, with a fresh request_id)."""
    scripted = plaid_error(status, error_type, error_code, message)
    return Reply(scripted.status, scripted.body, dict(scripted.headers))


def huge_body(size: int = 1024 * 1024) -> Reply:
    """A 200 whose JSON body is `size` bytes: far beyond any link token answer."""
    padding = "x" * (size - 40)
    return Reply(200, json.dumps({"link_token": "link-sandbox-big", "pad": padding}).encode())


class _Handler(LoopbackHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        action = self.server.next_action(self.path, self.headers, raw)
        if isinstance(action, Silent):
            self.server.released.wait(action.hold)
            self.close_connection = True
            return
        if isinstance(action, Reset):
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
            )
            self.wfile.write(head + b'{"link_token": "link-sandbox-')
            self.wfile.flush()
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # now, before socketserver's orderly shutdown could send FIN
            self.close_connection = True
            return
        if isinstance(action, Trickle):
            answer = self.server.double.sandbox.sandbox_answer(self.path, self.headers, raw)
            self.trickle(action.interval, json.dumps(answer.body).encode())
            return
        if action.delay:
            time.sleep(action.delay)
        payload = (
            action.body if isinstance(action.body, bytes) else json.dumps(action.body).encode()
        )
        headers = {"Content-Type": "application/json", "X-Stand-In": "not-plaid"}
        self.answer(action.status, payload, {**headers, **action.headers})

    def trickle(self, interval: float, body: bytes) -> None:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Stand-In: not-plaid\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.close_connection = True
        with suppress(OSError):  # the client gives up at its deadline
            for byte in head.encode():
                self.wfile.write(bytes([byte]))
                if self.server.released.wait(interval):
                    return
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, double: PlaidFaults, port: int = 0) -> None:
        self.double = double
        self.released = threading.Event()
        super().__init__(("127.0.0.1", port), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        # The handshake runs in the connection's thread, on its first read.
        wrapped = self.double.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that rejects our certificate, or resets a connection: counted, not printed.
        self.double.note_failed_connection()

    def opened(self, conn: socket.socket) -> None:
        with self.double.lock:
            self.double.connections += 1
            self.double.live.add(conn)

    def closed(self, conn: socket.socket) -> None:
        with self.double.lock:
            self.double.live.discard(conn)

    def next_action(self, path: str, headers: Any, raw: bytes) -> Action:
        double = self.double
        with double.lock:
            double.request_count += 1
            double.requests.append({"path": path, "headers": dict(headers), "body": raw})
            scripted = double.scripted.popleft() if double.scripted else None
        if scripted is not None:
            return scripted
        answer = double.sandbox.sandbox_answer(path, headers, raw)
        return Reply(answer.status, answer.body, dict(answer.headers))


class PlaidFaults:
    """Run the double on a free loopback port (TLS with `tls`) for a `with` block."""

    def __init__(
        self,
        tls: ssl.SSLContext,
        client_id: str = "faults-client-id",
        secret: str = "faults-secret",  # noqa: S107 - the double's own fake key
    ) -> None:
        self.tls = tls
        self.sandbox = PlaidStandIn(client_id=client_id, secret=secret)  # answers only
        self.lock = threading.Lock()
        self.connections = 0
        self.failed_connections = 0
        self.live: set[socket.socket] = set()
        self.request_count = 0
        # The latest requests only: a long soak must not measure the double's own memory.
        self.requests: deque[dict[str, Any]] = deque(maxlen=100)
        self.scripted: deque[Action] = deque()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def accept_keys(self, client_id: str, secret: str) -> None:
        """The keys Plaid accepts from now on (a rotation, or an operator fixing the secret)."""
        self.sandbox.client_id, self.sandbox.secret = client_id, secret

    def script(self, *actions: Action) -> None:
        """Queue actions for the next requests, in order; then healthy answers again."""
        with self.lock:
            self.scripted.extend(actions)

    def note_failed_connection(self) -> None:
        with self.lock:
            self.failed_connections += 1

    def drop_connections(self) -> None:
        """Close every open connection (as a server restart or a load balancer would)."""
        with self.lock:
            live, self.live = list(self.live), set()
        for conn in live:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    @contextmanager
    def refusing(self) -> Iterator[None]:
        """Nothing listens on the port inside the block: connections are refused."""
        self._stop()
        self.drop_connections()
        try:
            yield
        finally:
            self._start(self.port)

    @contextmanager
    def presenting(self, tls: ssl.SSLContext) -> Iterator[None]:
        """New connections get this TLS context's certificate inside the block."""
        trusted = self.tls
        self.drop_connections()
        self.tls = tls
        try:
            yield
        finally:
            self.tls = trusted
            self.drop_connections()

    def _start(self, port: int) -> None:
        self._server = _Server(self, port)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def _stop(self) -> None:
        if self._server is not None:
            self._server.released.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> PlaidFaults:
        self._start(0)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()
        self.drop_connections()
