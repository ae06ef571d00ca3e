"""The cold start as Lambda runs the function: under awslambdaric, the runtime interface client.

`python3.13 -S -B -m awslambdaric app.lambda_handler` in the build directory, against the
Runtime API emulator of infra/conformance/runtime_api.py with the event queued before the
process starts, and the runtime's own files in a directory standing in for /var/runtime (built by
infra/conformance/ric.py's `runtime_dir`): both reused, not copied. Timed by the parent, from
just before the process is started to the moment the emulator receives the first response:
interpreter start-up, the runtime's imports, its Runtime API round trips, init and the first
invocation. The in-process figure (child.py) starts at the runner's first line instead.

The emulator's trace header is set per run (`Sampled=1`, `Sampled=0`, or none), so the
same trace modes as the in-process cold starts can be measured.
"""

# ruff: noqa: S603

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from infra.conformance.ric import runtime_dir
from infra.conformance.runtime_api import Result, RuntimeApi

ROOT = Path(__file__).resolve().parents[2]


class TimedRuntimeApi(RuntimeApi):
    """The emulator, noting when each result arrived."""

    def __init__(self, trace: str) -> None:
        super().__init__(sampled=None if trace == "untraced" else trace == "sampled")
        self.arrived: dict[str, float] = {}

    def __enter__(self) -> TimedRuntimeApi:
        super().__enter__()
        return self

    def record(self, key: str, result: Result) -> None:
        self.arrived.setdefault(key, time.perf_counter())
        super().record(key, result)


def prepare_runtime(directory: Path) -> Path:
    """The stand-in for /var/runtime, made once per benchmark run."""
    if not (directory / "awslambdaric").is_dir():
        if directory.exists():
            import shutil

            shutil.rmtree(directory)
        runtime_dir(directory)
    return directory


def ric_cold_start(
    python: str,
    build_dir: Path,
    handler: str,
    env: dict[str, str],
    event: Any,
    runtime: Path,
    trace: str,
    log: Path,
    extra_paths: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """One fresh function process under awslambdaric, from its start to its first response.
    `extra_paths` follow the task root and the runtime on the import path (a test runs the
    checkout's handler/ with the dev environment's packages)."""
    with TimedRuntimeApi(trace) as api:
        request_id = api.invoke(event)
        full_env = {
            **env,
            "_HANDLER": handler,
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "LAMBDA_RUNTIME_DIR": str(runtime),
            "PYTHONPATH": os.pathsep.join(map(str, [build_dir, runtime, *extra_paths])),
            "PYTHONNOUSERSITE": "1",
        }
        full_env.pop("_X_AMZN_TRACE_ID", None)  # the runtime sets it from each invocation
        with log.open("ab") as out, log.with_suffix(".err").open("wb") as err:
            started = time.perf_counter()
            process = subprocess.Popen(
                # -S: no site-packages (the task root and the runtime directory only); -B: no
                # bytecode written into the build output.
                [python, "-S", "-B", "-m", "awslambdaric", handler],
                cwd=build_dir,
                env=full_env,
                stdout=out,
                stderr=err,
            )
        try:
            result = api.result(request_id, timeout=60)
        finally:
            process.terminate()
            _pid, _status, usage = os.wait4(process.pid, 0)
        if result is None or result.kind != "response" or not _created(result.body):
            tail = log.with_suffix(".err").read_text(errors="replace")[-2000:]
            raise SystemExit(
                f"bench: awslambdaric run of {build_dir.name} failed: {result}\n{tail}"
            )
        return {
            "first_response_ms": (api.arrived[request_id] - started) * 1000,
            "process_cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000,
        }


def _created(body: Any) -> bool:
    if not isinstance(body, dict) or body.get("statusCode") != 200:
        return False
    token = json.loads(body.get("body") or "{}").get("link_token", "")
    return isinstance(token, str) and token.startswith("link-sandbox-")
