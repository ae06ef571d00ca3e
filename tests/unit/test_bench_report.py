"""The benchmark's arithmetic (infra/bench/report.py) on made-up measurements: overhead over
the floor timed in the same process, targets per trace mode, ratios in the same trace mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.bench import build as bench_build
from infra.bench import report

ROOT = Path(__file__).resolve().parents[2]

COUNTERS = {"plaid_connections": 1, "plaid_requests": 1, "secret_reads": 1, "xray_datagrams": 0}


@dataclass
class Run:
    """What run.py's Runner holds, with made-up numbers."""

    variant: bench_build.Variant
    build_dir: Path
    trace: str
    cold: list[dict[str, Any]] = field(default_factory=list)
    warm_first: dict[str, Any] = field(default_factory=lambda: dict(COUNTERS))
    warm: list[float] = field(default_factory=list)
    warm_floor: list[float] = field(default_factory=list)
    warm_cpu: list[float] = field(default_factory=list)
    warm_floor_cpu: list[float] = field(default_factory=list)
    warm_counters: dict[str, int] = field(default_factory=dict)
    warm_maxrss_kib: int = 40_000
    log_lines: dict[str, int] = field(default_factory=dict)
    floor_traced: bool = False


def cold(first_response_ms: float) -> dict[str, Any]:
    return {
        "first_response_ms": first_response_ms,
        "first_response_cpu_ms": first_response_ms,
        "process_cpu_ms": first_response_ms,
        "init_ms": first_response_ms - 10,
        "first_invoke_ms": 10,
        "wall_ms": first_response_ms + 10,
        "maxrss_kib": 40_000,
        "modules": 500,
        "plaid_connections": 1,
        "secret_reads": 1,
        "xray_datagrams": 0,
    }


def variant(name: str, baseline: int | None = None) -> bench_build.Variant:
    return bench_build.Variant(
        name, name, "app:lambda_handler", ROOT, built=True, baseline=baseline
    )


@pytest.fixture(autouse=True)
def no_artifact_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "artifact", lambda _path: {})


def analyse(product_warm: dict[str, tuple[float, float]], colds: dict[str, float]) -> Any:
    """Product warm p50 and in-process floor p50 per trace; cold p50 per variant (sampled)."""
    names = {"product_build": None, "blog_post_build": 1, "powertools_by_the_book_build": 3}
    cold_runs = [
        Run(variant(name, base), ROOT, "sampled", cold=[cold(colds[name])] * 3)
        for name, base in names.items()
    ]
    warm_runs = [
        Run(
            variant("product_build"),
            ROOT,
            trace,
            warm=[handler] * 5,
            warm_floor=[floor] * 5,
            warm_cpu=[handler / 2] * 5,
            warm_floor_cpu=[floor / 2] * 5,
            warm_counters={**COUNTERS, "plaid_connections": 1, "secret_reads": 0},
        )
        for trace, (handler, floor) in product_warm.items()
    ]
    floors = {"raw_session": [0.5], "trust_env_false": [0.45], "urllib3": [0.3]}
    return report.analyse(cold_runs, warm_runs, floors, {})


def test_overhead_is_over_the_floor_timed_in_the_same_process() -> None:
    results = analyse(
        {"untraced": (1.2, 1.0)},
        {"product_build": 100, "blog_post_build": 100, "powertools_by_the_book_build": 200},
    )
    warm = results["product_build"]["warm"]["untraced"]

    assert warm["overhead_p50_ms"] == pytest.approx(0.2)  # not 1.2 - 0.5 (the floor process)
    assert warm["overhead_p50_vs_floor_process_ms"] == pytest.approx(0.7)
    assert warm["overhead_cpu_p50_ms"] == pytest.approx(0.1)  # CPU time, same process
    assert warm["overhead_met"] is True


def test_sampled_invocations_have_their_own_overhead_target() -> None:
    results = analyse(
        {"sampled": (1.4, 1.0), "unsampled": (1.4, 1.0)},
        {"product_build": 100, "blog_post_build": 100, "powertools_by_the_book_build": 200},
    )
    warm = results["product_build"]["warm"]

    assert warm["sampled"]["overhead_met"] is True  # 0.4 <= 0.5
    assert warm["unsampled"]["overhead_met"] is False  # 0.4 > 0.3


def test_cold_start_ratios_against_the_same_build_of_each_baseline() -> None:
    results = analyse(
        {"sampled": (1.0, 1.0)},
        {"product_build": 90, "blog_post_build": 160, "powertools_by_the_book_build": 190},
    )
    cold = results["product_build"]["cold"]["sampled"]

    assert cold["vs_b1_same_build"] == pytest.approx(90 / 160)
    assert cold["vs_b3_same_build"] == pytest.approx(90 / 190)
    line = next(r for r in report._targets(results) if r.startswith("| product_build | sampled"))
    assert "✅ 0.56" in line  # within 0.6 times baseline (1)
    assert "❌ 0.47" in line  # above 0.45 times baseline (3)


def test_the_floor_connection_is_not_counted_against_the_variant() -> None:
    results = analyse(
        {"untraced": (1.0, 1.0)},
        {"product_build": 100, "blog_post_build": 100, "powertools_by_the_book_build": 200},
    )
    # first invocation 1 connection + 1 more opened by the in-process floor
    assert results["product_build"]["warm"]["untraced"]["container"]["plaid_connections"] == 2
    line = next(r for r in report._targets(results) if r.startswith("| product_build"))
    assert "| ✅ 1 |" in line
