"""A loopback Secrets Manager double for the faults moto cannot play: access denied,
throttling, slowness. It speaks the real wire protocol (AWS JSON 1.1: `X-Amz-Target:
secretsmanager.GetSecretValue`, errors as `x-amzn-ErrorType` plus a `__type` body), so the
service's real Secrets Manager client (`linktoken.aws_json` with Lambda's credentials, botocore's
with any others), with its timeouts and retries, is what meets each fault.

    with SecretsFaults('{"client_id": "...", "secret": "..."}') as sm:
        sm.script(SmError("ThrottlingException"), SmError("ThrottlingException"))
        os.environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = sm.endpoint
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from infra.doubles.loopback import LoopbackHandler


@dataclass(frozen=True)
class SmError:
    """An error answer as Secrets Manager sends it."""

    code: str
    status: int = 400
    message: str = "scripted by the loopback double"


@dataclass(frozen=True)
class SmSlow:
    """The secret, after `delay` seconds."""

    delay: float


SmAction = SmError | SmSlow


class _Handler(LoopbackHandler):
    server: _Server

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        double = self.server.double
        with double.lock:
            double.requests.append(self.headers.get("X-Amz-Target", ""))
            action = double.scripted.popleft() if double.scripted else None
        status, headers = 200, {}
        if isinstance(action, SmError):
            status, headers = action.status, {"x-amzn-ErrorType": action.code}
            doc: dict[str, Any] = {"__type": action.code, "message": action.message}
        else:
            if isinstance(action, SmSlow):
                time.sleep(action.delay)
            secret_id = json.loads(raw or b"{}").get("SecretId", "")
            doc = {
                "ARN": f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{secret_id}",
                "Name": secret_id,
                "SecretString": double.secret_string,
                "VersionId": "00000000-0000-0000-0000-000000000001",
                "CreatedDate": 1_700_000_000,
            }
        headers["Content-Type"] = "application/x-amz-json-1.1"
        self.answer(status, json.dumps(doc).encode(), headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, double: SecretsFaults, port: int) -> None:
        self.double = double
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and closed: expected here


class SecretsFaults:
    """Run the double on a free loopback port for a `with` block."""

    def __init__(self, secret_string: str, port: int = 0) -> None:
        self.secret_string = secret_string
        self.port = port  # 0: any free port; a given one to bring an 'unreachable' port back
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.scripted: deque[SmAction] = deque()
        self._server: _Server | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "use SecretsFaults as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, *actions: SmAction) -> None:
        """Queue misbehaviours for the next requests; then the secret again."""
        with self.lock:
            self.scripted.extend(actions)

    def __enter__(self) -> SecretsFaults:
        self._server = _Server(self, self.port)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
