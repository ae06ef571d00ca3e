"""A loopback front for moto's server that plays the DynamoDB and KMS faults moto cannot:
throttling, AWS's own 5xx, access denied, slowness, a dropped connection. Everything not
scripted is passed on to moto unchanged, so the service's real clients (`linktoken.aws_json`
with Lambda's credentials), with their timeouts and retries, meet each fault in the middle of
a real flow.

    with moto_server() as moto, AwsFaults(moto) as aws:
        aws.script("DynamoDB_20120810.Query", AwsError("ThrottlingException"))
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = aws.endpoint

Actions are matched by the request's `X-Amz-Target` and used once each, in order.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

import requests

from infra.doubles.loopback import LoopbackHandler

# What moto's answers carry that the front passes back (the rest is hop-by-hop or recomputed).
_PASSED_HEADERS = ("Content-Type", "x-amzn-RequestId", "x-amzn-ErrorType", "x-amz-crc32")


@dataclass(frozen=True)
class AwsError:
    """An error answer as DynamoDB and KMS send it (AWS JSON: `__type` and a message)."""

    code: str
    status: int = 400
    message: str = "scripted by the loopback double"


@dataclass(frozen=True)
class AwsSlow:
    """moto's answer, after `delay` seconds."""

    delay: float


@dataclass(frozen=True)
class AwsDrop:
    """Close the connection without answering."""


@dataclass(frozen=True)
class AwsPass:
    """moto's answer, unchanged: to let an earlier call through and fault a later one."""


AwsAction = AwsError | AwsSlow | AwsDrop | AwsPass


class _Handler(LoopbackHandler):
    server: _Server

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        faults = self.server.faults
        target = self.headers.get("X-Amz-Target", "")
        action = faults.take(target)
        if isinstance(action, AwsDrop):
            self.close_connection = True
            return
        if isinstance(action, AwsError):
            doc = {"__type": f"com.amazonaws#{action.code}", "message": action.message}
            headers = {
                "Content-Type": "application/x-amz-json-1.0",
                "x-amzn-ErrorType": action.code,
            }
            self.answer(action.status, json.dumps(doc).encode(), headers)
            return
        if isinstance(action, AwsSlow):
            time.sleep(action.delay)
        passed = {
            k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}
        }
        upstream = requests.post(faults.upstream, data=raw, headers=passed, timeout=10)
        headers = {k: upstream.headers[k] for k in _PASSED_HEADERS if k in upstream.headers}
        self.answer(upstream.status_code, upstream.content, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, faults: AwsFaults) -> None:
        self.faults = faults
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and closed: expected here


class AwsFaults:
    """Run the front on a free loopback port for a `with` block."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.lock = threading.Lock()
        self.requests: list[str] = []  # the X-Amz-Target of every request, in order
        self._scripted: list[tuple[str, AwsAction]] = []
        self._server: _Server | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "use AwsFaults as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, target: str, *actions: AwsAction) -> None:
        """Queue actions for the next requests to `target` (e.g. `TrentService.Encrypt`)."""
        with self.lock:
            self._scripted.extend((target, action) for action in actions)

    def take(self, target: str) -> AwsAction | None:
        with self.lock:
            self.requests.append(target)
            for index, (wanted, action) in enumerate(self._scripted):
                if wanted == target:
                    del self._scripted[index]
                    return action
        return None

    def __enter__(self) -> AwsFaults:
        self._server = _Server(self)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
