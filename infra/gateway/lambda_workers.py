"""Lambda's execution model on a laptop: single-threaded worker processes, one event at a time.

A pool is one function's execution environments. Each worker is a spawn-started process that
imports the function's handler module itself (`app` for `Handler: app.lambda_handler`: its own
init phase and cold start, like a new Lambda execution environment), then answers one event at
a time. The parent hands each event to an idle worker, queuing while all are busy; the worker
says when it has taken it, so one found dead while idle costs no request (the next worker
takes the event). A worker that dies with an event, or overruns the function's timeout, is
killed and replaced; that event fails, which API Gateway answers with 500. Workers ignore
SIGINT: Ctrl-C reaches the whole process group, and the parent, not the worker, decides how
everything stops.

    pool = WorkerPool(size=4, timeout_s=20, handler_dir=ROOT / "handler",
                      handler="items_app.lambda_handler", name="ItemsFunction")
    pool.start()
    outcome = pool.invoke(event)   # Invoked(result) | Failed(reason)
    pool.stop()
"""

from __future__ import annotations

import importlib
import io
import json
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

_SPAWN = multiprocessing.get_context("spawn")


def say(text: str) -> None:
    """Lines to stderr in one write each: several processes share the terminal (or pipe), and
    `print` writes the newline separately, so another process's line could land in between."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


READY_TIMEOUT_S = 60.0
# A worker's first word on an event: it has it (dying after this fails that request).
STARTED = "started"
# API Gateway gives up on an integration after 30 s (503); a request waits no longer for a
# worker (all busy, or none able to finish its init phase).
INTEGRATION_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Invoked:
    """The function returned this result."""

    result: Any
    duration_ms: float


@dataclass(frozen=True)
class Failed:
    """The invocation produced no result: the function raised, crashed or timed out."""

    reason: str
    duration_ms: float
    gateway_gave_up: bool = False  # API Gateway's own timeout, not the function's failure


def _worker_main(conn: Connection, handler_dir: str, handler: str, timeout_ms: int) -> None:
    """A Lambda execution environment: init once, then one event at a time until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A line per write, as Lambda ships log lines: never half a line amid another process's.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    # The one sys.path edit of the tools, and why: Lambda imports the handler with the task root
    # first on sys.path, and a "spawn" worker starts with its parent's sys.path (multiprocessing
    # sets it, whatever PYTHONPATH says), so only the worker itself can put its function first.
    sys.path.insert(0, handler_dir)
    module_name, _, function_name = handler.rpartition(".")
    # The init phase: configuration, clients, Powertools.
    function = getattr(importlib.import_module(module_name), function_name)
    from infra.doubles.lambda_runtime import LambdaContext

    sys.stdout.flush()
    conn.send(os.getpid())
    while True:
        try:
            event = conn.recv()
            conn.send(STARTED)  # the event is this worker's now: see WorkerPool._hand_over
        except (EOFError, OSError):  # the parent is gone or closed the pipe: stop
            return
        try:
            reply: tuple[str, Any] = (
                "ok",
                function(event, LambdaContext(remaining_ms=timeout_ms)),
            )
        except Exception as exc:  # as Lambda reports an unhandled error, then API Gateway 500s
            error = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
            say(json.dumps(error))
            reply = ("error", f"{type(exc).__name__}: {exc}")
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send(reply)


@dataclass(eq=False)  # identity: each worker is one process
class _Worker:
    process: BaseProcess
    conn: Connection

    @property
    def pid(self) -> int:
        return self.process.pid or 0


