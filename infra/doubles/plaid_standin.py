"""A loopback stand-in for Plaid's `/link/token/create`. It is NOT Plaid.

It answers the way Plaid Sandbox does (tokens `link-sandbox-<uuid>`, Plaid-shaped error
objects for bad keys or missing fields) so the real handler can run end to end with no
network: `make invoke`, the build smoke test and the benchmark use it. Every answer carries
`X-Stand-In: not-plaid`.

Tests can script answers (`script`), count TCP connections and requests, and serve TLS with
a certificate of their own. With `compress="gzip"` (or `"deflate"`) it compresses every answer
whose request accepts that encoding, as Plaid's front end or a corporate proxy may. Sockets
set TCP_NODELAY and each answer is one write: otherwise Nagle's algorithm and delayed ACKs add
~40 ms to every kept-alive request.

    with PlaidStandIn(client_id="id", secret="sec") as plaid:
        os.environ["PLAID_BASE_URL"] = plaid.base_url
"""

from __future__ import annotations

import gzip
import json
import secrets
import socket
import ssl
import threading
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any

from infra.gateway.local_guard import GuardedHandler

REQUIRED = ("client_name", "language", "country_codes", "user")


@dataclass
class Scripted:
    """One canned answer: status, JSON body (or raw bytes), headers, delay before answering."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    close: bool = False  # drop the connection without answering


def plaid_error(
    status: int, error_type: str, error_code: str, message: str, **headers: str
) -> Scripted:
    """A Plaid-shaped error answer, for scripting failures."""
    body = {
        "error_type": error_type,
        "error_code": error_code,
        "error_message": message,
        "display_message": None,
        "request_id": _request_id(),
    }
    return Scripted(status, body, dict(headers))


def _request_id() -> str:
    return secrets.token_hex(8)[:15]


class _Handler(GuardedHandler):  # its own Host only, no web page's Origin
    protocol_version = "HTTP/1.1"  # keep-alive, as Plaid's servers do
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the handler's own logs are what the user should read

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with self.server.lock:
            self.server.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": raw}
            )
            scripted = self.server.scripted.popleft() if self.server.scripted else None
        answer = scripted or self.server.answer(self.path, self.headers, raw)
        if answer.delay:
            time.sleep(answer.delay)
        if answer.close:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = (
            answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        )
        headers = {"Content-Type": "application/json", "X-Stand-In": "not-plaid"}
        encoding = self.server.standin.compress
        if encoding and encoding in self.headers.get("Accept-Encoding", ""):
            payload = _COMPRESSORS[encoding](payload)
            headers["Content-Encoding"] = encoding
        headers.update(answer.headers)
        # Status line, headers and body in one write: separate small writes meet Nagle's
        # algorithm and the client's delayed ACK.
        lines = [f"HTTP/1.1 {answer.status} {self.responses.get(answer.status, ('',))[0]}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"Content-Length: {len(payload)}", f"Date: {self.date_time_string()}"]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data)


_COMPRESSORS = {"gzip": _gzip, "deflate": _deflate}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, standin: PlaidStandIn) -> None:
        super().__init__((standin.host, 0), _Handler)
        self.standin = standin
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[dict[str, Any]] = []
        self.scripted: deque[Scripted] = deque()

    def answer(self, path: str, headers: Any, raw: bytes) -> Scripted:
        return self.standin.sandbox_answer(path, headers, raw)


class PlaidStandIn:
    """Run the stand-in on a free loopback port for the duration of a `with` block."""

    def __init__(
        self,
        client_id: str = "standin-client-id",
        secret: str = "standin-secret",  # noqa: S107 - the stand-in's own fake key
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
        compress: str | None = None,
    ) -> None:
        if compress not in {None, *_COMPRESSORS}:
            raise ValueError(f"compress must be one of {sorted(_COMPRESSORS)} or None")
        self.compress = compress
        self.client_id = client_id
        self.secret = secret
        self.host = host
        self.tls = tls
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def server(self) -> _Server:
        assert self._server is not None, "use PlaidStandIn as a context manager"
        return self._server

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.server.server_address[1]}"

    @property
    def connections(self) -> int:
        return self.server.connections

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.server.requests

    def script(self, *answers: Scripted) -> None:
        """Queue answers to give, in order, before falling back to Sandbox behaviour."""
        with self.server.lock:
            self.server.scripted.extend(answers)

    def __enter__(self) -> PlaidStandIn:
        self._server = _Server(self)
        if self.tls:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sandbox_answer(self, path: str, headers: Any, raw: bytes) -> Scripted:  # noqa: PLR0911
        """What Plaid Sandbox would say to this request (the parts this service relies on)."""
        if path != "/link/token/create":
            return plaid_error(404, "INVALID_REQUEST", "NOT_FOUND", "unknown route")
        try:
            body = json.loads(raw)
        except ValueError:
            return plaid_error(400, "INVALID_REQUEST", "INVALID_BODY", "body could not be parsed")
        if not isinstance(body, dict):
            return plaid_error(400, "INVALID_REQUEST", "INVALID_BODY", "body must be an object")
        client_id = headers.get("PLAID-CLIENT-ID") or body.get("client_id")
        secret = headers.get("PLAID-SECRET") or body.get("secret")
        if not client_id or not secret:
            return plaid_error(
                400, "INVALID_REQUEST", "MISSING_FIELDS", "client_id and secret are required"
            )
        if (client_id, secret) != (self.client_id, self.secret):
            return plaid_error(
                400, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret provided"
            )
        missing = [key for key in REQUIRED if key not in body]
        if missing or not body.get("user", {}).get("client_user_id"):
            return plaid_error(
                400, "INVALID_REQUEST", "MISSING_FIELDS", f"missing fields: {missing or ['user']}"
            )
        if not body.get("products"):
            return plaid_error(
                400, "INVALID_REQUEST", "INVALID_FIELD", "products must be a non-empty list"
            )
        if body.get("redirect_uri") and body.get("android_package_name"):
            return plaid_error(
                400,
                "INVALID_REQUEST",
                "INVALID_FIELD",
                "android_package_name and redirect_uri cannot both be set",
            )
        expiration = datetime.now(UTC) + timedelta(hours=4)
        return Scripted(
            200,
            {
                "link_token": f"link-sandbox-{uuid.uuid4()}",
                "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "request_id": _request_id(),
            },
        )
