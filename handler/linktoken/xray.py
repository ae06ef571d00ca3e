"""X-Ray subsegments of the function's segment, sent straight to the X-Ray daemon.

In Lambda, the function's segment is Lambda's own; a function adds subsegments to it by sending
JSON documents over UDP to the daemon (`AWS_XRAY_DAEMON_ADDRESS`), naming the trace and the
parent segment that `_X_AMZN_TRACE_ID` carries for each invocation. That is all the X-Ray SDK
does here, and all this module does: the SDK's import (wrapt, asyncio, importlib.metadata) and
its per-call work (the trace header re-parsed ~20 times, one datagram per subsegment, dummy
entities when the invocation is not sampled) cost cold-start and warm time for nothing this
service uses (measured in docs/performance.md).

Per invocation: when the header says `Sampled=1`, the handler's subsegment (`## <handler>`, with
`ColdStart` and `Service` annotations, as Powertools Tracer names them) collects the calls made
inside it as nested subsegments and goes out as one datagram when the handler returns. When the
header says `Sampled=0`, or there is none (a direct invoke), nothing is recorded or sent. Only
names, annotations and HTTP facts are recorded: never request or response bodies, never
exception messages.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from functools import wraps
from typing import Any, Final, TypeVar

PROTOCOL_HEADER: Final = b'{"format":"json","version":1}\n'
DEFAULT_DAEMON: Final = ("127.0.0.1", 2000)
_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
Handler = TypeVar("Handler", bound=Callable[..., Any])
# Opens a subsegment named by its argument (None inside when not sampled); `no_span` records
# nothing, for code run without tracing (tests, tools).
Span = Callable[[str], AbstractContextManager[Any]]


def no_span(_name: str) -> AbstractContextManager[Any]:
    return nullcontext()


def parse_trace_header(header: str | None) -> tuple[str, str] | None:
    """(trace id, parent id) of a sampled invocation's `_X_AMZN_TRACE_ID`, else None.

    >>> parse_trace_header("Root=1-5e0b-a1;Parent=53995c3f42cd8ad8;Sampled=1")
    ('1-5e0b-a1', '53995c3f42cd8ad8')
    """
    if not header or "Sampled=1" not in header:
        return None
    fields = dict(part.split("=", 1) for part in header.split(";") if "=" in part)
    root, parent = fields.get("Root"), fields.get("Parent")
    if not root or not parent or fields.get("Sampled") != "1":
        return None
    return root, parent


def daemon_address(value: str | None) -> tuple[str, int]:
    """The daemon's UDP address: `host:port` or `[ipv6]:port`, or the `udp:... tcp:...` form.

    The host must be an IP address (Lambda's always is): a name would be a DNS lookup on
    every sampled invocation. Anything malformed (a port outside 1-65535, no port, a name)
    gives the default, so `sendto` is only ever handed an address it can take.
    """
    for part in (value or "").split():
        if not part.startswith("tcp:"):
            address = _ip_and_port(part.removeprefix("udp:"))
            if address is not None:
                return address
    return DEFAULT_DAEMON


def _ip_and_port(text: str) -> tuple[str, int] | None:
    host, _, port = text.rpartition(":")
    # isascii: str.isdigit() also accepts digits int() reads but no address has.
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) <= 65535):
        return None
    v6 = host.startswith("[") and host.endswith("]")
    if v6:
        host = host[1:-1]
    try:
        socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, host)
    except (OSError, ValueError):  # not an IP address of that family
        return None
    return host, int(port)


def tracing_enabled(environ: Mapping[str, str]) -> bool:
    """Traced in Lambda unless POWERTOOLS_TRACE_DISABLED says otherwise (Powertools' rule: off
    outside Lambda, under SAM local and Chalice local, where no daemon listens)."""
    if environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in _TRUE:
        return False
    local = environ.get("AWS_SAM_LOCAL") or environ.get("AWS_CHALICE_CLI_MODE")
    return bool(environ.get("LAMBDA_TASK_ROOT")) and not local


class Subsegment:
    """One timed piece of the invocation: a name, annotations, HTTP and AWS facts, children."""

    __slots__ = (
        "annotations",
        "aws",
        "cause",
        "children",
        "end_time",
        "error",
        "fault",
        "http",
        "id",
        "name",
        "namespace",
        "start_time",
        "throttle",
    )

    def __init__(self, name: str, namespace: str | None = None) -> None:
        self.id = os.urandom(8).hex()
        self.name = name
        self.namespace = namespace
        self.start_time = time.time()
        self.end_time = 0.0
        self.annotations: dict[str, str | int | float | bool] = {}
        self.http: dict[str, dict[str, Any]] = {}
        self.aws: dict[str, Any] = {}
        self.children: list[Subsegment] = []
        self.fault = self.error = self.throttle = False
        self.cause: str | None = None

    def put_annotation(self, key: str, value: str | int | float | bool) -> None:
        self.annotations[key] = value

    def put_http_meta(self, key: str, value: Any) -> None:
        """The X-Ray SDK's call: `method`/`url` go to the request, `status` to the response
        (and flags the subsegment as X-Ray does: 429 throttle, 4xx error, 5xx fault)."""
        if key == "status":
            self.http.setdefault("response", {})["status"] = value
            if value == 429:
                self.throttle = self.error = True
            elif 400 <= value < 500:
                self.error = True
            elif value >= 500:
                self.fault = True
        else:
            self.http.setdefault("request", {})[key] = value

    def failed(self, exc: BaseException) -> None:
        """An exception left the subsegment: fault, with its type only (no message)."""
        self.fault = True
        self.cause = type(exc).__name__

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "start_time": self.start_time,
            "end_time": self.end_time,
        }
        if self.namespace:
            doc["namespace"] = self.namespace
        for key in ("annotations", "http", "aws"):
            if getattr(self, key):
                doc[key] = getattr(self, key)
        for key in ("fault", "error", "throttle"):
            if getattr(self, key):
                doc[key] = True
        if self.cause:
            doc["cause"] = {"exceptions": [{"id": os.urandom(8).hex(), "type": self.cause}]}
        if self.children:
            doc["subsegments"] = [child.document() for child in self.children]
        return doc


_NOT_SAMPLED: Final[AbstractContextManager[None]] = nullcontext()


class Tracer:
    """The handler decorator, annotations and subsegments for sampled invocations only."""

    def __init__(self, service: str, environ: Mapping[str, str] = os.environ) -> None:
        self.service = service
        self.enabled = tracing_enabled(environ)
        self.daemon = daemon_address(environ.get("AWS_XRAY_DAEMON_ADDRESS"))
        self._environ = environ
        self._cold_start = environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != (
            "provisioned-concurrency"
        )
        self._stack: list[Subsegment] = []  # the open subsegments of this invocation
        self._socket: socket.socket | None = None

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        """Record the handler as `## <name>` when the invocation is sampled; else just call it."""
        name = f"## {handler.__name__}"

        @wraps(handler)
        def traced(event: Any, context: Any) -> Any:
            cold_start, self._cold_start = self._cold_start, False
            trace = parse_trace_header(self._environ.get("_X_AMZN_TRACE_ID"))
            if not self.enabled or trace is None:
                return handler(event, context)
            root = Subsegment(name)
            root.put_annotation("ColdStart", cold_start)
            root.put_annotation("Service", self.service)
            self._stack = [root]
            try:
                return handler(event, context)
            except BaseException as exc:
                root.failed(exc)
                raise
            finally:
                self._stack = []
                root.end_time = time.time()
                self._send(root, *trace)

        return traced  # type: ignore[return-value]

    @property
    def recording(self) -> bool:
        """Whether the current invocation is sampled (annotations and subsegments are kept)."""
        return bool(self._stack)

    def put_annotation(self, key: str, value: str | int | float | bool) -> None:
        """Annotate the handler's subsegment (searchable in X-Ray); a no-op when not sampled."""
        if self._stack:
            self._stack[0].put_annotation(key, value)

    def subsegment(
        self, name: str, namespace: str | None = None
    ) -> AbstractContextManager[Subsegment | None]:
        """A nested subsegment around a call; yields None when the invocation is not sampled
        (one shared no-op context: nothing is allocated for it)."""
        return self._recorded(name, namespace) if self._stack else _NOT_SAMPLED

    @contextmanager
    def _recorded(self, name: str, namespace: str | None) -> Iterator[Subsegment]:
        sub = Subsegment(name, namespace)
        self._stack[-1].children.append(sub)
        self._stack.append(sub)
        try:
            yield sub
        except BaseException as exc:
            sub.failed(exc)
            raise
        finally:
            sub.end_time = time.time()
            if self._stack and self._stack[-1] is sub:
                self._stack.pop()

    def _send(self, root: Subsegment, trace_id: str, parent_id: str) -> None:
        """One datagram; losing it must never fail the invocation (UDP, as the SDK)."""
        try:
            doc = root.document()
            doc.update(trace_id=trace_id, parent_id=parent_id, type="subsegment")
            data = PROTOCOL_HEADER + json.dumps(doc, separators=(",", ":")).encode()
            if self._socket is None:
                family = socket.AF_INET6 if ":" in self.daemon[0] else socket.AF_INET
                self._socket = socket.socket(family, socket.SOCK_DGRAM)
            self._socket.sendto(data, self.daemon)
        except Exception:  # whatever it is: a trace never changes an answer
            # A socket that failed once is not trusted again: the next trace opens a new one.
            broken, self._socket = self._socket, None
            if broken is not None:
                with suppress(Exception):
                    broken.close()
