"""`make serve`: the service on a local HTTP port, as the apps will see it once deployed.

No Docker and no AWS account: API Gateway's part (routes, the JWT authorizer, CORS, payload
format 2.0 events, its own 401/404/500 answers, the access log) is played here; the functions
are the real handlers, each in its own pool of worker processes run like Lambda execution
environments (lambda_workers.py: its own cold starts, its own Timeout); Secrets Manager,
DynamoDB, KMS and Plaid are local stand-ins unless configured (local_env.py, shared with
`make invoke`). From template.yaml: the routes (every function's HttpApi events, matched as
API Gateway matches them, apigw_routes.py: `DELETE /items/{item_id}` to ItemsFunction's
Handler with its path parameter; an unrouted method or path is API Gateway's 404), each
function's Handler, CodeUri and Timeout, the CORS settings and the access-log format. The JWT
authorizer guards every route but those whose event says `Auth: {Authorizer: NONE}` (POST
/webhooks/plaid: Plaid signs its webhooks instead), which get no Authorization check and no
claims. Each SQS event of a function (the webhook queue's processor) is played by a poller
thread (sqs_poller.py) on the queue local_env.py created, invoking that function's workers with
Lambda's SQS event. With the Plaid stand-in, the functions' PLAID_WEBHOOK_URL is this server's
own receiver, so the stand-in's webhooks arrive here; Plaid Sandbox cannot reach a laptop.

Settings (environment): HOST (127.0.0.1; anything else is opt-in and said loudly), PORT
(3000; 0 = a free port), WORKERS (4, per function), ALLOWED_ORIGINS (comma-separated; empty =
no CORS, as deployed), WEB_ROOT (examples/web: static files served on GET when the folder
exists), SERVE_LOG_LEVEL (INFO; DEBUG adds a line per queue batch), and everything `make
invoke` reads. The banner (stderr) starts with a line a program can parse, `serve: listening
on http://HOST:PORT`, and ends with `serve: ready ...`; infra/gateway/serve_process.py starts
the server the way `make serve` does and reads it.

It sits beside the developer's browser, often with real Sandbox keys, so it is stricter than
the deployed API where a web page could abuse it: a request naming another Host (DNS
rebinding) or carrying an Origin that is neither its own nor in ALLOWED_ORIGINS is refused
before the authorizer (local_guard.py). Beyond loopback, only tokens signed with a random
per-run key are accepted (the banner prints one first), and real Plaid keys need
SERVE_REAL_KEYS_BEYOND_LOOPBACK=1.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import mimetypes
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Mapping, MutableMapping
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from infra.gateway import access_log, jwt_local
from infra.gateway.apigw_cors import Cors, parse_origins
from infra.gateway.apigw_event import (
    BadLambdaResponse,
    HttpResponse,
    IncomingRequest,
    allows_body,
    build_event,
    gateway_response,
    to_http_response,
)
from infra.gateway.apigw_routes import RouteMatch, RouteTable
from infra.gateway.cfn_template import (
    access_log_format,
    function_routes,
    http_api_cors,
    invoked_functions,
    load_template,
)
from infra.gateway.lambda_workers import Failed, WorkerPool, say
from infra.gateway.local_guard import (
    NOSNIFF,
    PAGE_CSP,
    GuardedHandler,
    Refusal,
    RequestGuard,
    authority,
)
from infra.gateway.queue_sources import describe_source, queue_pollers
from infra.gateway.standin_link import COMPLETE_PATH, StandInLink
from infra.invoke.local_env import (
    ROOT,
    Backends,
    LocalSetupError,
    local_backends,
    may_hold_real_keys,
)
from linktoken.config import is_loopback_host  # the service's own rules, one source of truth

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API payload limit
LAMBDA_MAX_EVENT_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
READ_TIMEOUT_S = 30.0  # a client this slow to send its request is dropped
# Chunked framing: every line, chunk and trailer is bounded, so no request can make the server
# read without limit or loop for long; anything malformed is a 400 and the connection closes.
MAX_LINE_BYTES = 1024  # a chunk-size line (with its extensions) or a trailer line
MAX_CHUNKS = 16 * 1024
MAX_TRAILERS = 32
_CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?\r?\n")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,15}")
MAX_STATIC_PATH = 1024  # longer is no file of the web root (and too long for the file system)
REAL_KEYS_OPT_IN = "SERVE_REAL_KEYS_BEYOND_LOOPBACK"
# The Android emulator's name for the host's loopback: its apps reach 127.0.0.1 with this Host.
# An address literal, so no DNS rebinding can produce it.
ANDROID_EMULATOR_HOST = "10.0.2.2"
STANDIN_HEADER = "x-plaid-stand-in"


class _Done(Exception):
    """The request cannot be answered (the client went away or stalled): drop the connection."""


class _Handler(GuardedHandler):
    protocol_version = "HTTP/1.1"
    max_body_bytes = None  # framed here, as API Gateway does (chunked too, 413 past 10 MB)
    server: LocalApiServer
    timeout = READ_TIMEOUT_S

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the access log line is written per request, in the template's format

    def handle_one_request(self) -> None:  # noqa: PLR0911 - one return per way a request ends
        """One request of any method; every answer is written by `_send`."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self._send(gateway_response(414, "Request-URI Too Long"), close=True)
            return
        if not self.parse_request():  # it has answered: send_error, or refuse (the guard)
            return
        try:
            body = self._read_body()
            request = self._incoming(body)
        except _Done:
            self.close_connection = True
            return
        except _TooLarge:
            self._send(gateway_response(413, "Request Entity Too Large"), close=True)
            return
        except ValueError:
            self._send(gateway_response(400, "Bad Request"), close=True)
            return
        started = time.perf_counter()
        response, log = self.server.answer(request)
        try:
            self._send(response, head_only=request.method == "HEAD")
        except OSError:  # the client left before its answer
            self.close_connection = True
        log["responseLatency"] = round((time.perf_counter() - started) * 1000)
        self.server.access_log(request, response, log)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A request line or headers that do not parse: a bare 4xx, as a front end answers."""
        self._send(gateway_response(code, message or "Bad Request"), close=True)

    def refuse(self, refusal: Refusal) -> None:
        """The guard's refusal (wrong Host, foreign Origin): before the authorizer and the
        function, the body unread; logged like any answer."""
        request = self._incoming(b"")
        response = HttpResponse(refusal.status, refusal.headers(), refusal.body())
        response.headers.append(("apigw-requestid", request.request_id))
        try:
            self._send(response, close=True)
        except OSError:
            self.close_connection = True
        log = {"error.message": refusal.title, "responseLatency": 0}
        self.server.access_log(request, response, log)

    def _read_body(self) -> bytes:
        """The body, framed as HTTP/1.1 says; ValueError (400) for any framing API Gateway
        would not accept either: a length that is not digits, both framings, other codings."""
        codings = self.headers.get_all("Transfer-Encoding")
        lengths = self.headers.get_all("Content-Length") or []
        if codings:
            if lengths or [c.strip().lower() for c in codings] != ["chunked"]:
                raise ValueError("unsupported or ambiguous framing")
            return self._read_chunked()
        if not lengths:
            return b""
        if len(lengths) != 1 or not _CONTENT_LENGTH.fullmatch(lengths[0].strip()):
            raise ValueError("Content-Length is not one decimal number")
        length = int(lengths[0])
        if length > MAX_BODY_BYTES:
            raise _TooLarge
        return self._read_exactly(length)

    def _read_chunked(self) -> bytes:
        body = bytearray()
        for _ in range(MAX_CHUNKS):
            # Hex digits only: int(..., 16) alone would take "-1", and read(-1) reads to EOF.
            match = _CHUNK_SIZE_LINE.fullmatch(self._readline())
            if match is None:
                raise ValueError("malformed chunk-size line")
            size = int(match.group(1), 16)
            if size == 0:
                self._skip_trailers()
                return bytes(body)
            if len(body) + size > MAX_BODY_BYTES:
                raise _TooLarge
            body += self._read_exactly(size)
            if self._readline() not in (b"\r\n", b"\n"):
                raise ValueError("chunk data not followed by CRLF")
        raise ValueError("too many chunks")

    def _skip_trailers(self) -> None:
        for _ in range(MAX_TRAILERS):
            if self._readline() in (b"\r\n", b"\n"):
                return
        raise ValueError("too many trailer lines")

    def _readline(self) -> bytes:
        """One line of at most MAX_LINE_BYTES; ValueError if longer, _Done at EOF."""
        try:
            line = self.rfile.readline(MAX_LINE_BYTES + 1)
        except (TimeoutError, OSError):
            raise _Done from None
        if len(line) > MAX_LINE_BYTES:
            raise ValueError("line too long")
        if not line.endswith(b"\n"):  # EOF before the line ended: the client left
            raise _Done
        return line

    def _read_exactly(self, length: int) -> bytes:
        try:
            data = self.rfile.read(length)
        except (TimeoutError, OSError):
            raise _Done from None
        if len(data) < length:  # the client disconnected mid-body
            raise _Done
        return data

    def _incoming(self, body: bytes) -> IncomingRequest:
        target = urlsplit(self.path)
        return IncomingRequest(
            method=self.command,
            raw_path=target.path or "/",
            raw_query=target.query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
            server_port=self.server.server_address[1],
        )

    def _send(self, response: HttpResponse, head_only: bool = False, close: bool = False) -> None:
        lines = [f"HTTP/1.1 {response.status} {self.responses.get(response.status, ('',))[0]}"]
        lines += [f"{name}: {value}" for name, value in response.headers]
        if response.header(NOSNIFF[0]) is None:  # every answer: no content sniffing
            lines.append(f"{NOSNIFF[0]}: {NOSNIFF[1]}")
        lines.append(f"date: {self.date_time_string()}")
        body = response.body
        if allows_body(response.status):
            lines.append(f"content-length: {len(body)}")
        else:  # a 204 ends at its head: no Content-Length (RFC 9110 8.6), no body
            body = b""
        if close:
            lines.append("connection: close")
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.wfile.write(head if head_only else head + body)  # one write: no Nagle
        self.wfile.flush()


class _TooLarge(Exception):
    pass


class LocalApiServer(ThreadingHTTPServer):
    """API Gateway's side of each request; the functions' side is their worker pools."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # a burst of clients connecting at once is queued, not refused

    def __init__(
        self,
        address: tuple[str, int],
        routes: RouteTable,
        pools: Mapping[str, WorkerPool],
        cors: Cors,
        log_format: str,
        web_root: Path | None,
        standin_in_use: bool,
        jwt_key: bytes | None = None,
    ) -> None:
        if ":" in address[0]:  # an IPv6 literal such as ::1
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        beyond_loopback = not is_loopback_host(address[0])
        # Beyond loopback the Host names are the network's (an IP, a hostname); the per-run
        # signing key, not the Host, is what keeps other callers out there.
        self.request_guard = RequestGuard.for_address(
            self.server_address,
            own_origin=True,
            origins=cors.origins,
            any_host=beyond_loopback,
            alias_hosts=(ANDROID_EMULATOR_HOST,),
        )
        self.jwt_key = jwt_key
        self.routes = routes
        self.pools = pools  # by function (logical id)
        self.cors = cors
        self.log_format = log_format
        self.web_root = web_root
        self.standin_in_use = standin_in_use
        # The Link stand-in's route (standin_link.py): set only with the stand-in, on loopback.
        self.standin_link: StandInLink | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that left mid-exchange is routine; anything else is a bug worth a trace."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)

    def answer(self, request: IncomingRequest) -> tuple[HttpResponse, dict[str, Any]]:
        """The response API Gateway sends, and the access-log variables it fills."""
        log: dict[str, Any] = {}
        try:
            # API Gateway answers a preflight itself, before routes and the authorizer.
            response = (
                (self.standin_link and self.standin_link.answer(request))
                or self.cors.preflight(request)
                or self.cors.apply(request, self._route(request, log))
            )
        except Exception:  # a bug here must cost one request, not the connection or the server
            traceback.print_exc()
            log["error.message"] = "Internal Server Error"
            response = gateway_response(500, "Internal Server Error")
        response.headers.append(("apigw-requestid", request.request_id))
        return response, log

    def _route(self, request: IncomingRequest, log: dict[str, Any]) -> HttpResponse:
        match = self.routes.match(request.method, request.raw_path)
        if match is not None:
            log["routeKey"] = match.route.route_key
            return self._api(request, match, log)
        if request.method in {"GET", "HEAD"} and self.web_root is not None:
            found = static_file(self.web_root, request.raw_path)
            if found is not None:
                return found
        return _not_found(log)

    def _api(
        self, request: IncomingRequest, match: RouteMatch, log: dict[str, Any]
    ) -> HttpResponse:
        # The JWT authorizer, as the template puts it before each route (not the webhook's).
        claims: dict[str, str] | None = None
        if match.route.authorized:
            verdict = jwt_local.authorize(request.header("authorization"), key=self.jwt_key)
            if isinstance(verdict, jwt_local.Refusal):
                log.update({"authorizer.error": verdict.reason, "error.message": "Unauthorized"})
                return gateway_response(
                    401, "Unauthorized", {"www-authenticate": verdict.www_authenticate}
                )
            claims = verdict
        event = build_event(request, claims, match.route.route_key, match.path_parameters)
        # JSON escaping at most sextuples a byte: only a large body can pass Lambda's limit.
        if len(request.body) * 6 > LAMBDA_MAX_EVENT_BYTES - 64 * 1024 and (
            len(json.dumps(event)) > LAMBDA_MAX_EVENT_BYTES
        ):  # Lambda refuses the invocation; API Gateway reports an integration failure
            log.update(
                {
                    "integrationErrorMessage": "Lambda: request payload too large",
                    "error.message": "Internal Server Error",
                }
            )
            return gateway_response(500, "Internal Server Error")
        outcome = self.pools[match.route.function].invoke(event)
        log["integrationLatency"] = round(outcome.duration_ms)
        if isinstance(outcome, Failed):
            status, message = (
                (503, "Service Unavailable")
                if outcome.gateway_gave_up
                else (500, "Internal Server Error")
            )
            log.update({"integrationErrorMessage": outcome.reason, "error.message": message})
            return gateway_response(status, message)
        log["integrationStatus"] = 200
        try:
            response = to_http_response(outcome.result)
        except BadLambdaResponse as exc:
            log.update(
                {"integrationErrorMessage": str(exc), "error.message": "Internal Server Error"}
            )
            return gateway_response(500, "Internal Server Error")
        if self.standin_in_use:
            response.headers.append((STANDIN_HEADER, "not-plaid; tokens work nowhere"))
        return response

    def access_log(
        self, request: IncomingRequest, response: HttpResponse, log: dict[str, Any]
    ) -> None:
        when = time.gmtime(request.time_epoch_ms / 1000)
        context = {
            "requestId": request.request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", when),
            "identity.sourceIp": request.source_ip,
            "identity.userAgent": request.header("user-agent"),
            "httpMethod": request.method,
            "routeKey": "-",
            "status": response.status,
            "protocol": request.protocol,
            "responseLength": len(response.body),
            **log,
        }
        say(access_log.render(self.log_format, context))


