"""The worker pool behind `make serve`, with a stand-in function instead of handler/app.py:
one event at a time per worker process, failures that cost one request, dead or overrunning
workers replaced, and API Gateway's 30 s patience when no worker is free."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from infra.gateway import lambda_workers
from infra.gateway.lambda_workers import Failed, Invoked, WorkerPool

FUNCTION = """
import os, time

def lambda_handler(event, context):
    if event.get("exit"):
        os._exit(3)
    if event.get("raise"):
        raise ValueError("boom")
    started = time.monotonic()
    time.sleep(event.get("sleep", 0))
    while event.get("hold") and not os.path.exists(event["hold"]):  # busy until released
        time.sleep(0.01)
    return {"pid": os.getpid(), "started": started, "ended": time.monotonic()}
"""


@pytest.fixture
def function_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(FUNCTION)
    return tmp_path


@pytest.fixture
def pool(function_dir: Path) -> Iterator[WorkerPool]:
    said: list[str] = []
    workers = WorkerPool(2, timeout_s=1.5, handler_dir=function_dir, say=said.append)
    workers.start()
    try:
        yield workers
    finally:
        workers.stop()
        assert not [p for p in workers.pids() if p], "stop() forgets every worker"


def ok(outcome: Invoked | Failed) -> dict[str, float]:
    assert isinstance(outcome, Invoked), outcome
    result: dict[str, float] = outcome.result
    return result


def test_each_worker_runs_one_event_at_a_time(pool: WorkerPool) -> None:
    with ThreadPoolExecutor(6) as clients:
        results = [ok(o) for o in clients.map(lambda _: pool.invoke({"sleep": 0.2}), range(6))]
    by_pid: dict[float, list[dict[str, float]]] = {}
    for result in results:
        by_pid.setdefault(result["pid"], []).append(result)
    assert len(by_pid) == 2, "both workers served"
    for runs in by_pid.values():
        runs.sort(key=lambda r: r["started"])
        for earlier, later in itertools.pairwise(runs):
            assert later["started"] >= earlier["ended"], "never two events at once in a worker"


def test_an_exception_fails_that_request_only(pool: WorkerPool) -> None:
    failed = pool.invoke({"raise": True})
    assert isinstance(failed, Failed)
    assert "ValueError: boom" in failed.reason
    ok(pool.invoke({}))


def test_a_dead_or_overrunning_worker_is_replaced(pool: WorkerPool) -> None:
    before = set(pool.pids())
    died = pool.invoke({"exit": True})
    assert isinstance(died, Failed)
    assert "died" in died.reason
    timed_out = pool.invoke({"sleep": 5})
    assert isinstance(timed_out, Failed)
    assert "timed out" in timed_out.reason
    deadline = time.monotonic() + 30
    while len(set(pool.pids()) - before) < 2:
        assert time.monotonic() < deadline, "replacements never started"
        time.sleep(0.05)
    assert {ok(pool.invoke({}))["pid"] for _ in range(4)} <= set(pool.pids())


def test_no_free_worker_within_the_gateway_timeout_is_the_gateways_failure(
    function_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lambda_workers, "INTEGRATION_TIMEOUT_S", 0.3)
    # Both workers stay busy until the test releases them, whatever the machine's load; the
    # function timeout is long so that they are not replaced meanwhile.
    release = tmp_path / "release"
    pool = WorkerPool(2, timeout_s=120, handler_dir=function_dir, say=lambda _line: None)
    pool.start()
    try:
        busy = [
            threading.Thread(target=pool.invoke, args=({"hold": str(release)},)) for _ in range(2)
        ]
        for thread in busy:
            thread.start()
        deadline = time.monotonic() + 30
        while pool._idle.qsize():  # until both workers have taken their event
            assert time.monotonic() < deadline, "the busy events never reached the workers"
            time.sleep(0.01)
        waited = pool.invoke({})
        release.touch()
        for thread in busy:
            thread.join(30)
    finally:
        release.touch()
        pool.stop()
    assert isinstance(waited, Failed)
    assert waited.gateway_gave_up


def test_a_pool_runs_the_handler_it_names_and_says_whose_workers_it_has(tmp_path: Path) -> None:
    """A function's Handler is any module.function of its folder, imported by each worker."""
    (tmp_path / "items_app.py").write_text(
        "import os\nINIT_PID = os.getpid()\n"
        "def handle(event, context):\n"
        "    return {'module': __name__, 'init_pid': INIT_PID, 'left': context.get_remaining_time_in_millis()}\n"
    )
    said: list[str] = []
    pool = WorkerPool(
        1, 7, tmp_path, say=said.append, handler="items_app.handle", name="ItemsFunction"
    )
    pool.start()
    try:
        outcome = pool.invoke({})
        assert isinstance(outcome, Invoked), outcome
        result: dict[str, Any] = outcome.result
        assert result["module"] == "items_app"
        assert result["init_pid"] == pool.pids()[0], "imported in the worker: its own init"
        assert 6000 < result["left"] <= 7000, "the function's own timeout"
    finally:
        pool.stop()
    assert said == [f"serve: worker ready (pid {result['init_pid']}, ItemsFunction)"]


@pytest.mark.parametrize("handler", ["lambda_handler", ".lambda_handler", "app."])
def test_a_handler_that_is_not_module_dot_function_is_refused(
    function_dir: Path, handler: str
) -> None:
    with pytest.raises(ValueError, match=r"module\.function"):
        WorkerPool(1, 1, function_dir, handler=handler)


def test_a_worker_killed_while_idle_costs_no_request(pool: WorkerPool) -> None:
    """However soon after the kill the event comes (its exit not yet reapable, or its pipe
    already closed), it goes to a live worker."""
    import os
    import signal

    for _ in range(3):
        victims = pool.pids()
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        result = ok(pool.invoke({}))
        assert result["pid"] not in victims
