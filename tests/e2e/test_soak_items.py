"""`make soak-items` (`python -m infra.bench.soak_items`) as CI runs it, in a subprocess: a
tiny run passes with every fault of its table met once; a run that goes wrong in each of the
ways it watches for (`--inject`) fails, naming each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from infra.bench.soak_items import FAULTS


def soak(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAID_", "AWS_", "ITEMS_"))}
    return subprocess.run(  # noqa: S603 - our own interpreter and tool
        [sys.executable, "-m", "infra.bench.soak_items", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def figures(out: str) -> Any:
    """The JSON document the run prints before its verdict lines."""
    start = out.index("{\n")
    return json.loads(out[start : out.index("\n}\n", start) + 2])


def test_a_short_soak_meets_every_fault_once_and_passes() -> None:
    cycles = len(FAULTS) + 2
    proc = soak("-n", str(cycles), "--fault-every", "1", "--warmup", "4", "--users", "3")

    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = figures(proc.stdout)
    assert result["cycles"] == cycles
    assert result["faults_injected"] == cycles
    assert {f"fault: {fault.name}" for fault in FAULTS} <= set(result["by_kind"])
    assert result["summary_lines"] == result["invocations"] > cycles * 8
    assert result["plaid_connections"] <= result["plaid_connections_allowed"]
    assert result["items_left_at_plaid"] == []
    assert result["items_kept_at_plaid"] == result["items_kept_expected"] >= 1
    assert proc.stdout.splitlines()[-1].startswith(f"soak-items: ok: {cycles} cycles")
    assert "access-sandbox-" not in proc.stdout + proc.stderr


def test_each_way_of_going_wrong_fails_the_run_and_is_named() -> None:
    injected = [
        "expectation",
        "unmet-fault",
        "leak",
        "left-item",
        "connections",
        "secret-reads",
        "rss",
    ]
    proc = soak(
        "-n", "6", "--warmup", "2", "--fault-every", "2",
        *[arg for name in injected for arg in ("--inject", name)],
    )  # fmt: skip

    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    failures = [line for line in proc.stdout.splitlines() if line.startswith("soak-items: FAIL ")]
    expected = {
        "expectation": "expected 418",
        "unmet-fault": "the fault was not met: {'aws': 1} scripted actions unused",
        "leak": "1 lines with an access token or the Plaid secret (1 here",
        "left-item": "1 Items left at Plaid, not removed",
        "connections": "Plaid connections (allowed 3)",
        "secret-reads": "secret reads (allowed",
        "rss": "RSS grew",
    }
    for name, words in expected.items():
        assert any(words in line for line in failures), (name, failures)
    # The injected access token was counted, not shown.
    assert "access-sandbox-injected" not in proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("soak-items: FAIL: 6 cycles")