def _not_found(log: dict[str, Any]) -> HttpResponse:
    log["error.message"] = "Not Found"
    return gateway_response(404, "Not Found")


_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}


def static_file(web_root: Path, raw_path: str) -> HttpResponse | None:
    """A file of the web root (`/` is index.html), or None: nothing outside it, ever, and no
    dotfile or dot folder (`.env`, `.git/`) in it, however the path is encoded."""
    relative = unquote(raw_path).lstrip("/") or "index.html"
    if "\x00" in relative or "\\" in relative or len(relative) > MAX_STATIC_PATH:
        return None
    # Any segment starting with a dot: `.env`, `.git`, and every `.`/`..` (no legitimate
    # page needs them; resolving them is how `/sub/..%2f.env` would reach a dotfile).
    if any(segment.startswith(".") for segment in relative.split("/")):
        return None
    try:
        root = web_root.resolve()
        candidate = (root / relative).resolve()
        if not candidate.is_relative_to(root) or not candidate.is_file():
            return None
        if any(part.startswith(".") for part in candidate.relative_to(root).parts):
            return None  # a symlink to a dotfile
        data = candidate.read_bytes()
    except (OSError, ValueError):  # a name too long for the file system, unreadable...
        return None
    content_type = _CONTENT_TYPES.get(candidate.suffix.lower()) or (
        mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
    )
    headers = [("content-type", content_type), ("cache-control", "no-store")]
    if content_type.startswith("text/html"):
        headers.append(("content-security-policy", PAGE_CSP))
    return HttpResponse(200, headers, data)


