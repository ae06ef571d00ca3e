"""The benchmark's loopback world: Secrets Manager (moto, server mode), Plaid (the stand-in,
over TLS with a CA made for the run) and an X-Ray daemon sink. Nothing leaves 127.0.0.1.

Counting, so "one secret read per container" and "one connection per container" are measured
rather than assumed:
- secret reads: a WSGI middleware in front of moto's own server app counts every request whose
  `X-Amz-Target` is `secretsmanager.GetSecretValue`, i.e. every read that reached the server;
- Plaid connections and requests: the stand-in's own counters (TCP accepts, HTTP requests);
- traces: UDP datagrams received on the X-Ray daemon address (proof that tracing is active).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from infra.doubles.loopback import XRaySink, make_loopback_tls
from infra.doubles.moto_server import WsgiApp, moto_server
from infra.doubles.plaid_standin import PlaidStandIn

ROOT = Path(__file__).resolve().parents[2]

CLIENT_ID = "bench-client-id"
SECRET = "bench-plaid-secret"  # noqa: S105 - the stand-in's fake key, not a credential
SECRET_ID = "plaid-link-token/bench"  # noqa: S105 - a secret's name
GET_SECRET_TARGET = "secretsmanager.GetSecretValue"  # noqa: S105 - an API name


# --- Secrets Manager (moto server mode) --------------------------------------------------------


class CountingMotoServer:
    """moto's server (infra/doubles/moto_server.py) with a middleware counting what reaches it."""

    def __init__(self) -> None:
        self.secret_reads = 0
        self.requests = 0
        self.endpoint = ""
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()

    def _count(self, app: WsgiApp) -> WsgiApp:
        def middleware(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            with self._lock:
                self.requests += 1
                if environ.get("HTTP_X_AMZ_TARGET") == GET_SECRET_TARGET:
                    self.secret_reads += 1
            return app(environ, start_response)

        return middleware

    def __enter__(self) -> CountingMotoServer:
        self.endpoint = self._stack.enter_context(moto_server(wrap=self._count))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def create_secret(self, secret_id: str, secret_string: str) -> None:
        import botocore.session

        client: Any = botocore.session.get_session().create_client(  # untyped
            "secretsmanager",
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - moto's fake credentials
        )
        client.create_secret(Name=secret_id, SecretString=secret_string)
        with self._lock:
            self.secret_reads = 0
            self.requests = 0


class World:
    """Everything the variants talk to, started together for one benchmark run."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        tls = make_loopback_tls(workdir / "tls", "bench loopback CA (not Plaid)")
        self.ca_pem = tls.ca_pem
        self.moto = CountingMotoServer()
        self.plaid = PlaidStandIn(client_id=CLIENT_ID, secret=SECRET, tls=tls.server_context())
        self.xray = XRaySink()

    def __enter__(self) -> World:
        self.moto.__enter__()
        self.plaid.__enter__()
        self.xray.__enter__()
        self.moto.create_secret(SECRET_ID, json.dumps({"client_id": CLIENT_ID, "secret": SECRET}))
        return self

    def __exit__(self, *exc: object) -> None:
        self.xray.__exit__()
        self.plaid.__exit__()
        self.moto.__exit__()

    def counters(self) -> dict[str, int]:
        return {
            "plaid_connections": self.plaid.connections,
            "plaid_requests": len(self.plaid.requests),
            "secret_reads": self.moto.secret_reads,
            "xray_datagrams": len(self.xray.datagrams),
        }
