"""The benchmark's numbers: summaries, ratios against the baselines, targets, and the markdown
report. Pure functions over what run.py measured (no processes, no I/O beyond artifact sizes).

Rows are variants; every measurement exists per trace mode (`sampled`, `unsampled`,
`untraced`: what the invocation's X-Ray header said). Ratios compare like with like: the
variant's cold start in one mode against the baseline's in the same mode.
"""

# ruff: noqa: RUF001

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from infra.bench import build as builder

MEMORY_MB = 1024  # template.yaml's MemorySize default

TARGETS = {
    # Cold start to the first 200, same build recipe for every variant: in process, and under
    # awslambdaric, where the runtime's own start is added to both sides of each ratio.
    "cold_vs_b1": 0.6,
    "cold_vs_b3": 0.45,
    "cold_ric_vs_b1": 0.7,
    "cold_ric_vs_b3": 0.6,
    "overhead_p50_ms": 0.3,  # unsampled and untraced invocations
    "overhead_p50_sampled_ms": 0.5,
    "connections": 1,
    "secret_reads": 1,
}
# What an invocation's trace header says (child.py's BENCH_TRACE): X-Ray's default rule samples
# the first request each second and 5 % of the rest; a direct invoke carries no header.
TRACES = ("sampled", "unsampled", "untraced")


def overhead_target(trace: str) -> float:
    return TARGETS["overhead_p50_sampled_ms" if trace == "sampled" else "overhead_p50_ms"]


class Measured(Protocol):
    """What run.py's Runner holds for one variant in one trace mode."""

    variant: builder.Variant
    build_dir: Path
    trace: str
    cold: list[dict[str, Any]]
    warm_first: dict[str, Any]
    warm: list[float]
    warm_floor: list[float]
    warm_cpu: list[float]
    warm_floor_cpu: list[float]
    warm_counters: dict[str, int]
    warm_maxrss_kib: int
    log_lines: dict[str, int]
    floor_traced: bool


def pct(values: list[float], q: float) -> float:
    """Percentile with linear interpolation (q in 0..100)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "min": min(values),
        "p50": statistics.median(values),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def cold_summary(cold: list[dict[str, Any]]) -> dict[str, Any]:
    def of(key: str, scale: float = 1.0) -> dict[str, float]:
        return summary([c[key] * scale for c in cold])

    return {
        "first_response_ms": of("first_response_ms"),
        "first_response_cpu_ms": of("first_response_cpu_ms"),
        "process_cpu_ms": of("process_cpu_ms"),
        "init_ms": of("init_ms"),
        "first_invoke_ms": of("first_invoke_ms"),
        "wall_ms": of("wall_ms"),
        "maxrss_mib": of("maxrss_kib", 1 / 1024),
        "modules": statistics.median([c["modules"] for c in cold]),
        "connections_per_start": statistics.median([c["plaid_connections"] for c in cold]),
        "secret_reads_per_start": statistics.median([c["secret_reads"] for c in cold]),
        "xray_datagrams_per_start": statistics.median([c["xray_datagrams"] for c in cold]),
    }


def warm_summary(run: Measured, floor_process: dict[str, float]) -> dict[str, Any]:
    """Warm latencies and the overhead over the floor timed in the same process (alternating
    with the invocations); the floor's own process is kept as a cross-check."""
    warm = summary(run.warm)
    floor = summary(run.warm_floor) if run.warm_floor else None
    reference = floor or floor_process
    first, counters = run.warm_first, run.warm_counters
    overhead = warm["p50"] - reference["p50"]
    # Each invocation minus the floor POST right after it: drift on the machine cancels out.
    pairs = [h - f for h, f in zip(run.warm, run.warm_floor, strict=False)]
    return {
        "warm_ms": warm,
        "floor_in_process_ms": floor,
        "floor_traced": run.floor_traced,
        "overhead_p50_ms": overhead,
        "overhead_p99_ms": warm["p99"] - reference["p99"],
        "overhead_p50_vs_floor_process_ms": warm["p50"] - floor_process["p50"],
        "overhead_paired_median_ms": statistics.median(pairs) if pairs else None,
        # The same difference in CPU time of the process: waiting for a core does not count.
        "overhead_cpu_p50_ms": _p50_difference(run.warm_cpu, run.warm_floor_cpu),
        "invocations": len(run.warm),
        "container": {key: first[key] + counters[key] for key in counters},
        "warm_only": counters,
        "warm_maxrss_mib": run.warm_maxrss_kib / 1024,
        "outputs": run.log_lines,
        "overhead_met": overhead <= overhead_target(run.trace),
    }