def _banner(
    url: str,
    host: str,
    backends: Backends,
    cors: Cors,
    web_root: Path | None,
    jwt_key: bytes | None,
    routes: RouteTable,
    queue_lines: list[str],
) -> str:
    token = jwt_local.dev_token(key=jwt_key)
    lines = [f"serve: listening on {url}"]
    if jwt_key is not None:  # beyond loopback: said first, with the only kind of token it takes
        lines += [
            f"serve: WARNING: listening on {host}, NOT loopback: anyone on this network can"
            " reach it. Only tokens signed with this run's random key (HS256) are accepted.",
            f"serve: dev token (sub={jwt_local.DEV_SUB}, 24 h, signed for this run): {token}",
            "serve: JWT: HS256 signature with this run's key required; the claims are passed on",
        ]
    else:
        lines += [
            "serve: JWT: signatures are NOT checked (loopback only); the claims are passed on",
            f"serve: dev token (sub={jwt_local.DEV_SUB}, 24 h): {token}",
        ]
    method_width = max(len(route.method) for route in routes.routes)
    path_width = max(len(route.path) for route in routes.routes)
    lines += [
        f"serve: route {route.method:<{method_width}} {route.path:<{path_width}}"
        f"  {route.function} ({route.handler}, timeout {route.timeout_seconds} s)"
        for route in routes.routes
    ]
    open_routes = [route.route_key for route in routes.routes if not route.authorized]
    lines += [
        f"serve: workers: {os.environ['WORKERS']} per function, each its own execution"
        " environment (the real handlers; every route behind the JWT authorizer"
        + (f" but {', '.join(open_routes)}: Auth NONE in the template)" if open_routes else ")"),
        f"serve: Plaid: {backends.plaid}",
        f"serve: Secret: {backends.secrets}",
        f"serve: Items: {backends.items}",
        *(f"serve: {line}" for line in queue_lines),
        f"serve: CORS origins: {', '.join(cors.origins) or 'none (set ALLOWED_ORIGINS)'}"
        " (requests from any other web page are refused)",
        f"serve: try: curl -s -X POST {url}/link-token -H 'authorization: Bearer {token}'"
        " -H 'content-type: application/json' -d '{\"platform\":\"web\"}'",
        f"serve: try: curl -s {url}/items -H 'authorization: Bearer {token}'",
    ]
    if backends.standin is not None:
        lines.append(f"serve: Plaid stand-in: {backends.standin.base_url}")
        lines.append(f"serve: stand-in script: POST {backends.standin.control_url}")
        if not jwt_key:
            lines.append(f"serve: Link stand-in completes sessions: POST {url}{COMPLETE_PATH}")
        # With the stand-in's own fake keys: a public token for POST /items, as Link's
        # onSuccess would give one.
        lines.append(
            "serve: public token for POST /items (the stand-in's fake keys): curl -s -X POST"
            f" {backends.standin.base_url}/sandbox/public_token/create"
            f" -H 'content-type: application/json' -H 'plaid-client-id:"
            f" {backends.standin.client_id}' -H 'plaid-secret: {backends.standin.secret}'"
            ' -d \'{"institution_id":"ins_109508","initial_products":["transactions"]}\''
        )
    if web_root is not None:
        lines.append(f"serve: web page: {url}/ (from {web_root})")
    lines.append("serve: ready (Ctrl-C stops the server, its workers and its stand-ins)")
    return "\n".join(lines)


