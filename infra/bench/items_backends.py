"""`make soak-items`'s backends, in a process of their own, driven over a pipe.

The Items world of infra/doubles/items_world.py (moto with the secret, the table and the key;
the DynamoDB/KMS fault front; the Plaid stand-in, here over TLS with a CA made for the run)
runs in a spawned child. Why a child: moto's table and the stand-in's Items and request log grow
with every cycle. In the soak's own process that growth would hide, or fake, the growth of the
containers the soak measures. The soak process holds only the containers.

    with ItemsBackendsProcess(options) as backends:
        os.environ.update(backends.env)
        token = backends.public_token("ins_109508")    # no connection to the stand-in
        backends.plaid_paths()                          # Plaid calls since the last look

The child counts, so the soak can bound them: TCP connections the stand-in accepted,
`GetSecretValue` requests that reached moto, the Plaid calls by path. It watches its own output
(every line printed in the child) for the forbidden strings, as the soak does in its own
process. Plaid acting and then failing (`fail_after_acting`) is played here: the stand-in
exchanges the public token, then answers 500 or drops the connection instead of answering, as
Plaid (or the network) may; the Items so made are kept apart (`kept`): the service never gets
their access token, so it cannot remove them.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from infra.bench.soak import rss_mib_of
from infra.doubles.aws_faults import AwsAction
from infra.doubles.items_world import ItemsBackends, items_backends
from infra.doubles.loopback import make_loopback_tls
from infra.doubles.moto_server import WsgiApp
from infra.doubles.plaid_standin import PlaidStandIn, Scripted, plaid_error

GET_SECRET_TARGET = "secretsmanager.GetSecretValue"  # noqa: S105 - an API name
PUBLIC_TOKEN_PATH = "/sandbox/public_token/create"  # noqa: S105 - a URL path
START_SECONDS = 60.0  # moto's import and the first table: a few seconds on a loaded machine


@dataclass(frozen=True)
class BackendOptions:
    """What the child starts with: the Plaid keys and HMAC key it seeds, the secret's TTL for
    the functions, and the strings no output line may hold."""

    client_id: str
    secret: str
    hmac_key: str
    secret_ttl_seconds: int
    forbidden: tuple[str, ...]


@dataclass
class LineWatch:
    """Counts the lines written to it and those holding a forbidden string; keeps none."""

    forbidden: tuple[str, ...]
    lines: int = 0
    leaks: int = 0
    _partial: str = field(default="", repr=False)

    def write(self, text: str) -> int:
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            if line:
                self.line(line)
        return len(text)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """What is left without a newline is a line too."""
        if self._partial:
            self.line(self._partial)
            self._partial = ""

    def line(self, line: str) -> None:
        self.lines += 1
        self.leaks += any(word in line for word in self.forbidden)


# What the stand-in answers instead, once it has acted: a 500, or no answer at all.
AFTER_ACTING: Final = {
    "500": plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR", "an internal error occurred"),
    "drop": Scripted(close=True),
}


class SoakStandIn(PlaidStandIn):
    """The stand-in, plus Plaid's worst failures: the call acted on, then a 500 or a dropped
    connection instead of its answer."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._act_lock = threading.Lock()
        self._fail_after: list[tuple[str, str]] = []  # (path, AFTER_ACTING key), in order
        self.kept: list[str] = []  # item ids exchanged behind a failure: nobody has their token

    def fail_after_acting(self, path: str, how: str) -> None:
        if how not in AFTER_ACTING:
            raise ValueError(f"how must be one of {sorted(AFTER_ACTING)}")
        with self._act_lock:
            self._fail_after.append((path, how))

    def sandbox_answer(self, path: str, headers: Any, raw: bytes) -> Scripted:
        answer = super().sandbox_answer(path, headers, raw)
        with self._act_lock:
            pending = next((entry for entry in self._fail_after if entry[0] == path), None)
            if answer.status != 200 or pending is None:
                return answer
            self._fail_after.remove(pending)
            if isinstance(answer.body, dict) and "item_id" in answer.body:
                self.kept.append(str(answer.body["item_id"]))
        return AFTER_ACTING[pending[1]]

    def live_items(self) -> list[str]:
        """Items exchanged (an access token was issued) and not removed: what Plaid bills."""
        with self._items_lock:
            return [
                item.item_id
                for item in self._items.values()
                if item.access_token is not None and not item.removed
            ]


