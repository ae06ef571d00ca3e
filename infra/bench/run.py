"""`make bench`: the product against three baselines, side by side, on loopback only.

    .venv/bin/python -m infra.bench                  # about 3 min, into .bench/results.md
    .venv/bin/python -m infra.bench --out docs/performance-results.md   # publish
    .venv/bin/python -m infra.bench --quick                              # smoke, ~1 min

What it does (details in docs/performance.md):
1. builds every variant into `.bench/build/<name>` the way `sam build` does (build.py);
2. starts the loopback world (services.py): moto in server mode for Secrets Manager with a
   GetSecretValue counter, the Plaid stand-in over TLS with a CA made for this run, an X-Ray
   daemon sink;
3. cold starts: N fresh `python3.13 -P -s -S -B child.py` processes per variant, interleaved
   (A B C D A B C D ...), Lambda-like environment, only the variant's build dir on sys.path;
4. warm: one long-lived process per variant plus two floor processes, driven in interleaved
   batches until each has served `--warm` invocations after its first;
5. writes a markdown table and a JSON file with every number, the machine and the command.

A benchmark, not a test: it asserts nothing about timings. It does fail loudly when a variant
does not answer 200 with a link token.
"""

# ruff: noqa: S603, S607

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.bench import build as builder
from infra.bench.report import MEMORY_MB, TARGETS, TRACES, analyse, markdown
from infra.bench.services import CLIENT_ID, SECRET, SECRET_ID, World
from infra.doubles.lambda_runtime import trace_header

ROOT = builder.ROOT
BENCH = builder.BENCH
CHILD = Path(__file__).resolve().parent / "child.py"
EVENT = ROOT / "infra/events/ok.json"
FLOOR_FILE = Path(__file__).resolve().parent / "floor.py"


@dataclass
class Runner:
    variant: builder.Variant
    build_dir: Path
    target: str  # module:function
    name: str
    extra_env: dict[str, str] = field(default_factory=dict)
    trace: str = "sampled"
    cold: list[dict[str, Any]] = field(default_factory=list)
    warm_first: dict[str, Any] = field(default_factory=dict)
    warm: list[float] = field(default_factory=list)
    warm_floor: list[float] = field(default_factory=list)  # the floor, in the same process
    warm_cpu: list[float] = field(default_factory=list)  # CPU time of each invocation
    warm_floor_cpu: list[float] = field(default_factory=list)
    floor_traced: bool = False
    ric: list[dict[str, Any]] = field(default_factory=list)  # cold starts under awslambdaric
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
        "PYTHONPATH": str(runner.build_dir),  # the only import root besides the standard library
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
        "BENCH_TRACE": runner.trace,
        "BENCH_PLAID_CLIENT_ID": CLIENT_ID,  # the stand-in's fake keys, for the floor
        "BENCH_PLAID_SECRET": SECRET,
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
    if runner.trace != "untraced":
        env["_X_AMZN_TRACE_ID"] = trace_header(sampled=runner.trace == "sampled")
    env.update(runner.extra_env)
    return env


# The environment is lambda_env's, built from nothing, so PYTHONPATH (the build dir) is the
# only PYTHON* variable. -P: no script dir on sys.path; -s: no user site; -S: no site-packages
# at all; -B: never write bytecode, so a run cannot warm the next (Lambda's /var/task is
# read-only too).
INTERPRETER_FLAGS = ["-P", "-s", "-S", "-B"]