def function_pools(template: dict[str, Any], size: int) -> dict[str, WorkerPool]:
    """One worker pool per function a route or a queue invokes: its Handler in its CodeUri,
    its own Timeout."""
    return {
        function.function: WorkerPool(
            size,
            function.timeout_seconds,
            ROOT / function.code_uri,
            handler=function.handler,
            name=function.function,
        )
        for function in invoked_functions(template)
    }


def webhook_url(host: str, port: int, path: str) -> str | None:
    """This server's own receiver as the Plaid stand-in can post to it (it delivers to
    loopback only): the loopback host itself, 127.0.0.1 or ::1 for a wildcard; None for an
    address of the network."""
    if is_loopback_host(host):
        return f"http://{authority(host, port)}{path}"
    if host in {"0.0.0.0", ""}:  # noqa: S104 - naming the wildcard, not binding it
        return f"http://127.0.0.1:{port}{path}"
    if host == "::":
        return f"http://[::1]:{port}{path}"
    return None


def configure_webhook_url(
    environ: MutableMapping[str, str], standin_in_use: bool, host: str, port: int
) -> str:
    """Set PLAID_WEBHOOK_URL for the workers (before they start) to this server's receiver when
    the stand-in plays Plaid; what the banner says of webhooks either way."""
    if environ.get("PLAID_WEBHOOK_URL"):
        return f"Plaid is told {environ['PLAID_WEBHOOK_URL']} (PLAID_WEBHOOK_URL, yours)"
    if not standin_in_use:
        return (
            "Plaid cannot reach this machine, so its webhooks will not arrive; an Item's health"
            " comes from POST /items/{item_id}/refresh"
        )
    if environ.get("PLAID_ENV", "sandbox") != "sandbox":
        # The service takes an http:// webhook URL in sandbox only (linktoken.config).
        return f"none: PLAID_ENV={environ['PLAID_ENV']} takes no http:// webhook URL"
    url = webhook_url(host, port, environ.get("PLAID_WEBHOOK_PATH") or "/webhooks/plaid")
    if url is None:
        return f"none arrive: the stand-in posts to loopback only, and {host} is not"
    environ["PLAID_WEBHOOK_URL"] = url
    return f"the stand-in posts them to {url} (PLAID_WEBHOOK_URL of new Items' link tokens)"