class _Child:
    """The commands the soak sends, run in the child against the started backends."""

    def __init__(self, backends: ItemsBackends, standin: SoakStandIn, counts: dict[str, int]):
        self.backends = backends
        self.standin = standin
        self.counts = counts
        self.plaid_requests = 0

    def public_token(self, institution_id: str) -> str:
        """A public token as /sandbox/public_token/create makes one, without a connection."""
        headers = {"PLAID-CLIENT-ID": self.standin.client_id, "PLAID-SECRET": self.standin.secret}
        raw = json.dumps({"institution_id": institution_id, "initial_products": ["transactions"]})
        answer = self.standin.sandbox_answer(PUBLIC_TOKEN_PATH, headers, raw.encode())
        if answer.status != 200:
            raise RuntimeError(f"the stand-in refused a public token: {answer.status}")
        return str(answer.body["public_token"])

    def plaid_script(self, answers: Sequence[Scripted]) -> None:
        self.standin.script(*answers)

    def fail_after_acting(self, path: str, how: str) -> None:
        self.standin.fail_after_acting(path, how)

    def aws_script(self, target: str, actions: Sequence[AwsAction]) -> None:
        assert self.backends.faults is not None
        self.backends.faults.script(target, *actions)

    def unmet(self) -> dict[str, int]:
        """Scripted faults nobody met (a call the service no longer makes), then dropped so
        that they strike nothing later."""
        faults, server = self.backends.faults, self.standin.server
        assert faults is not None
        with faults.lock:
            aws = len(faults._scripted)  # the front's own queue: it has no public count
            faults._scripted.clear()
        with server.lock:
            plaid = len(server.scripted)
            server.scripted.clear()
        with self.standin._act_lock:
            acts = len(self.standin._fail_after)
            self.standin._fail_after.clear()
        return {"aws": aws, "plaid": plaid, "plaid_acts": acts}

    def plaid_paths(self) -> list[str]:
        """The paths of the Plaid calls received since the last look (the log is emptied: it
        would grow for the whole run, credentials and all)."""
        server = self.standin.server
        with server.lock:
            paths = [str(request["path"]) for request in server.requests]
            server.requests.clear()
        self.plaid_requests += len(paths)
        return paths

    def sweep(self) -> int:
        """Delete what DynamoDB's TTL deletes in time (tombstones, exchange records: whatever
        has `expires_at`); how many. moto's Query reads the whole table where DynamoDB reads one
        partition: without this, every call would cost more the longer the run."""
        client = self.backends.client("dynamodb")
        expiring: list[dict[str, Any]] = []
        pages = client.get_paginator("scan").paginate(
            TableName=self.backends.table,
            FilterExpression="attribute_exists(expires_at)",
            ProjectionExpression="pk, sk",
        )
        for page in pages:
            expiring += page["Items"]
        for start in range(0, len(expiring), 25):  # BatchWriteItem's limit
            batch = [{"DeleteRequest": {"Key": key}} for key in expiring[start : start + 25]]
            client.batch_write_item(RequestItems={self.backends.table: batch})
        return len(expiring)

    def counters(self) -> dict[str, int]:
        return {
            "plaid_connections": self.standin.connections,
            "plaid_requests": self.plaid_requests,
            "secret_reads": self.counts["secret_reads"],
            "rss_kib": round(rss_mib_of() * 1024),
        }

    def items(self) -> dict[str, list[str]]:
        return {"live": self.standin.live_items(), "kept": list(self.standin.kept)}