def _p50_difference(values: list[float], floor: list[float]) -> float | None:
    if not values or not floor:
        return None
    return statistics.median(values) - statistics.median(floor)


def analyse(
    cold: Iterable[Measured],
    warm: Iterable[Measured],
    floors: dict[str, list[float]],
    ric: dict[tuple[str, str], list[dict[str, Any]]],
) -> dict[str, Any]:
    """Everything the report shows, keyed by variant name, then by trace mode."""
    floor_stats = {name: summary(values) for name, values in floors.items()}
    results: dict[str, Any] = {}

    def row(variant: builder.Variant, build_dir: Path) -> dict[str, Any]:
        row: dict[str, Any] = results.setdefault(
            variant.name,
            {
                "label": variant.label,
                "baseline": variant.baseline,
                "built": variant.built,
                "cold": {},
                "cold_ric": {},
                "warm": {},
                "artifact": artifact(build_dir),
            },
        )
        return row

    for run in cold:
        row(run.variant, run.build_dir)["cold"][run.trace] = cold_summary(run.cold)
    for run in warm:
        summary_ = warm_summary(run, floor_stats["raw_session"])
        row(run.variant, run.build_dir)["warm"][run.trace] = summary_
    for (name, trace), starts in ric.items():
        results[name]["cold_ric"][trace] = {
            "first_response_ms": summary([s["first_response_ms"] for s in starts]),
            "process_cpu_ms": summary([s["process_cpu_ms"] for s in starts]),
        }
    for res in results.values():
        _ratios(res, results)
    results["_floor"] = floor_stats
    return results


def _ratios(res: dict[str, Any], results: dict[str, Any]) -> None:
    """Cold-start ratios against baselines (1) and (3), as shipped and with the same build,
    each trace mode against the same mode."""
    suffix = "_build" if res["built"] else ""
    for trace, cold in res["cold"].items():

        def ratio(base: str, key: str, cold: dict[str, Any] = cold, trace: str = trace) -> Any:
            other = results.get(base, {}).get("cold", {}).get(trace)
            return cold[key]["p50"] / other[key]["p50"] if other else None

        wall, cpu = "first_response_ms", "first_response_cpu_ms"
        cold["vs_b1"] = ratio("blog_post", wall)
        cold["vs_b3"] = ratio("powertools_by_the_book", wall)
        cold["vs_b1_same_build"] = ratio(f"blog_post{suffix}", wall)
        cold["vs_b3_same_build"] = ratio(f"powertools_by_the_book{suffix}", wall)
        cold["cpu_vs_b1_same_build"] = ratio(f"blog_post{suffix}", cpu)
        cold["cpu_vs_b3_same_build"] = ratio(f"powertools_by_the_book{suffix}", cpu)


_ARTIFACTS: dict[Path, dict[str, int]] = {}


def artifact(path: Path) -> dict[str, int]:
    if path not in _ARTIFACTS:
        _ARTIFACTS[path] = {
            "bytes": builder.du(path),
            "zip_bytes": builder.zipped_size(path),
            "files": builder.file_count(path),
            "pyc_files": sum(1 for _ in path.rglob("*.pyc")),
        }
    return _ARTIFACTS[path]


# --- markdown ---------------------------------------------------------------------------------


def mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def fmt_ratio(value: float | None, target: float) -> str:
    return "-" if value is None else f"{value:.2f}× {mark(value <= target)}"


def mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f}"


def _rows(
    res: dict[str, Any], section: str, line: Callable[[dict[str, Any], str, dict[str, Any]], str]
) -> list[str]:
    """One table line per variant and trace mode present in `section`."""
    out = []
    for name, r in res.items():
        if name.startswith("_"):
            continue
        for trace in TRACES:
            if trace in r[section]:
                out.append(line(r, trace, r[section][trace]))
    return out


def markdown(report: dict[str, Any]) -> str:
    res = report["results"]
    cfg = report["config"]
    lines = [
        "# Performance results",
        "",
        f"Generated {report['date']} by `{report['command']}`",
        "",
        f"- machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, "
        f"`{report['machine']['machine']}`, kernel {report['machine']['kernel']}",
        f"- Python: {report['python']} (`{report['python_path']}`, run as `-P -s -S -B`)",
        f"- product: git {report['git']}; memory setting {MEMORY_MB} MB (template default)",
        f"- cold starts: {cfg['cold']} per variant and trace mode, interleaved; warm: "
        f"{cfg['warm']} invocations per variant and trace mode after the first, in interleaved "
        f"batches of {cfg['batch']}, each followed by one floor POST in the same process",
        f"- load average (1, 5, 15 min) at start {report['load_start']}, at end "
        f"{report['load_end']}: other work on the machine inflates wall times (CPU times less)",
        f"- wall time of the run: {report['elapsed_s']:.0f} s",
        "",
        "Trace modes: *sampled* = `_X_AMZN_TRACE_ID` with `Sampled=1`, *unsampled* = "
        "`Sampled=0`, *untraced* = no header (a direct invoke).",
        "",
        "## Cold start (fresh process → first 200), ms",
        "",
        "First response = in-process time from the runner's first line to the handler's first "
        "200 (Lambda's Init Duration + first Duration, without the sandbox set-up Lambda adds); "
        "CPU = CPU time of the process at that point; process wall = fork to exit, measured by "
        "the parent. Ratios compare first-response medians in the same trace mode (CPU ratios: "
        "CPU medians, less sensitive to other load on the machine); *as shipped* "
        "= against the baseline as `sam build`'s python builder packages it, *same build* = "
        "against the baseline packaged exactly like the row.",
        "",
        "| variant | trace | first response p50 | p99 | min | CPU p50 | init p50 "
        "| first invoke p50 | process wall p50 | peak RSS MiB | modules | X-Ray datagrams "
        "| vs (1) as shipped | vs (3) as shipped | vs (1) same build | vs (3) same build "
        "| CPU vs (1) same build | CPU vs (3) same build |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    b1, b3 = TARGETS["cold_vs_b1"], TARGETS["cold_vs_b3"]
    lines += _rows(
        res,
        "cold",
        lambda r, trace, c: (
            f"| {r['label']} | {trace} | **{c['first_response_ms']['p50']:.0f}** "
            f"| {c['first_response_ms']['p99']:.0f} | {c['first_response_ms']['min']:.0f} "
            f"| {c['first_response_cpu_ms']['p50']:.0f} | {c['init_ms']['p50']:.0f} "
            f"| {c['first_invoke_ms']['p50']:.0f} | {c['wall_ms']['p50']:.0f} "
            f"| {c['maxrss_mib']['p50']:.1f} | {c['modules']:.0f} "
            f"| {c['xray_datagrams_per_start']:.0f} "
            f"| {fmt_ratio(c['vs_b1'], b1)} | {fmt_ratio(c['vs_b3'], b3)} "
            f"| {fmt_ratio(c['vs_b1_same_build'], b1)} | {fmt_ratio(c['vs_b3_same_build'], b3)} "
            f"| {fmt_ratio(c['cpu_vs_b1_same_build'], b1)} "
            f"| {fmt_ratio(c['cpu_vs_b3_same_build'], b3)} |"
        ),
    )
    lines += [
        "",
        f"Targets (product rows): ≤ {b1}× baseline (1) and ≤ {b3}× baseline (3), same build; "
        "✅/❌ are shown on every row for comparison.",
        "",
    ]
    if any(r["cold_ric"] for n, r in res.items() if not n.startswith("_")):
        lines += [
            "### Cold start under the runtime interface client (awslambdaric), ms",
            "",
            "As Lambda runs the function: `python3.13 -S -B -m awslambdaric app.lambda_handler` "
            "against a Runtime API emulator on loopback, the event queued before the process "
            "starts. Measured by the parent from process start to the first response posted to "
            "the Runtime API (interpreter start-up, the runtime's own imports and the Runtime "
            "API round trips included); beside it the in-process first response of the same "
            "variant and trace mode above.",
            "",
            "| variant | trace | process start → response posted p50 | p99 | min "
            "| process CPU p50 | in-process first response p50 | vs (1) same build "
            "| vs (3) same build |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|",
        ]

        def ric_line(r: dict[str, Any], trace: str, c: dict[str, Any]) -> str:
            inproc = r["cold"].get(trace, {}).get("first_response_ms", {}).get("p50")

            def vs(base: str, target: float) -> str:
                other = res.get(base, {}).get("cold_ric", {}).get(trace)
                if not other:
                    return "-"
                value = c["first_response_ms"]["p50"] / other["first_response_ms"]["p50"]
                return fmt_ratio(value, target)

            suffix = "_build" if r["built"] else ""
            return (
                f"| {r['label']} | {trace} | **{c['first_response_ms']['p50']:.0f}** "
                f"| {c['first_response_ms']['p99']:.0f} | {c['first_response_ms']['min']:.0f} "
                f"| {c['process_cpu_ms']['p50']:.0f} "
                f"| {'-' if inproc is None else f'{inproc:.0f}'} "
                f"| {vs('blog_post' + suffix, TARGETS['cold_ric_vs_b1'])} "
                f"| {vs('powertools_by_the_book' + suffix, TARGETS['cold_ric_vs_b3'])} |"
            )

        lines += [
            *_rows(res, "cold_ric", ric_line),
            "",
            f"Targets (product rows): ≤ {TARGETS['cold_ric_vs_b1']}× baseline (1) and "
            f"≤ {TARGETS['cold_ric_vs_b3']}× baseline (3), same build.",
            "",
        ]
    floor = res["_floor"]
    lines += [
        "## Warm invocations, ms",
        "",
        "Each invocation is followed by one kept-alive `requests.Session().post` of the same "
        "body to the same stand-in, timed in the same process (the floor); overhead = variant "
        "p50 − that floor's p50; the median of (invocation − the floor POST right after it) is "
        "beside it, and the same p50 difference in the process's CPU time (time spent waiting "
        "for a core or for the stand-in does not count). Floors in their own processes, same "
        "run (cross-check): "
        f"`requests.Session()` p50 {floor['raw_session']['p50']:.3f}, "
        f"with `trust_env=False` p50 {floor['trust_env_false']['p50']:.3f}, "
        f"urllib3 directly p50 {floor['urllib3']['p50']:.3f}.",
        "",
        "| variant | trace | p50 | p99 | floor p50 (same process) | overhead p50 "
        "(target) | overhead p99 | median of paired differences | CPU overhead p50 "
        "| overhead p50 vs floor process | n |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]

    def warm_line(r: dict[str, Any], trace: str, w: dict[str, Any]) -> str:
        floor_in = w["floor_in_process_ms"]
        floor_text = "-" if floor_in is None else f"{floor_in['p50']:.3f}"
        if w["floor_traced"]:
            floor_text += " (traced by the variant's patches)"
        target = overhead_target(trace)
        paired = w["overhead_paired_median_ms"]
        cpu = w.get("overhead_cpu_p50_ms")
        return (
            f"| {r['label']} | {trace} | {w['warm_ms']['p50']:.3f} | {w['warm_ms']['p99']:.3f} "
            f"| {floor_text} | **{w['overhead_p50_ms']:.3f}** (≤ {target}) "
            f"{mark(w['overhead_met'])} | {w['overhead_p99_ms']:.3f} "
            f"| {'-' if paired is None else f'{paired:.3f}'} "
            f"| {'-' if cpu is None else f'{cpu:.3f}'} "
            f"| {w['overhead_p50_vs_floor_process_ms']:.3f} | {w['invocations']} |"
        )

    lines += _rows(res, "warm", warm_line)
    lines += [
        "",
        f"## Per container (1 cold + {cfg['warm']} warm invocations), counted at the servers",
        "",
        "| variant | trace | TLS connections to Plaid | Plaid requests | GetSecretValue calls "
        "| X-Ray datagrams | JSON log lines | EMF documents | warm peak RSS MiB |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]

    def container_line(r: dict[str, Any], trace: str, w: dict[str, Any]) -> str:
        c, o = w["container"], w["outputs"]
        conn, reads = c["plaid_connections"], c["secret_reads"]
        # The in-process floor opens its own connection to the stand-in: one more per process.
        conn_variant = conn - (1 if w["floor_in_process_ms"] else 0)
        return (
            f"| {r['label']} | {trace} | {conn_variant} "
            f"{mark(conn_variant <= TARGETS['connections'])} | {c['plaid_requests']} "
            f"| {reads} {mark(reads <= TARGETS['secret_reads'])} | {c['xray_datagrams']} "
            f"| {o['json_logs']} | {o['emf_documents']} | {w['warm_maxrss_mib']:.1f} |"
        )

    lines += _rows(res, "warm", container_line)
    lines += [
        "",
        "Plaid requests and connections at the stand-in include the floor's (one connection, "
        "one POST per warm invocation); the connection column shows the variant's own.",
        "",
        "## Artifact",
        "",
        "| variant | on disk MiB | zipped MiB | files | .pyc files |",
        "|---|--:|--:|--:|--:|",
    ]
    for name, r in res.items():
        if name.startswith("_"):
            continue
        a = r["artifact"]
        lines.append(
            f"| {r['label']} | {mib(a['bytes'])} | {mib(a['zip_bytes'])} | {a['files']} "
            f"| {a['pyc_files']} |"
        )
    lines += ["", "## Targets, product rows", ""]
    lines += _targets(res)
    lines += ["", f"Raw numbers: `{report['json_path']}`.", ""]
    return "\n".join(lines)


def _targets(res: dict[str, Any]) -> list[str]:
    b1, b3 = TARGETS["cold_vs_b1"], TARGETS["cold_vs_b3"]
    lines = [
        f"| variant | trace | cold ≤ {b1}× (1) same build | cold ≤ {b3}× (3) same build "
        "| warm overhead p50 | 1 connection | 1 secret read |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in res.items():
        if name.startswith("_") or r["baseline"] is not None:
            continue
        for trace in TRACES:
            cold, warm = r["cold"].get(trace), r["warm"].get(trace)
            if warm is None:
                continue
            c = warm["container"]
            conn = c["plaid_connections"] - (1 if warm["floor_in_process_ms"] else 0)

            def ratio(key: str, target: float, cold: Any = cold) -> str:
                value = cold and cold.get(key)
                return "-" if not value else f"{mark(value <= target)} {value:.2f}×"

            lines.append(
                f"| {r['label']} | {trace} | {ratio('vs_b1_same_build', b1)} "
                f"| {ratio('vs_b3_same_build', b3)} "
                f"| {mark(warm['overhead_met'])} {warm['overhead_p50_ms']:.3f} ms "
                f"(≤ {overhead_target(trace)}) "
                f"| {mark(conn <= TARGETS['connections'])} {conn} "
                f"| {mark(c['secret_reads'] <= TARGETS['secret_reads'])} {c['secret_reads']} |"
            )
    return lines
