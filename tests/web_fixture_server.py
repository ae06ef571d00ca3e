"""A test fixture server for the web example: serves `examples/web/`, a scripted
`POST /link-token`, the Items routes (`POST /items`, `GET /items`, `DELETE /items/{item_id}`:
an in-memory list, the test's to seed) and the Link stand-in's
`POST /_standin/link/complete` (make serve's, infra/gateway/standin_link.py), on an
ephemeral loopback port.

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
from http import HTTPStatus
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


def problem_like(status: int, detail: str) -> Answer:
    """A local server's RFC 9457 refusal (make serve's own routes, not the service's)."""
    doc = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    doc["detail"] = detail
    return Answer(status, json.dumps(doc).encode(), {"Content-Type": "application/problem+json"})


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


INSTITUTION = {"institution_id": "ins_109508", "name": "First Platypus Bank"}
ACCOUNTS = [
    {"name": "Plaid Checking", "mask": "0000", "type": "depository", "subtype": "checking"},
    {"name": "Plaid Saving", "mask": "1111", "type": "depository", "subtype": "savings"},
]


def item_record(
    item_id: str | None = None, health: str = "healthy", **fields: Any
) -> dict[str, Any]:
    """One Item as `GET /items` lists it."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    accounts = [{"id": f"acc-{n}", **a} for n, a in enumerate(ACCOUNTS)]
    return {
        "item_id": item_id or uuid.uuid4().hex,
        "institution": dict(INSTITUTION),
        "accounts": accounts,
        "health": health,
        "health_at": now,
        "created_at": now,
        **fields,
    }


def _json(status: int, doc: dict[str, Any], **headers: str) -> Answer:
    return Answer(status, json.dumps(doc).encode(), {"Content-Type": "application/json", **headers})


class _Handler(GuardedHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/items":
            self._items("GET", b"")
            return
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
        path = self.path.split("?", 1)[0]
        if path == "/_standin/link/complete":
            self._complete_link(body)
            return
        if path == "/items":
            self._items("POST", body)
            return
        if path.startswith("/items/") and path.endswith("/refresh") and path.count("/") == 3:
            self._items("REFRESH", body, item_id=path.split("/")[2])
            return
        if path != "/link-token":
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
            answer = token_answer(stand_in=self.server.stand_in)
            item_id = json.loads(body or b"{}").get("item_id")
            with self.server.lock:
                self.server.link_tokens[json.loads(answer.body)["link_token"]] = item_id
            self._send(answer)

    def do_DELETE(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/items/") and path.count("/") == 2:
            self._items("DELETE", b"", item_id=path.rsplit("/", 1)[1])
            return
        self._send(gateway_answer(404, "Not Found"))

    def _items(self, method: str, body: bytes, item_id: str = "") -> None:
        """The Items routes, as the service answers them (one list for every user)."""
        sub = jwt_sub(self.headers.get("Authorization"))
        with self.server.lock:
            self.server.items_requests.append(
                {"method": method, "sub": sub, "item_id": item_id, "body": body}
            )
            scripted = self.server.items_scripted.popleft() if self.server.items_scripted else None
            if scripted is not None:
                self._send(scripted)
                return
            if sub is None:
                self._send(gateway_answer(401, "Unauthorized"))
                return
            if method == "GET":
                doc = {"items": list(self.server.items), "request_id": _request_id()}
                self._send(_json(200, doc))
            elif method == "DELETE":
                self.server.items[:] = [i for i in self.server.items if i["item_id"] != item_id]
                self._send(Answer(204, b""))
            elif method == "REFRESH":  # Plaid's /item/get says the Item works again
                found = [i for i in self.server.items if i["item_id"] == item_id]
                for item in found:
                    item["health"] = "healthy"
                if found:
                    self._send(_json(200, {"item": found[0], "request_id": _request_id()}))
                else:
                    self._send(problem_answer(Problem("ITEM_NOT_FOUND")))
            else:
                metadata = json.loads(body)["metadata"]
                item = item_record(institution=metadata["institution"])
                item["accounts"] = [
                    {k: a.get(k) for k in ("id", "name", "mask", "type", "subtype")}
                    for a in metadata["accounts"]
                ]
                self.server.items.append(item)
                created = {k: item[k] for k in ("item_id", "institution", "accounts", "health")}
                doc = {**created, "request_id": _request_id()}
                self._send(_json(201, doc, Location=f"/items/{item['item_id']}"))

    def _complete_link(self, body: bytes) -> None:
        """make serve's Link stand-in route: a public token and Link's metadata."""
        token = json.loads(body or b"{}").get("link_token")
        with self.server.lock:
            known = token in self.server.link_tokens
            item_id = self.server.link_tokens.pop(token, None)
        if not known:
            self._send(problem_like(404, "this stand-in issued no such link token"))
            return
        metadata = {
            "institution": dict(INSTITUTION),
            "accounts": [{"id": f"acc-{n}", **a} for n, a in enumerate(ACCOUNTS)],
            "link_session_id": f"session-{uuid.uuid4()}",
            "transfer_status": None,
        }
        doc = {
            "mode": "update" if item_id else "new",
            "public_token": f"public-sandbox-{uuid.uuid4()}",
            "metadata": metadata,
        }
        with self.server.lock:
            self.server.completions.append(doc)
        self._send(_json(200, doc))

    def _send(self, answer: Answer) -> None:
        # One write per response: headers and body together (no Nagle delay on the split).
        head = [f"HTTP/1.1 {answer.status} {self.responses.get(answer.status, ('',))[0]}"]
        headers = {"Cache-Control": "no-store", NOSNIFF[0]: NOSNIFF[1], **answer.headers}
        if answer.status != 204:  # a 204 ends at its head
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
        self.link_tokens: dict[str, str | None] = {}  # issued: the item_id of update mode
        self.completions: list[dict[str, Any]] = []  # what the Link stand-in was given
        self.items: list[dict[str, Any]] = []
        self.items_requests: list[dict[str, Any]] = []
        self.items_scripted: deque[Answer] = deque()


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

    def script_items(self, *answers: Answer) -> None:
        """Queue answers for the next calls of the Items routes, in order."""
        with self._server.lock:
            self._server.items_scripted.extend(answers)

    def set_items(self, *items: dict[str, Any]) -> None:
        """What `GET /items` lists from now on (see `item_record`)."""
        with self._server.lock:
            self._server.items[:] = list(items)

    @property
    def items_requests(self) -> list[dict[str, Any]]:
        with self._server.lock:
            return list(self._server.items_requests)

    @property
    def completions(self) -> list[dict[str, Any]]:
        with self._server.lock:
            return list(self._server.completions)

    def __enter__(self) -> WebFixtureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