def _configure_logging(level_name: str | None) -> None:
    """The tools' own log lines (a queue batch is DEBUG) to stderr, one write each."""
    level = logging.getLevelNamesMapping().get((level_name or "INFO").upper(), logging.INFO)

    class _Say(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            say(self.format(record))

    logger = logging.getLogger("infra.gateway")
    logger.setLevel(level)
    logger.addHandler(_Say())
    logger.propagate = False


def _start_all(pools: Mapping[str, WorkerPool]) -> None:
    """Start every pool at once (their cold starts overlap); raise the first failure."""
    failures: list[BaseException] = []

    def start(pool: WorkerPool) -> None:
        try:
            pool.start()
        except RuntimeError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(p,), daemon=True) for p in pools.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def main() -> int:
    host = os.environ.get("HOST") or "127.0.0.1"
    port = int(os.environ.get("PORT") or 3000)
    os.environ["WORKERS"] = workers = str(max(1, int(os.environ.get("WORKERS") or 4)))
    web_root_setting = Path(os.environ.get("WEB_ROOT") or ROOT / "examples/web")
    web_root = web_root_setting if web_root_setting.is_dir() else None
    template = load_template()
    stop = threading.Event()
    _configure_logging(os.environ.get("SERVE_LOG_LEVEL"))

    def on_signal(signum: int, frame: object) -> None:
        # Once serving, stop in order; before that (imports, cold starts) unwind at once.
        if not serving.is_set():
            raise KeyboardInterrupt
        stop.set()

    if (
        not is_loopback_host(host)
        and may_hold_real_keys(os.environ)
        and os.environ.get(REAL_KEYS_OPT_IN) != "1"
    ):
        say(
            f"serve: refusing to listen on {host} (NOT loopback) with real Plaid keys"
            " (PLAID_CLIENT_ID/PLAID_SECRET, or a Secrets Manager you chose): anyone who gets a"
            " token could create link tokens with them. Use HOST=127.0.0.1, or the stand-in"
            f" (unset them), or set {REAL_KEYS_OPT_IN}=1 to accept that risk."
        )
        return 2
    serving = threading.Event()
    # A stop that hangs can be read: SIGUSR1 prints every thread's stack to stderr (the tests'
    # serve_process sends it before SIGKILL when Ctrl-C did not stop the server in time).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        return _serve(host, port, workers, web_root, template, serving, stop)
    except KeyboardInterrupt:
        say("serve: stopped while starting")
        return 130
    except LocalSetupError as exc:
        say(f"serve: cannot start: {exc}")
        return 2


