"""Who may talk to a server this project starts on a developer's machine, and the headers its
answers carry.

Every local server (`make serve`'s API gateway, the Plaid stand-in, moto's Secrets Manager, the
fault doubles, the test page server) listens on loopback, beside the developer's browser. A
web page that browser opens can still reach it: by a cross-site request (a form or a
`text/plain` fetch needs no preflight), or under the page's own host name after DNS rebinding
(a name that first resolves to the attacker, then to 127.0.0.1). Two checks, made before a
request is dispatched, stop both:

- `Host` must name this server: its bound address and port, or `localhost:<port>`. A
  rebinding page's requests carry the attacker's name: 421 Misdirected Request.
- `Origin`, when present, must be one the server accepts (the API's configured CORS origins,
  its own). Browsers send it on every cross-site fetch and POST; HTTP clients (requests,
  botocore, curl) never do: 403.

Refusals are RFC 9457 problem documents (a GuardedHandler also closes the connection).

    class Handler(GuardedHandler): ...      # http.server: refused before do_GET/do_POST
    app = WsgiGuard(app, RequestGuard.for_address(server.server_address))   # WSGI (moto)
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

# The example page's policy (Plaid's documented directives for Link, narrowed): scripts from
# this server and Plaid's one loader, Link's frames from Plaid's CDN, no framing of the page.
# Link injects inline scripts and styles, so Plaid requires 'unsafe-inline' for both. No
# connect-src: the page may be pointed at any API (a deployed one, another port).
PAGE_CSP = "; ".join(
    (
        "script-src 'self' 'unsafe-inline' https://cdn.plaid.com/link/v2/stable/link-initialize.js",
        "style-src 'self' 'unsafe-inline'",
        "frame-src https://cdn.plaid.com/",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
NOSNIFF = ("x-content-type-options", "nosniff")
PROBLEM_TYPE = "application/problem+json"


@dataclass(frozen=True)
class Refusal:
    """A request the guard refuses: status and why, as an RFC 9457 problem."""

    status: int
    detail: str

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase

    def body(self) -> bytes:
        doc = {"type": "about:blank", "title": self.title, "status": self.status}
        return json.dumps({**doc, "detail": self.detail}, separators=(",", ":")).encode()

    def headers(self) -> list[tuple[str, str]]:
        return [("content-type", PROBLEM_TYPE), NOSNIFF, ("cache-control", "no-store")]


def authority(host: str, port: int) -> str:
    """`host:port` as a Host header names it (IPv6 literals in brackets)."""
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    return f"[{host}]:{port}" if is_v6 else f"{host}:{port}"


@dataclass(frozen=True)
class RequestGuard:
    """The Host values and Origins one server accepts (lower-case, exact)."""

    hosts: frozenset[str]
    origins: frozenset[str] = frozenset()
    any_host: bool = False  # only for a server deliberately bound beyond loopback
    any_origin: bool = False  # only when the API's CORS origins say "*"
    own_scheme: str | None = None  # pages it serves call it: Origin <scheme>://<its Host> is ok

    @classmethod
    def for_address(
        cls,
        address: Sequence[Any],
        *,
        scheme: str = "http",
        own_origin: bool = False,
        origins: Iterable[str] = (),
        any_host: bool = False,
        alias_hosts: Iterable[str] = (),
    ) -> RequestGuard:
        """The guard of a server bound to `address` (as `server_address` gives it): its own
        address and `localhost` (and `alias_hosts`), on its port. `own_origin`: pages it
        serves may call it."""
        host, port = str(address[0]), int(address[1])
        names = {authority(host, port), *(f"{name}:{port}" for name in ("localhost", *alias_hosts))}
        hosts = frozenset(name.lower() for name in names)
        allowed = {origin.lower().rstrip("/") for origin in origins}
        own_scheme = scheme if own_origin else None
        return cls(hosts, frozenset(allowed - {"*"}), any_host, "*" in allowed, own_scheme)

    def check(  # noqa: PLR0911 - one return per verdict
        self, hosts: Sequence[str], origins: Sequence[str]
    ) -> Refusal | None:
        """None when the request may proceed; else why not. Takes every Host and Origin
        header of the request (a repeated one is refused: which one would count?)."""
        if len(hosts) != 1:
            return Refusal(400, "send exactly one Host header")
        host = hosts[0].strip().lower()
        if not self.any_host and host not in self.hosts:
            return Refusal(
                421,
                f"this server answers only to {' or '.join(sorted(self.hosts))}, not to"
                f" {host[:100]!r} (a DNS rebinding page would name its own host)",
            )
        if not origins:
            return None
        if len(origins) > 1:
            return Refusal(403, "send at most one Origin header")
        origin = origins[0].strip().lower().rstrip("/")
        if self.any_origin or origin in self.origins:
            return None
        if self.own_scheme is not None and origin == f"{self.own_scheme}://{host}":
            return None  # same origin: a page this server served, at the name it was asked by
        return Refusal(
            403,
            f"requests from web pages of origin {origin[:100]!r} are refused here"
            + (" (allow it in ALLOWED_ORIGINS)" if self.origins else ""),
        )


class GuardedHandler(BaseHTTPRequestHandler):
    """An http.server handler whose requests pass the server's guard before dispatch.

    The guard is the server's `request_guard` attribute when it has one, else the loopback
    guard of its bound address (no Origin accepted). A refused request is answered by
    `refuse` and never reaches `do_*`. With `max_body_bytes` set (the doubles, which read
    `Content-Length` bytes as they are), the body must be framed by one decimal
    Content-Length up to that size: `read(-1)` would read until the client hangs up.
    """

    max_body_bytes: int | None = 16 * 1024 * 1024

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        refusal = self.request_guard().check(
            self.headers.get_all("Host") or [], self.headers.get_all("Origin") or []
        )
        if refusal is None and self.max_body_bytes is not None:
            refusal = self._framing_refusal(self.max_body_bytes)
        if refusal is None:
            return True
        self.refuse(refusal)
        return False

    def _framing_refusal(self, limit: int) -> Refusal | None:
        if self.headers.get_all("Transfer-Encoding"):
            return Refusal(400, "send the body with a Content-Length (no Transfer-Encoding)")
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return None
        if (
            len(lengths) != 1
            or not lengths[0].strip().isascii()
            or not lengths[0].strip().isdigit()
        ):
            return Refusal(400, "Content-Length must be one decimal number")
        if int(lengths[0]) > limit:
            return Refusal(413, f"bodies here are at most {limit} bytes")
        return None

    def request_guard(self) -> RequestGuard:
        guard = getattr(self.server, "request_guard", None)
        if isinstance(guard, RequestGuard):
            return guard
        address: Any = self.server.server_address  # (host, port, ...) for an IP server
        return RequestGuard.for_address(address)

    def refuse(self, refusal: Refusal) -> None:
        """Write the refusal in one write and close the connection (the body is never read)."""
        lines = [f"HTTP/1.1 {refusal.status} {refusal.title}"]
        body = refusal.body()
        headers = [*refusal.headers(), ("content-length", str(len(body)))]
        lines += [f"{name}: {value}" for name, value in [*headers, ("connection", "close")]]
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client left first: nothing to refuse
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


StartResponse = Callable[..., Any]


class WsgiGuard:
    """A WSGI app (moto's) behind the guard, never answering CORS or its own control API.

    Besides Host and Origin: `/moto-api/` (moto's dashboard, reset and state, including every
    seeded secret) is not served, OPTIONS (a CORS preflight) is refused, and any
    `access-control-*` header the app adds is dropped. AWS SDKs need none of these.
    """

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Any], guard: RequestGuard):
        self.app = app
        self.guard = guard

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        refusal = self.guard.check(
            [environ["HTTP_HOST"]] if "HTTP_HOST" in environ else [],
            [environ["HTTP_ORIGIN"]] if "HTTP_ORIGIN" in environ else [],
        )
        path = str(environ.get("PATH_INFO", ""))
        if refusal is None and "moto-api" in path.lower():
            refusal = Refusal(404, "moto's control API is not served here")
        if refusal is None and environ.get("REQUEST_METHOD") == "OPTIONS":
            refusal = Refusal(403, "no CORS here: AWS SDKs do not send preflights")
        if refusal is not None:
            body = refusal.body()
            headers = [*refusal.headers(), ("content-length", str(len(body)))]
            start_response(f"{refusal.status} {refusal.title}", headers)
            return [body]

        def without_cors(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, kept, *exc_info)

        return self.app(environ, without_cors)
