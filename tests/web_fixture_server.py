"""A test fixture server for the web example: serves `examples/web/` and a scripted
`POST /link-token`, on an ephemeral loopback port.

It plays the part `make serve` plays for a developer, with answers the test chooses. The
service's answers are built by the service's own code (`Problem.body`, `http_event.respond`),
so the page is tested against the real problem documents, not a copy of their shape.
API Gateway's own answers (`{"message": ...}`) are what docs/errors.md documents. Like
`make serve`, it sends the page's Content Security Policy and refuses requests naming another
Host or carrying another page's Origin (local_guard.py), so the page is tested under both.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from infra.gateway.local_guard import NOSNIFF, PAGE_CSP, GuardedHandler, RequestGuard
from linktoken.http_event import respond
from linktoken.problems import Problem

WEB_ROOT = Path(__file__).resolve().parents[1] / "examples/web"


@dataclass
class Answer:
    """One answer to `POST /link-token`."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def token_answer(*, stand_in: bool = False, hours: float = 4) -> Answer:
    """A 200 like the service's, optionally marked as coming from the local Plaid stand-in."""
    expiration = datetime.now(UTC) + timedelta(hours=hours)
    response = respond(
        200,
        {
            "link_token": f"link-sandbox-{uuid.uuid4()}",
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "request_id": _request_id(),
            "plaid_request_id": uuid.uuid4().hex[:15],
        },
    )
    answer = _from_lambda(response)
    if stand_in:
        answer.headers["X-Plaid-Stand-In"] = "not-plaid; tokens work nowhere"  # as make serve
    return answer


def problem_answer(problem: Problem) -> Answer:
    """The service's answer for `problem`, exactly as `endpoint` builds it."""
    headers = {"Retry-After": str(problem.retry_after)} if problem.retry_after else {}
    return _from_lambda(respond(problem.status, problem.body(_request_id()), headers))


def gateway_answer(status: int, message: str) -> Answer:
    """An answer API Gateway produces by itself (no problem document, no request id)."""
    return Answer(
        status,
        json.dumps({"message": message}).encode(),
        {"Content-Type": "application/json", "apigw-requestid": "Yb1xKhJ3IAMEabc="},
    )


def _from_lambda(response: dict[str, Any]) -> Answer:
    return Answer(response["statusCode"], response["body"].encode(), dict(response["headers"]))


def _request_id() -> str:
    return "req-" + uuid.uuid4().hex[:12]


def jwt_sub(authorization: str | None) -> str | None:
    """The `sub` of an unsigned `Bearer` JWT, as the local authorizer reads it; None if none."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    parts = authorization[len("Bearer ") :].split(".")
    if len(parts) != 3:  # header.payload.signature
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) and sub else None


class _Handler(GuardedHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        name = self.path.split("?", 1)[0].lstrip("/") or "index.html"
        path = (WEB_ROOT / name).resolve()
        if path.parent != WEB_ROOT.resolve() or not path.is_file():
            self._send(Answer(404, b"not found", {"Content-Type": "text/plain"}))
            return
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        headers = {"Content-Type": content_type}
        if path.suffix == ".html":
            headers["Content-Security-Policy"] = PAGE_CSP
        self._send(Answer(200, path.read_bytes(), headers))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path != "/link-token":
            self._send(gateway_answer(404, "Not Found"))
            return
        sub = jwt_sub(self.headers.get("Authorization"))
        with self.server.lock:
            self.server.requests.append({"at": time.monotonic(), "sub": sub, "body": body})
            scripted = self.server.scripted.popleft() if self.server.scripted else None
        if scripted is not None:
            self._send(scripted)
        elif sub is None:
            self._send(gateway_answer(401, "Unauthorized"))
        else:
            self._send(token_answer(stand_in=self.server.stand_in))

    def _send(self, answer: Answer) -> None:
        # One write per response: headers and body together (no Nagle delay on the split).
        head = [f"HTTP/1.1 {answer.status} {self.responses.get(answer.status, ('',))[0]}"]
        headers = {"Cache-Control": "no-store", NOSNIFF[0]: NOSNIFF[1], **answer.headers}
        headers["Content-Length"] = str(len(answer.body))
        head += [f"{name}: {value}" for name, value in headers.items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + answer.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stand_in: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        # The page it serves posts to it (same origin); a page from anywhere else may not.
        self.request_guard = RequestGuard.for_address(self.server_address, own_origin=True)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.scripted: deque[Answer] = deque()
        self.stand_in = stand_in


class WebFixtureServer:
    """`with WebFixtureServer() as server:` serves the page at `server.base_url`."""

    def __init__(self, *, stand_in: bool = False) -> None:
        self._server = _Server(stand_in)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._server.lock:
            return list(self._server.requests)

    def script(self, *answers: Answer) -> None:
        """Queue answers for the next `POST /link-token` calls, in order."""
        with self._server.lock:
            self._server.scripted.extend(answers)

    def __enter__(self) -> WebFixtureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