def interpreter_args(python: str, runner: Runner, mode: str, fd: int) -> list[str]:
    return [python, *INTERPRETER_FLAGS, str(CHILD), str(runner.build_dir), runner.target,
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
    proc.err_path = log.with_suffix(".err")  # type: ignore[attr-defined]  # read by fail()
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


def run_cold(
    world: World,
    runners: list[Runner],
    n: int,
    python: str,
    logs: Path,
    ric_runners: list[Runner] | None = None,
) -> None:
    """n rounds; in each, one in-process cold start per runner, then one under awslambdaric
    per `ric_runners` entry, so drift on the machine hits every variant and both alike."""
    if ric_runners:
        from infra.bench.ric import prepare_runtime, ric_cold_start

        runtime = prepare_runtime(BENCH / "var-runtime")
        event = json.loads(EVENT.read_text())
    for round_no in range(n):
        for runner in runners:
            runner.cold.append(cold_start(world, runner, python, logs))
        for runner in ric_runners or []:
            env = lambda_env(world, runner, python)
            handler = runner.target.replace(":", ".")
            log = logs / f"{runner.name}-ric.log"
            runner.ric.append(
                ric_cold_start(
                    python, runner.build_dir, handler, env, event, runtime, runner.trace, log
                )
            )
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
                batch_result = reader.line()
            except EOFError:
                proc.wait()
                fail(runner, proc, "warm invocations")
            runner.warm.extend(batch_result["latencies_ms"])
            runner.warm_floor.extend(batch_result.get("floor_ms", []))
            runner.warm_cpu.extend(batch_result.get("cpu_ms", []))
            runner.warm_floor_cpu.extend(batch_result.get("floor_cpu_ms", []))
            runner.floor_traced = runner.floor_traced or bool(batch_result.get("floor_traced"))
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


def profile(name: str, rebuild: bool, trace: str = "sampled") -> int:
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
    runner = Runner(
        variant, path, variant.handler, name, {"BENCH_CPROFILE": str(stats_path)}, trace=trace
    )
    plain = Runner(variant, path, variant.handler, name, trace=trace)
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
        warm_env = {"BENCH_CPROFILE_WARM": str(warm_path)}
        warm = Runner(variant, path, variant.handler, name, warm_env, trace=trace)
        run_warm(world, [warm], 300, 300, python, prof)
    stats = pstats.Stats(str(stats_path))
    stats.sort_stats("cumulative").print_stats(45)
    pstats.Stats(str(warm_path)).sort_stats("tottime").print_stats(40)
    print(f"wrote {prof / (name + '.importtime')}, {stats_path} and {warm_path}")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the product against baselines.")
    parser.add_argument("--out", default=".bench/results.md", type=Path)
    parser.add_argument("--json", type=Path, help="default: --out with .json")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 cold, 30 warm")
    parser.add_argument("--cold", type=int, default=20, help="cold starts per variant")
    parser.add_argument("--warm", type=int, default=300, help="warm invocations per variant")
    parser.add_argument("--batch", type=int, default=50, help="warm interleaving batch")
    parser.add_argument("--variants", help="comma-separated subset (default: all)")
    parser.add_argument(
        "--no-ric",
        action="store_true",
        help="skip the cold starts under awslambdaric (the runtime interface client)",
    )
    parser.add_argument(
        "--cold-traces",
        default="sampled,unsampled",
        help="trace modes of the cold starts (comma-separated; warm runs all three)",
    )
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
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.profile:
        return profile(args.profile, args.rebuild, args.cold_traces.split(",")[0])
    if args.quick:
        args.cold, args.warm, args.batch = 2, 30, 15
    json_path = args.json or args.out.with_suffix(".json")
    started = time.perf_counter()
    load_start = load_average()
    command = " ".join([".venv/bin/python", "-m", "infra.bench", *sys.argv[1:]])

    python = builder.python313()
    variants = builder.variants()
    if args.variants:
        wanted = set(args.variants.split(","))
        variants = [v for v in variants if v.name in wanted]
    cold_traces = [t for t in args.cold_traces.split(",") if t in TRACES]
    cold_runners: list[Runner] = []
    warm_runners: list[Runner] = []
    in_process_floor = {"BENCH_FLOOR": str(FLOOR_FILE)}
    for variant in variants:
        progress(f"build {variant.name}")
        path = builder.build(variant, rebuild=args.rebuild, use_sam=args.use_sam_build)
        for trace in TRACES:
            name = f"{variant.name}-{trace}"
            if trace in cold_traces:
                cold_runners.append(Runner(variant, path, variant.handler, name, trace=trace))
            warm_runners.append(
                Runner(variant, path, variant.handler, name, in_process_floor, trace=trace)
            )
    floor_dir = builder.build(builder.FLOOR, rebuild=args.rebuild)
    floors = [
        Runner(builder.FLOOR, floor_dir, "floor:raw_post", "floor_raw"),
        Runner(builder.FLOOR, floor_dir, "floor:tight_post", "floor_tight"),
        Runner(builder.FLOOR, floor_dir, "floor:urllib3_post", "floor_urllib3"),
    ]
    logs = BENCH / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (BENCH / "home").mkdir(exist_ok=True)
    for old in logs.glob("*-cold.log"):
        old.unlink()

    with World(BENCH / "world") as world:
        ric_runners = [] if args.no_ric else [r for r in cold_runners if r.variant.built]
        run_cold(world, cold_runners, args.cold, python, logs, ric_runners)
        run_warm(world, warm_runners + floors, args.warm, args.batch, python, logs)

    py_version = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    report: dict[str, Any] = {
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
        "results": analyse(
            cold_runners,
            warm_runners,
            {
                "raw_session": floors[0].warm,
                "trust_env_false": floors[1].warm,
                "urllib3": floors[2].warm,
            },
            {(r.variant.name, r.trace): r.ric for r in cold_runners if r.ric},
        ),
        "raw": {
            "cold": {r.name: r.cold for r in cold_runners},
            "cold_awslambdaric": {r.name: r.ric for r in cold_runners if r.ric},
            "warm": {
                r.name: {"warm_ms": r.warm, "floor_ms": r.warm_floor, "warm_first": r.warm_first}
                for r in warm_runners + floors
            },
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
