"""The benchmark's baselines (infra/bench/baselines/) still do their job: each one, run as a
Lambda container would run it, answers 200 with a link token from the loopback stand-in.

Correctness only: no timings are asserted (the benchmark is `make bench`, not a test). Each
baseline runs in a fresh process through the benchmark's own runner, against the benchmark's
own loopback world (moto server for Secrets Manager, the stand-in over TLS). Baselines (1) and
(3) use this project's virtualenv (boto3, requests, Powertools); baseline (2) needs plaid-python,
which only `make bench` installs (into .bench/build/plaid_sdk): without it, that case skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.bench import build as bench_build
from infra.bench import run as bench_run
from infra.bench.services import World

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / "infra/bench"

BASELINES = {
    "blog_post": "blog_post:lambda_handler",
    "plaid_sdk": "plaid_sdk:lambda_handler",
    "powertools_by_the_book": "powertools_by_the_book:lambda_handler",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with World(tmp_path_factory.mktemp("bench-world")) as started:
        yield started


def _where(name: str) -> tuple[str, Path, list[str]]:
    """Interpreter, import root and flags to run one baseline with."""
    if name == "plaid_sdk" and importlib.util.find_spec("plaid") is None:
        built = bench_build.BUILD / "plaid_sdk"
        if not (built / "plaid").is_dir():
            pytest.skip("plaid-python is only installed by `make bench` (.bench/build/plaid_sdk)")
        # As the benchmark runs a built variant: -P -s -S -B, the build dir on PYTHONPATH alone.
        return bench_build.python313(), built, bench_run.INTERPRETER_FLAGS
    # This virtualenv has the other baselines' dependencies.
    return sys.executable, BENCH_DIR / "baselines", ["-B"]


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_returns_a_link_token(name: str, world: World, tmp_path: Path) -> None:
    python, root, flags = _where(name)
    variant = bench_build.Variant(name, name, BASELINES[name], root)
    runner = bench_run.Runner(variant, root, BASELINES[name], name)
    env = bench_run.lambda_env(world, runner, python)
    before = world.counters()
    read_fd, write_fd = os.pipe()
    with (tmp_path / "out.log").open("wb") as out, (tmp_path / "err.log").open("wb") as err:
        done = subprocess.run(  # noqa: S603 - our own interpreter and runner
            [python, *flags, str(bench_run.CHILD), str(root), BASELINES[name],
             str(bench_run.EVENT), "cold", str(write_fd)],
            env=env, stdout=out, stderr=err, pass_fds=(write_fd,), timeout=60, check=False,
        )  # fmt: skip
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as results:
        first: dict[str, Any] = json.loads(results.readline() or b"{}")
    # The runner exits 3 unless the answer was a 200 carrying a `link-sandbox-` token.
    assert done.returncode == 0, (tmp_path / "err.log").read_text()[-2000:]
    assert first["first_response_ms"] > 0
    after = world.counters()
    assert after["plaid_requests"] - before["plaid_requests"] == 1
    assert after["secret_reads"] - before["secret_reads"] == 1


@pytest.fixture(scope="module")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from infra.bench.ric import prepare_runtime

    return prepare_runtime(tmp_path_factory.mktemp("bench-ric") / "var-runtime")


@pytest.mark.parametrize(
    ("trace", "datagrams"), [("sampled", 1), ("unsampled", 0), ("untraced", 0)]
)
def test_the_product_under_awslambdaric_answers_and_traces_only_sampled_invocations(
    trace: str, datagrams: int, world: World, lambda_runtime: Path, tmp_path: Path
) -> None:
    # The benchmark's awslambdaric cold start, on the checkout's handler/: the Runtime API's
    # trace header reaches the handler as Lambda sets it, and only Sampled=1 is traced.
    import sysconfig

    from infra.bench.ric import ric_cold_start

    root = ROOT / "handler"
    variant = bench_build.Variant("product", "product", "app:lambda_handler", root)
    runner = bench_run.Runner(variant, root, "app:lambda_handler", "product", trace=trace)
    env = bench_run.lambda_env(world, runner, sys.executable)
    before = world.counters()

    result = ric_cold_start(
        sys.executable,
        root,
        "app.lambda_handler",
        env,
        json.loads(bench_run.EVENT.read_text()),
        lambda_runtime,
        trace,
        tmp_path / "ric.log",
        extra_paths=(Path(sysconfig.get_paths()["purelib"]),),
    )

    assert result["first_response_ms"] > 0  # it raises unless a 200 with a link token came back
    # The datagram travels over UDP to the sink's thread: wait for it, generously.
    deadline = time.monotonic() + 30
    while world.counters()["xray_datagrams"] - before["xray_datagrams"] < datagrams:
        assert time.monotonic() < deadline, "the sampled invocation's segment never arrived"
        time.sleep(0.02)
    time.sleep(0.2)  # a datagram that should not have been sent has arrived by now
    after = world.counters()
    assert after["plaid_requests"] - before["plaid_requests"] == 1
    assert after["secret_reads"] - before["secret_reads"] == 1
    assert after["xray_datagrams"] - before["xray_datagrams"] == datagrams