def _serve(
    host: str,
    port: int,
    workers: str,
    web_root: Path | None,
    template: dict[str, Any],
    serving: threading.Event,
    stop: threading.Event,
) -> int:
    with contextlib.ExitStack() as stack:
        # Entered first, left last: the server and the workers stop before what they call.
        backends = stack.enter_context(local_backends(os.environ))
        cors = Cors(
            http_api_cors(template),
            parse_origins(os.environ.get("ALLOWED_ORIGINS")),
            extra_expose=(STANDIN_HEADER,) if backends.standin else (),
        )
        routes = RouteTable(function_routes(template))
        pools = function_pools(template, int(workers))
        # Beyond loopback, tokens must be signed with a key only this run (and its banner's
        # token) knows; it is never printed.
        jwt_key = None if is_loopback_host(host) else secrets.token_bytes(32)
        try:  # bind first: a taken port fails in a moment, not after the workers' cold starts
            server = LocalApiServer(
                (host, port),
                routes,
                pools,
                cors,
                access_log_format(template),
                web_root,
                bool(backends.standin),
                jwt_key,
            )
        except OSError as exc:  # port taken, address not on this machine...
            say(f"serve: cannot listen on {host}:{port}: {exc.strerror} (choose another PORT/HOST)")
            return 1
        stack.callback(server.server_close)
        bound_port = server.server_address[1]
        # The workers read it at their start: set now that the port is known.
        webhooks = configure_webhook_url(os.environ, bool(backends.standin), host, bound_port)
        if backends.standin and jwt_key is None:  # the stand-in, on loopback
            marker = (STANDIN_HEADER, "not-plaid; tokens work nowhere")
            server.standin_link = StandInLink(
                server.server_address, backends.standin.base_url, marker
            )
        pollers = queue_pollers(template, backends, pools, os.environ)
        for poller in pollers:  # joined once the workers are stopped (which ends a batch)
            stack.callback(poller.join)
        for pool in pools.values():
            stack.callback(pool.stop)
        _start_all(pools)
        for poller in pollers:
            poller.start()
            stack.callback(poller.request_stop)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
        thread.daemon = True
        thread.start()
        stack.callback(server.shutdown)
        url = f"http://{authority(host, bound_port)}"
        queue_lines = [
            f"Queue: {backends.webhooks}",
            *(f"Queue poller: {describe_source(poller.source)}" for poller in pollers),
            f"Webhooks: {webhooks}",
        ]
        say(_banner(url, host, backends, cors, web_root, jwt_key, routes, queue_lines))
        serving.set()
        stop.wait()
        say("serve: stopping")
    return 0