class WorkerPool:
    """`size` workers of one function (`handler`, "module.function" in `handler_dir`, as the
    template's Handler and CodeUri say); `invoke` blocks until one is idle, then until it
    answers. `name` (the function's logical id) goes into the pool's output lines."""

    def __init__(
        self,
        size: int,
        timeout_s: float,
        handler_dir: Path,
        say: Callable[[str], None] = say,
        handler: str = "app.lambda_handler",
        name: str | None = None,
    ) -> None:
        module_name, dot, function_name = handler.rpartition(".")
        if not (dot and module_name and function_name):
            raise ValueError(f"Handler {handler!r} is not module.function")
        self.size = size
        self.timeout_s = timeout_s
        self.handler_dir = str(handler_dir)
        self.handler = handler
        self.name = name
        self.say = say
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> None:
        """Start every worker and wait until each has finished its init phase."""
        threads = [threading.Thread(target=self._add_worker, daemon=True) for _ in range(self.size)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self._idle.qsize() < self.size:
            raise RuntimeError(
                f"{self.name or 'the'} workers failed to start: see the output above"
            )

    def _spawn(self) -> _Worker | None:
        parent_end, child_end = _SPAWN.Pipe()
        process = _SPAWN.Process(
            target=_worker_main,
            args=(child_end, self.handler_dir, self.handler, int(self.timeout_s * 1000)),
            daemon=True,
        )
        worker = _Worker(process, parent_end)
        with self._lock:
            if self._stopping.is_set():
                return None
            process.start()
            self._all.add(worker)
        child_end.close()
        ready = wait([parent_end, process.sentinel], READY_TIMEOUT_S)
        if parent_end in ready:
            try:
                parent_end.recv()
            except (EOFError, OSError):
                ready = []
            else:
                return worker
        self._discard(worker)
        if not self._stopping.is_set():
            self.say(f"serve: a worker ({self._who(process.pid)}) failed its init phase")
        return None

    def _who(self, pid: int | None) -> str:
        """ "pid 123" or "pid 123, ItemsFunction": which process, of which function."""
        return f"pid {pid}, {self.name}" if self.name else f"pid {pid}"

    def _add_worker(self) -> None:
        worker = self._spawn()
        if worker is not None:
            self.say(f"serve: worker ready ({self._who(worker.pid)})")
            self._idle.put(worker)

    def _replace_later(self) -> None:
        """Start a replacement in the background, retrying a failed init after a pause."""

        def run() -> None:
            while not self._stopping.is_set():
                before = self._idle.qsize()
                self._add_worker()
                if self._idle.qsize() > before or self._stopping.wait(1.0):
                    return

        threading.Thread(target=run, daemon=True).start()

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.conn.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(1.0)

    def invoke(self, event: dict[str, Any]) -> Invoked | Failed:
        """Run one event on an idle worker (waiting for one if all are busy)."""
        give_up = time.monotonic() + INTEGRATION_TIMEOUT_S
        while True:
            if self._stopping.is_set():
                return Failed("the server is stopping", 0.0)
            if time.monotonic() > give_up:
                waited = INTEGRATION_TIMEOUT_S * 1000
                return Failed("no worker was free within 30 s", waited, gateway_gave_up=True)
            try:
                worker = self._idle.get(timeout=0.2)
            except queue.Empty:
                continue
            started = time.perf_counter()
            # A worker that died while idle never took the event: the next one takes it (its
            # exit may not be reapable yet: a killed process's threads end one by one).
            if worker.process.is_alive() and self._hand_over(worker, event):
                break
            self.say(f"serve: worker ({self._who(worker.pid)}) died while idle; replacing it")
            self._discard(worker)
            self._replace_later()

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 1)

        try:
            ready = wait([worker.conn, worker.process.sentinel], self.timeout_s)
            if worker.conn in ready:
                kind, value = worker.conn.recv()
                self._idle.put(worker)
                return Invoked(value, elapsed()) if kind == "ok" else Failed(value, elapsed())
            reason = (
                f"{self.name or 'the function'} timed out after {self.timeout_s:g} s"
                if not ready
                else f"the worker ({self._who(worker.pid)}) died"
            )
        except (EOFError, OSError) as exc:
            reason = f"the worker ({self._who(worker.pid)}) died ({type(exc).__name__})"
        self.say(f"serve: {reason}; replacing it")
        self._discard(worker)
        self._replace_later()
        return Failed(reason, elapsed())

    def _hand_over(self, worker: _Worker, event: dict[str, Any]) -> bool:
        """Send the event and wait for the worker to say it took it; False if it is gone
        before that (the event then never ran, and another worker can take it)."""
        try:
            worker.conn.send(event)
            if worker.conn in wait([worker.conn, worker.process.sentinel], self.timeout_s):
                return bool(worker.conn.recv() == STARTED)
        except (EOFError, OSError):
            pass
        return False

    def pids(self) -> list[int]:
        with self._lock:
            return [worker.pid for worker in self._all]

    def stop(self) -> None:
        """Stop every worker now (SIGTERM, then SIGKILL for any still alive)."""
        self._stopping.set()
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.conn.close()
            if worker.process.is_alive():
                worker.process.terminate()
        deadline = time.monotonic() + 0.5
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(0.2)
