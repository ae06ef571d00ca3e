"""A Lambda Runtime API emulator on loopback, for running a function under the real runtime
interface client (`awslambdaric`), as Lambda does.

The client long-polls `GET /2018-06-01/runtime/invocation/next` for an event (with the
`Lambda-Runtime-*` headers Lambda sets), then posts the handler's result to
`.../invocation/{id}/response`, or an unhandled exception to `.../invocation/{id}/error`; an
init failure goes to `/2018-06-01/runtime/init/error`. The emulator queues events and records
what comes back.

Sockets set TCP_NODELAY and every answer is one write: otherwise Nagle's algorithm and delayed
ACKs add ~40 ms to every exchange.

    with RuntimeApi() as api:                  # env AWS_LAMBDA_RUNTIME_API=api.address
        request_id = api.invoke({"version": "2.0", ...})
        result = api.result(request_id)        # Result(kind="response", body=...)
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from infra.doubles.lambda_runtime import trace_header
from infra.doubles.loopback import LoopbackHandler

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:conformance"


@dataclass
class Result:
    """What the runtime client posted back for one invocation (or for init)."""

    kind: str  # "response", "error" or "init-error"
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(LoopbackHandler):
    server: _Server

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.answer(status, body, {"Content-Type": "application/json", **(headers or {})})

    def do_GET(self) -> None:
        if self.path != f"{PREFIX}/invocation/next":
            self._answer(404, b'{"errorType":"NotFound"}')
            return
        api = self.server.api
        while True:  # long poll, as Lambda's: the client waits here between invocations
            try:
                request_id, event, deadline_ms = api.pending.get(timeout=0.2)
                break
            except queue.Empty:
                if api.stopping.is_set():
                    self.close_connection = True
                    return
        headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
        }
        if api.sampled is not None:
            headers["Lambda-Runtime-Trace-Id"] = trace_header(sampled=api.sampled)
        self._answer(200, json.dumps(event).encode(), headers)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = self.path.removeprefix(PREFIX).strip("/").split("/")
        if parts == ["init", "error"]:
            key, kind = "init", "init-error"
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in {"response", "error"}:
            key, kind = parts[1], parts[2]
        else:
            self._answer(404, b'{"errorType":"NotFound"}')
            return
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.server.api.record(key, Result(kind, body, dict(self.headers)))
        self._answer(202, b'{"status":"OK"}')


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, api: RuntimeApi) -> None:
        self.api = api
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the function process was stopped mid long-poll: expected at the end of a run


class RuntimeApi:
    """Hands out queued events and keeps what the runtime client posts back.

    `sampled`: the trace header each invocation carries, `Sampled=1` (True) or `Sampled=0`
    (False, the default), or none at all (None: a direct invoke, or tracing in passthrough).
    """

    def __init__(self, sampled: bool | None = False) -> None:
        self.sampled = sampled
        self.pending: queue.Queue[tuple[str, Any, int]] = queue.Queue()
        self.stopping = threading.Event()
        self._results: dict[str, Result] = {}
        self._arrived = threading.Condition()
        self._server: _Server | None = None

    @property
    def address(self) -> str:
        assert self._server is not None, "use RuntimeApi as a context manager"
        return f"127.0.0.1:{self._server.server_address[1]}"

    def invoke(self, event: Any, timeout_ms: int = 20_000) -> str:
        """Queue an event; returns its request id."""
        request_id = str(uuid.uuid4())
        self.pending.put((request_id, event, int(time.time() * 1000) + timeout_ms))
        return request_id

    def record(self, key: str, result: Result) -> None:
        with self._arrived:
            self._results[key] = result
            self._arrived.notify_all()

    def result(self, key: str, timeout: float = 30.0) -> Result | None:
        """What came back for a request id (or "init"), waiting up to `timeout` seconds."""
        with self._arrived:
            self._arrived.wait_for(lambda: key in self._results, timeout)
            return self._results.get(key)

    def __enter__(self) -> RuntimeApi:
        self._server = _Server(self)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
