"""`make bench`: the product against three baselines, side by side, on loopback only.

    .venv/bin/python infra/bench/run.py                    # about 3 min, into .bench/results.md
    .venv/bin/python infra/bench/run.py --out docs/performance-results.md   # publish
    .venv/bin/python infra/bench/run.py --quick                              # smoke, ~1 min

What it does (details in docs/performance.md):
1. builds every variant into `.bench/build/<name>` the way `sam build` does (build.py);
2. starts the loopback world (services.py): moto in server mode for Secrets Manager with a
   GetSecretValue counter, the Plaid stand-in over TLS with a CA made for this run, an X-Ray
   daemon sink;
3. cold starts: N fresh `python3.13 -I -S -B child.py` processes per variant, interleaved
   (A B C D A B C D ...), Lambda-like environment, only the variant's build dir on sys.path;
4. warm: one long-lived process per variant plus two floor processes, driven in interleaved
   batches until each has served `--warm` invocations after its first;
5. writes a markdown table and a JSON file with every number, the machine and the command.

A benchmark, not a test: it asserts nothing about timings. It does fail loudly when a variant
does not answer 200 with a link token.
"""

# ruff: noqa: S603, S607, RUF001

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build as builder
from services import CLIENT_ID, SECRET, SECRET_ID, World

ROOT = builder.ROOT
BENCH = builder.BENCH
CHILD = Path(__file__).resolve().parent / "child.py"
EVENT = ROOT / "infra/events/ok.json"
MEMORY_MB = 1024  # template.yaml's MemorySize default

TARGETS = {
    "cold_vs_b1": 1.0,
    "cold_vs_b3": 0.8,
    "overhead_p50_ms": 0.3,
    "connections": 1,
    "secret_reads": 1,
}


@dataclass
class Runner:
    variant: builder.Variant
    build_dir: Path
    target: str  # module:function
    name: str
    extra_env: dict[str, str] = field(default_factory=dict)
    cold: list[dict[str, Any]] = field(default_factory=list)
    warm_first: dict[str, Any] = field(default_factory=dict)
    warm: list[float] = field(default_factory=list)
    warm_counters: dict[str, int] = field(default_factory=dict)
    warm_maxrss_kib: int = 0
    log_lines: dict[str, int] = field(default_factory=dict)


def lambda_env(world: World, runner: Runner, python: str) -> dict[str, str]:
    """What a Lambda container's environment holds (template.yaml's variables included)."""
    fn = "plaid-link-token-bench"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(BENCH / "home"),  # empty: no ~/.netrc, no ~/.aws
        "LAMBDA_TASK_ROOT": str(runner.build_dir),
        "_HANDLER": runner.target.replace(":", "."),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": fn,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/25/[$LATEST]bench",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIABENCHBENCHBENCH0",
        "AWS_SECRET_ACCESS_KEY": "bench-not-a-key",
        "AWS_SESSION_TOKEN": "bench-not-a-token",
        "_X_AMZN_TRACE_ID": (
            f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
            f"Parent={secrets.token_hex(8)};Sampled=1"
        ),
        "AWS_XRAY_DAEMON_ADDRESS": world.xray.address,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": world.moto.endpoint,
        "REQUESTS_CA_BUNDLE": str(world.ca_pem),  # overrides the machine's global setting
        "SSL_CERT_FILE": str(world.ca_pem),  # urllib3/ssl default context (plaid-python)
        "POWERTOOLS_SERVICE_NAME": "plaid-link-token",
        "POWERTOOLS_METRICS_NAMESPACE": "PlaidLinkToken",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        "POWERTOOLS_TRACER_CAPTURE_ERROR": "false",
        "PLAID_SECRET_ID": SECRET_ID,
        "PLAID_SECRET_TTL_SECONDS": "300",
        "PLAID_ENV": "sandbox",
        "PLAID_CLIENT_NAME": "Link Token Demo",
        "PLAID_PRODUCTS": "transactions",
        "PLAID_COUNTRY_CODES": "US",
        "PLAID_LANGUAGE": "en",
        "PLAID_BASE_URL": world.plaid.base_url,
    }
    env.update(runner.extra_env)
    return env


def interpreter_args(python: str, runner: Runner, mode: str, fd: int) -> list[str]:
    # -I: no PYTHON* variables, no user site, no script dir on sys.path; -S: no site-packages
    # at all (the build dir is the only import root, inserted by child.py); -B: never write
    # bytecode, so a run cannot warm the next (Lambda's /var/task is read-only too).
    return [python, "-I", "-S", "-B", str(CHILD), str(runner.build_dir), runner.target,
            str(EVENT), mode, str(fd)]  # fmt: skip