def _serve(conn: Connection, options: BackendOptions) -> None:
    """The child's main: start, send the environment, then answer commands until "stop"."""
    watch = LineWatch(options.forbidden)
    sys.setswitchinterval(0.0005)
    sys.stdout = sys.stderr = watch  # counted, never shown
    counts = {"secret_reads": 0}
    lock = threading.Lock()

    def count_reads(app: WsgiApp) -> WsgiApp:
        def middleware(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if environ.get("HTTP_X_AMZ_TARGET") == GET_SECRET_TARGET:
                with lock:
                    counts["secret_reads"] += 1
            return app(environ, start_response)

        return middleware

    try:
        with tempfile.TemporaryDirectory(prefix="soak-items-") as tmp:
            tls = make_loopback_tls(Path(tmp))
            standin = SoakStandIn(
                client_id=options.client_id, secret=options.secret, tls=tls.server_context()
            )
            keys = (options.client_id, options.secret, options.hmac_key)
            with items_backends(
                True, plaid=standin, moto_wrap=count_reads, credentials=keys
            ) as backends:
                env = {
                    **backends.env,
                    "REQUESTS_CA_BUNDLE": str(tls.ca_pem),
                    "PLAID_SECRET_TTL_SECONDS": str(options.secret_ttl_seconds),
                }
                conn.send(("ok", env))
                child = _Child(backends, standin, counts)
                _answer(conn, child, watch)
    except Exception as exc:  # reported to the soak, which fails on it
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def _answer(conn: Connection, child: _Child, watch: LineWatch) -> None:
    while True:
        try:
            name, args = conn.recv()
        except EOFError:  # the soak is gone: stop everything
            return
        if name == "stop":
            watch.close()
            conn.send(("ok", {"output_lines": watch.lines, "secret_leaks": watch.leaks}))
            return
        try:
            result = getattr(child, name)(*args)
        except Exception as exc:
            conn.send(("error", f"{name}: {type(exc).__name__}: {exc}"))
        else:
            conn.send(("ok", result))


class BackendsFailed(RuntimeError):
    """The child could not start, or a command failed there."""


class ItemsBackendsProcess:
    """The child, started for a `with` block; one method per command."""

    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        context = multiprocessing.get_context("spawn")  # nothing of this process carried over
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child_conn, options), name="soak-items-backends", daemon=True
        )
        self.env: dict[str, str] = {}
        self.output: dict[str, int] = {}  # the child's own output, counted at stop

    def __enter__(self) -> ItemsBackendsProcess:
        self._process.start()
        if not self._conn.poll(START_SECONDS):
            self._end()
            raise BackendsFailed(f"the backends did not start within {START_SECONDS:.0f} s")
        self.env = self._reply()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._process.is_alive():
                self.output = self._call("stop")
        except (EOFError, OSError):  # the child is gone already (Ctrl-C reaches it too)
            pass
        finally:
            self._end()

    def _end(self) -> None:
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()  # our own child, by its handle
            self._process.join(5)

    def _reply(self) -> Any:
        status, value = self._conn.recv()
        if status != "ok":
            raise BackendsFailed(str(value))
        return value

    def _call(self, name: str, *args: Any) -> Any:
        self._conn.send((name, args))
        return self._reply()

    # --- the commands -------------------------------------------------------------------------
    def public_token(self, institution_id: str) -> str:
        return str(self._call("public_token", institution_id))

    def plaid_script(self, answers: Sequence[Scripted]) -> None:
        self._call("plaid_script", list(answers))

    def fail_after_acting(self, path: str, how: str) -> None:
        self._call("fail_after_acting", path, how)

    def aws_script(self, target: str, actions: Sequence[AwsAction]) -> None:
        self._call("aws_script", target, list(actions))

    def unmet(self) -> dict[str, int]:
        return dict(self._call("unmet"))

    def plaid_paths(self) -> list[str]:
        return list(self._call("plaid_paths"))

    def sweep(self) -> int:
        return int(self._call("sweep"))

    def counters(self) -> dict[str, int]:
        return dict(self._call("counters"))

    def items(self) -> dict[str, list[str]]:
        return dict(self._call("items"))