def spawn(world: World, runner: Runner, python: str, mode: str, log: Path) -> tuple[Any, int]:
    read_fd, write_fd = os.pipe()
    env = lambda_env(world, runner, python)
    with log.open("ab") as out, log.with_suffix(".err").open("wb") as err:
        proc = subprocess.Popen(
            interpreter_args(python, runner, mode, write_fd),
            env=env,
            cwd=runner.build_dir,
            stdin=subprocess.PIPE if mode == "warm" else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            pass_fds=(write_fd,),
        )
    proc.err_path = log.with_suffix(".err")
    os.close(write_fd)
    return proc, read_fd


class LineReader:
    def __init__(self, fd: int) -> None:
        self.file = os.fdopen(fd, "rb")

    def line(self) -> dict[str, Any]:
        raw = self.file.readline()
        if not raw:
            raise EOFError
        doc: dict[str, Any] = json.loads(raw)
        return doc


def fail(runner: Runner, proc: Any, what: str) -> None:
    err = proc.err_path.read_text(errors="replace")
    raise SystemExit(f"bench: {runner.name} failed during {what}:\n{err[-3000:]}")


def cold_start(world: World, runner: Runner, python: str, logs: Path) -> dict[str, Any]:
    before = world.counters()
    started = time.perf_counter()
    proc, fd = spawn(world, runner, python, "cold", logs / f"{runner.name}-cold.log")
    reader = LineReader(fd)
    try:
        result = reader.line()
    except EOFError:
        proc.wait()
        fail(runner, proc, "a cold start")
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - started) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.file.close()
    if proc.returncode:
        fail(runner, proc, "a cold start")
    after = world.counters()
    result["wall_ms"] = wall
    result["process_cpu_ms"] = (usage.ru_utime + usage.ru_stime) * 1000
    result.update({k: after[k] - before[k] for k in after})
    return result


def run_cold(world: World, runners: list[Runner], n: int, python: str, logs: Path) -> None:
    for round_no in range(n):
        for runner in runners:
            runner.cold.append(cold_start(world, runner, python, logs))
        progress(f"cold {round_no + 1}/{n}")


def run_warm(
    world: World, runners: list[Runner], total: int, batch: int, python: str, logs: Path
) -> None:
    procs = {}
    for runner in runners:
        log = logs / f"{runner.name}-warm.log"
        log.unlink(missing_ok=True)
        before = world.counters()
        proc, fd = spawn(world, runner, python, "warm", log)
        reader = LineReader(fd)
        try:
            runner.warm_first = reader.line()
        except EOFError:
            proc.wait()
            fail(runner, proc, "the warm process's first invocation")
        after = world.counters()
        runner.warm_first.update({k: after[k] - before[k] for k in after})
        runner.warm_counters = dict.fromkeys(after, 0)
        procs[runner.name] = (proc, reader)
    done = 0
    while done < total:
        size = min(batch, total - done)
        for runner in runners:
            proc, reader = procs[runner.name]
            before = world.counters()
            proc.stdin.write(f"{size}\n".encode())
            proc.stdin.flush()
            try:
                runner.warm.extend(reader.line()["latencies_ms"])
            except EOFError:
                proc.wait()
                fail(runner, proc, "warm invocations")
            time.sleep(0.02)  # let the stand-in's and the sink's threads settle
            after = world.counters()
            for key in after:
                runner.warm_counters[key] += after[key] - before[key]
        done += size
        progress(f"warm {done}/{total}")
    for runner in runners:
        proc, reader = procs[runner.name]
        proc.stdin.write(b"quit\n")
        proc.stdin.flush()
        runner.warm_maxrss_kib = reader.line().get("maxrss_kib", 0)
        proc.wait()
        reader.file.close()
        runner.log_lines = count_outputs(logs / f"{runner.name}-warm.log")


def count_outputs(log: Path) -> dict[str, int]:
    """What a variant wrote to its log stream: JSON log lines and EMF metric documents."""
    logs = emf = other = 0
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                other += 1
                continue
            if "_aws" in doc:
                emf += 1
            else:
                logs += 1
        elif line.strip():
            other += 1
    return {"json_logs": logs, "emf_documents": emf, "other_lines": other}


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- statistics and report ----------------------------------------------------------------


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


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(),
            "kernel": platform.release()}  # fmt: skip


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def git_state() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True)
        return done.stdout.strip()

    try:
        rev = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "handler")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" (handler/ modified)" if dirty else "")


def analyse(runners: list[Runner], floors: list[Runner]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    floor_raw = summary(floors[0].warm)
    floor_tight = summary(floors[1].warm)
    for runner in runners:
        cold = runner.cold
        results[runner.name] = {
            "label": runner.variant.label,
            "baseline": runner.variant.baseline,
            "cold_first_response_ms": summary([c["first_response_ms"] for c in cold]),
            "cold_first_response_cpu_ms": summary([c["first_response_cpu_ms"] for c in cold]),
            "cold_process_cpu_ms": summary([c["process_cpu_ms"] for c in cold]),
            "cold_init_ms": summary([c["init_ms"] for c in cold]),
            "cold_first_invoke_ms": summary([c["first_invoke_ms"] for c in cold]),
            "cold_wall_ms": summary([c["wall_ms"] for c in cold]),
            "cold_maxrss_mib": summary([c["maxrss_kib"] / 1024 for c in cold]),
            "cold_modules": statistics.median([c["modules"] for c in cold]),
            "cold_connections_per_start": statistics.median([c["plaid_connections"] for c in cold]),
            "cold_secret_reads_per_start": statistics.median([c["secret_reads"] for c in cold]),
            "warm_ms": summary(runner.warm),
            "warm_overhead_p50_ms": statistics.median(runner.warm) - floor_raw["p50"],
            "warm_overhead_p99_ms": pct(runner.warm, 99) - floor_raw["p99"],
            "warm_overhead_p50_vs_tight_floor_ms": statistics.median(runner.warm)
            - floor_tight["p50"],
            "warm_invocations": len(runner.warm),
            "container": {  # the warm process: first invocation + all warm ones
                "plaid_connections": runner.warm_first["plaid_connections"]
                + runner.warm_counters["plaid_connections"],
                "plaid_requests": runner.warm_first["plaid_requests"]
                + runner.warm_counters["plaid_requests"],
                "secret_reads": runner.warm_first["secret_reads"]
                + runner.warm_counters["secret_reads"],
                "xray_datagrams": runner.warm_first["xray_datagrams"]
                + runner.warm_counters["xray_datagrams"],
            },
            "warm_only": runner.warm_counters,
            "warm_maxrss_mib": runner.warm_maxrss_kib / 1024,
            "outputs": runner.log_lines,
            "artifact": artifact(runner.build_dir),
        }
    results["_floor"] = {
        "raw_session": floor_raw,
        "trust_env_false": floor_tight,
        "urllib3": summary(floors[2].warm),
    }
    for name, res in results.items():
        if name.startswith("_"):
            continue
        built = next(r.variant.built for r in runners if r.name == name)
        res["built"] = built
        cold = res["cold_first_response_ms"]["p50"]
        cpu = res["cold_first_response_cpu_ms"]["p50"]

        def ratio(base: str, key: str, value: float) -> float | None:
            other = results.get(base)
            return value / other[key]["p50"] if other else None

        # "as shipped": against the baselines as `sam build` packages them (no bytecode);
        # "same build": against the baseline packaged exactly like this row.
        suffix = "_build" if built else ""
        res["cold_vs_b1"] = ratio("blog_post", "cold_first_response_ms", cold)
        res["cold_vs_b3"] = ratio("powertools_by_the_book", "cold_first_response_ms", cold)
        res["cold_vs_b1_same_build"] = ratio(f"blog_post{suffix}", "cold_first_response_ms", cold)
        res["cold_vs_b3_same_build"] = ratio(
            f"powertools_by_the_book{suffix}", "cold_first_response_ms", cold
        )
        res["cpu_vs_b1_same_build"] = ratio(f"blog_post{suffix}", "cold_first_response_cpu_ms", cpu)
        res["cpu_vs_b3_same_build"] = ratio(
            f"powertools_by_the_book{suffix}", "cold_first_response_cpu_ms", cpu
        )

        def met(value: float | None, target: float) -> bool:
            return value is not None and value <= target

        res["targets"] = {
            "cold_vs_b1": met(res["cold_vs_b1"], TARGETS["cold_vs_b1"]),
            "cold_vs_b3": met(res["cold_vs_b3"], TARGETS["cold_vs_b3"]),
            "cold_vs_b1_same_build": met(res["cold_vs_b1_same_build"], TARGETS["cold_vs_b1"]),
            "cold_vs_b3_same_build": met(res["cold_vs_b3_same_build"], TARGETS["cold_vs_b3"]),
            "overhead_p50": res["warm_overhead_p50_ms"] <= TARGETS["overhead_p50_ms"],
            "connections": res["container"]["plaid_connections"] <= TARGETS["connections"],
            "secret_reads": res["container"]["secret_reads"] <= TARGETS["secret_reads"],
        }
    return results


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


def fmt_ratio(value: float | None, target: float) -> str:
    if value is None:
        return "-"
    mark = "✅" if value <= target else "❌"
    return f"{value:.2f}× {mark}"


def mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f}"


def markdown(report: dict[str, Any]) -> str:
    res = report["results"]
    names = [n for n in res if not n.startswith("_")]
    cfg = report["config"]
    lines = [
        "# Performance results",
        "",
        f"Generated {report['date']} by `{report['command']}`",
        "",
        f"- machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, "
        f"`{report['machine']['machine']}`, kernel {report['machine']['kernel']}",
        f"- Python: {report['python']} (`{report['python_path']}`, run as `-I -S -B`)",
        f"- product: git {report['git']}; memory setting {MEMORY_MB} MB (template default)",
        f"- cold starts: {cfg['cold']} per variant, interleaved; warm: {cfg['warm']} "
        f"invocations per variant after the first, in interleaved batches of {cfg['batch']}",
        f"- wall time of the run: {report['elapsed_s']:.0f} s",
        "",
        "## Cold start (fresh process → first 200), ms",
        "",
        "First response = in-process time from the runner's first line to the handler's first "
        "200 (Lambda's Init Duration + first Duration, without the sandbox set-up Lambda adds); "
        "CPU = CPU time of the process at that point; process wall = fork to exit, measured by "
        "the parent. Ratios compare first-response medians; *as shipped* = against the baseline "
        "as `sam build` packages it, *same build* = against the baseline packaged exactly like "
        "the row.",
        "",
        "| variant | first response p50 | p99 | min | CPU p50 | init p50 | first invoke p50 "
        "| process wall p50 | peak RSS MiB | modules | vs (1) as shipped | vs (3) as shipped "
        "| vs (1) same build | vs (3) same build |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for n in names:
        r = res[n]
        c = r["cold_first_response_ms"]
        lines.append(
            f"| {r['label']} | **{c['p50']:.0f}** | {c['p99']:.0f} | {c['min']:.0f} "
            f"| {r['cold_first_response_cpu_ms']['p50']:.0f} "
            f"| {r['cold_init_ms']['p50']:.0f} | {r['cold_first_invoke_ms']['p50']:.0f} "
            f"| {r['cold_wall_ms']['p50']:.0f} | {r['cold_maxrss_mib']['p50']:.1f} "
            f"| {r['cold_modules']:.0f} "
            f"| {fmt_ratio(r['cold_vs_b1'], TARGETS['cold_vs_b1'])} "
            f"| {fmt_ratio(r['cold_vs_b3'], TARGETS['cold_vs_b3'])} "
            f"| {fmt_ratio(r['cold_vs_b1_same_build'], TARGETS['cold_vs_b1'])} "
            f"| {fmt_ratio(r['cold_vs_b3_same_build'], TARGETS['cold_vs_b3'])} |"
        )
    floor = res["_floor"]
    lines += [
        "",
        "Targets (product rows): ≤ 1.0× baseline (1) and ≤ 0.8× baseline (3); ✅/❌ are shown on "
        "every row for comparison.",
        "",
        "## Warm invocations, ms",
        "",
        f"Floor (one kept-alive `requests.Session().post` to the same stand-in, same run): "
        f"p50 {floor['raw_session']['p50']:.3f}, p99 {floor['raw_session']['p99']:.3f}; "
        f"with `trust_env=False`: p50 {floor['trust_env_false']['p50']:.3f}, "
        f"p99 {floor['trust_env_false']['p99']:.3f}; the same POST on urllib3 directly: "
        f"p50 {floor['urllib3']['p50']:.3f}, p99 {floor['urllib3']['p99']:.3f}.",
        "",
        "| variant | p50 | p99 | overhead p50 (target ≤ 0.3) | overhead p99 "
        "| overhead p50 vs trust_env=False floor | n |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for n in names:
        r = res[n]
        w = r["warm_ms"]
        ok = "✅" if r["targets"]["overhead_p50"] else "❌"
        lines.append(
            f"| {r['label']} | {w['p50']:.3f} | {w['p99']:.3f} "
            f"| **{r['warm_overhead_p50_ms']:.3f}** {ok} | {r['warm_overhead_p99_ms']:.3f} "
            f"| {r['warm_overhead_p50_vs_tight_floor_ms']:.3f} | {r['warm_invocations']} |"
        )
    lines += [
        "",
        f"## Per container (1 cold + {cfg['warm']} warm invocations), counted at the servers",
        "",
        "| variant | TLS connections to Plaid | Plaid requests | GetSecretValue calls "
        "| X-Ray datagrams | JSON log lines | EMF documents | warm peak RSS MiB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for n in names:
        r = res[n]
        c = r["container"]
        o = r["outputs"]
        conn_ok = "✅" if r["targets"]["connections"] else "❌"
        read_ok = "✅" if r["targets"]["secret_reads"] else "❌"
        lines.append(
            f"| {r['label']} | {c['plaid_connections']} {conn_ok} | {c['plaid_requests']} "
            f"| {c['secret_reads']} {read_ok} | {c['xray_datagrams']} | {o['json_logs']} "
            f"| {o['emf_documents']} | {r['warm_maxrss_mib']:.1f} |"
        )
    lines += [
        "",
        "## Artifact",
        "",
        "| variant | on disk MiB | zipped MiB | files | .pyc files |",
        "|---|--:|--:|--:|--:|",
    ]
    for n in names:
        r = res[n]
        a = r["artifact"]
        lines.append(
            f"| {r['label']} | {mib(a['bytes'])} | {mib(a['zip_bytes'])} | {a['files']} "
            f"| {a['pyc_files']} |"
        )
    lines += [
        "",
        "## Targets, product rows",
        "",
        "| variant | cold ≤ 1.0× (1) as shipped / same build | cold ≤ 0.8× (3) as shipped "
        "/ same build | warm overhead p50 ≤ 0.3 ms | 1 connection | 1 secret read |",
        "|---|---|---|---|---|---|",
    ]
    for n in names:
        r = res[n]
        if r["baseline"] is not None:
            continue
        t = r["targets"]

        def yn(ok: bool) -> str:
            return "✅" if ok else "❌"

        def x(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}×"

        lines.append(
            f"| {r['label']} "
            f"| {yn(t['cold_vs_b1'])} {x(r['cold_vs_b1'])} / "
            f"{yn(t['cold_vs_b1_same_build'])} {x(r['cold_vs_b1_same_build'])} "
            f"| {yn(t['cold_vs_b3'])} {x(r['cold_vs_b3'])} / "
            f"{yn(t['cold_vs_b3_same_build'])} {x(r['cold_vs_b3_same_build'])} "
            f"| {yn(t['overhead_p50'])} {r['warm_overhead_p50_ms']:.3f} ms "
            f"| {yn(t['connections'])} {r['container']['plaid_connections']} "
            f"| {yn(t['secret_reads'])} {r['container']['secret_reads']} |"
        )
    lines += [
        "",
        f"Load average (1, 5, 15 min) at start {report['load_start']}, at end "
        f"{report['load_end']}: other work on the machine inflates wall times (CPU times less).",
        "",
        f"Raw numbers: `{report['json_path']}`.",
        "",
    ]
    return "\n".join(lines)


def profile(name: str, rebuild: bool) -> int:
    import pstats

    python = builder.python313()
    found = {v.name: v for v in builder.variants()}
    if name not in found:
        raise SystemExit(f"bench: no variant {name!r}; have {sorted(found)}")
    variant = found[name]
    path = builder.build(variant, rebuild=rebuild)
    prof = BENCH / "prof"
    prof.mkdir(parents=True, exist_ok=True)
    stats_path = prof / f"{name}.pstats"
    runner = Runner(variant, path, variant.handler, name, {"BENCH_CPROFILE": str(stats_path)})
    plain = Runner(variant, path, variant.handler, name)
    with World(BENCH / "world") as world:
        env = lambda_env(world, plain, python)
        read_fd, write_fd = os.pipe()
        with (prof / f"{name}.importtime").open("wb") as err:
            command = interpreter_args(python, plain, "cold", write_fd)
            subprocess.run(
                [python, "-X", "importtime", *command[1:]],
                env=env, cwd=path, stdout=subprocess.DEVNULL, stderr=err, pass_fds=(write_fd,),
                check=True,
            )  # fmt: skip
        os.close(write_fd)
        print("importtime run:", os.read(read_fd, 4096).decode().strip())
        os.close(read_fd)
        cold_start(world, runner, python, prof)
        warm_path = prof / f"{name}-warm.pstats"
        warm = Runner(variant, path, variant.handler, name, {"BENCH_CPROFILE_WARM": str(warm_path)})
        run_warm(world, [warm], 300, 300, python, prof)
    stats = pstats.Stats(str(stats_path))
    stats.sort_stats("cumulative").print_stats(45)
    pstats.Stats(str(warm_path)).sort_stats("tottime").print_stats(40)
    print(f"wrote {prof / (name + '.importtime')}, {stats_path} and {warm_path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the product against baselines.")
    parser.add_argument("--out", default=".bench/results.md", type=Path)
    parser.add_argument("--json", type=Path, help="default: --out with .json")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 cold, 30 warm")
    parser.add_argument("--cold", type=int, default=20, help="cold starts per variant")
    parser.add_argument("--warm", type=int, default=300, help="warm invocations per variant")
    parser.add_argument("--batch", type=int, default=50, help="warm interleaving batch")
    parser.add_argument("--variants", help="comma-separated subset (default: all)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild every artifact")
    parser.add_argument(
        "--use-sam-build",
        action="store_true",
        help="benchmark .aws-sam/build/LinkTokenFunction as the product when it runs here",
    )
    parser.add_argument(
        "--profile",
        metavar="VARIANT",
        help="instead of benchmarking: one cold start of VARIANT under -X importtime and one "
        "under cProfile (import + first invocation), written to .bench/prof/",
    )
    args = parser.parse_args()
    if args.profile:
        return profile(args.profile, args.rebuild)
    if args.quick:
        args.cold, args.warm, args.batch = 2, 30, 15
    json_path = args.json or args.out.with_suffix(".json")
    started = time.perf_counter()
    load_start = load_average()
    command = " ".join([".venv/bin/python", "infra/bench/run.py", *sys.argv[1:]])

    python = builder.python313()
    variants = builder.variants()
    if args.variants:
        wanted = set(args.variants.split(","))
        variants = [v for v in variants if v.name in wanted]
    runners = []
    for variant in variants:
        progress(f"build {variant.name}")
        path = builder.build(variant, rebuild=args.rebuild, use_sam=args.use_sam_build)
        runners.append(Runner(variant, path, variant.handler, variant.name))
    floor_dir = builder.build(builder.FLOOR, rebuild=args.rebuild)
    floor_env = {"BENCH_PLAID_CLIENT_ID": CLIENT_ID, "BENCH_PLAID_SECRET": SECRET}
    floors = [
        Runner(builder.FLOOR, floor_dir, "floor:raw_post", "floor_raw", floor_env),
        Runner(builder.FLOOR, floor_dir, "floor:tight_post", "floor_tight", floor_env),
        Runner(builder.FLOOR, floor_dir, "floor:urllib3_post", "floor_urllib3", floor_env),
    ]
    logs = BENCH / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (BENCH / "home").mkdir(exist_ok=True)
    for old in logs.glob("*-cold.log"):
        old.unlink()

    with World(BENCH / "world") as world:
        run_cold(world, runners, args.cold, python, logs)
        run_warm(world, runners + floors, args.warm, args.batch, python, logs)

    py_version = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": command,
        "machine": machine(),
        "python": py_version,
        "python_path": python,
        "git": git_state(),
        "config": {
            "cold": args.cold,
            "warm": args.warm,
            "batch": args.batch,
            "memory_mb": MEMORY_MB,
        },
        "targets": TARGETS,
        "results": analyse(runners, floors),
        "raw": {
            r.name: {"cold": r.cold, "warm_ms": r.warm, "warm_first": r.warm_first}
            for r in runners + floors
        },
        "json_path": str(json_path),
        "load_start": load_start,
        "load_end": load_average(),
    }
    report["elapsed_s"] = time.perf_counter() - started
    out = args.out if args.out.is_absolute() else ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(report))
    (json_path if json_path.is_absolute() else ROOT / json_path).write_text(
        json.dumps(report, indent=1, default=str)
    )
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
