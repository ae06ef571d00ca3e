import time  # the clock starts at this file's first line, before anything else

T0 = time.perf_counter()

"""One Lambda container, played by a fresh `python3.13 -P -s -S -B` process (run by run.py).

argv: BUILD_DIR MODULE:FUNCTION EVENT_FILE MODE RESULT_FD
- MODE cold: import the handler from BUILD_DIR (the only import root besides the standard
  library: PYTHONPATH, set by run.py), invoke it once
  with the event, check the 200, write one JSON line of timings to RESULT_FD, then `os._exit(0)`
  (interpreter shutdown is not part of a cold start: Lambda never pays it).
- MODE warm: the same first invocation, then read commands from stdin: `N` runs N more
  invocations and answers with their latencies (ms); `quit` exits. With BENCH_FLOOR (the path
  of floor.py), each invocation is followed by one floor POST timed in this same process, so
  the floor and the variant share the process, its heap and the moment's machine load.

Per invocation, like the Lambda runtime: a fresh `_X_AMZN_TRACE_ID` and API Gateway request id,
both set outside the timed region. BENCH_TRACE says what the header carries: `sampled`
(`Sampled=1`), `unsampled` (`Sampled=0`) or `untraced` (no header: a direct invoke, or tracing
in passthrough). The timed region is the handler call only.
"""

import os  # noqa: E402
import sys  # noqa: E402

BUILD, TARGET, EVENT_FILE, MODE, RESULT_FD = sys.argv[1:6]

# What the Lambda runtime (awslambdaric's bootstrap) has imported and set up before it imports
# the handler: these modules, an unbuffered stdout (one write per log line), a root log handler.
import importlib  # noqa: E402, F401
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import secrets  # noqa: E402
import traceback  # noqa: E402, F401


class Unbuffered:
    def __init__(self, stream: object) -> None:
        self.stream = stream

    def __getattr__(self, name: str) -> object:
        return getattr(self.stream, name)

    def write(self, text: str) -> int:
        written: int = self.stream.write(text)  # type: ignore[attr-defined]
        self.stream.flush()  # type: ignore[attr-defined]
        return written


sys.stdout = Unbuffered(sys.stdout)
sys.stderr = Unbuffered(sys.stderr)
_root = logging.StreamHandler(sys.stdout)
_root.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(message)s"))
logging.getLogger().addHandler(_root)


class Context:
    """The Lambda context object (what Powertools and the handlers read)."""

    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")
    function_version = "$LATEST"
    memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"))
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    log_group_name = f"/aws/lambda/{function_name}"
    log_stream_name = "2026/11/25/[$LATEST]bench"

    def __init__(self) -> None:
        self.aws_request_id = secrets.token_hex(16)
        self._deadline = time.monotonic() + 20.0  # the template's Timeout

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


TRACE = os.environ.get("BENCH_TRACE", "sampled")
SAMPLED_FLAG = {"sampled": "1", "unsampled": "0"}


def new_invocation(template: str) -> tuple[dict[str, object], Context]:
    if TRACE in SAMPLED_FLAG:
        os.environ["_X_AMZN_TRACE_ID"] = (
            f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
            f"Parent={secrets.token_hex(8)};Sampled={SAMPLED_FLAG[TRACE]}"
        )
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    event = json.loads(template)
    event["requestContext"]["requestId"] = secrets.token_urlsafe(12)
    return event, Context()


def peak_rss_kib() -> int:
    """This process's peak RSS since exec (VmHWM). `ru_maxrss` would not do: Linux carries the
    forking parent's peak over into the child's."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def check(response: object) -> None:
    ok = isinstance(response, dict) and response.get("statusCode") == 200
    if ok:
        body = json.loads(response["body"])  # type: ignore[index]
        ok = str(body.get("link_token", "")).startswith("link-sandbox-")
    if not ok:
        sys.stderr.write(f"bench: unexpected response {response!r}\n")
        sys.stderr.flush()
        os._exit(3)


def load_floor() -> object | None:
    """floor.py's `raw_post`, imported from the variant's own build (its `requests`), or None
    when BENCH_FLOOR is unset or the build has no `requests`."""
    path = os.environ.get("BENCH_FLOOR")
    if not path:
        return None
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_floor", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError:
        return None
    raw_post: object = module.raw_post
    return raw_post


def floor_traced() -> bool:
    """Whether a tracer has patched what the floor calls (baseline (3)'s Tracer patches
    `requests.Session.request` and `http.client`): then the floor carries tracing cost too."""
    import http.client
    import types

    requests = sys.modules.get("requests")
    patched = [
        (getattr(requests, "Session", None), "request"),
        (http.client.HTTPConnection, "_send_request"),
    ]
    return any(
        cls is not None and not isinstance(vars(cls).get(name), types.FunctionType)
        for cls, name in patched
    )


def main() -> None:
    profile_to = os.environ.get("BENCH_CPROFILE")
    if profile_to:  # run.py --profile: import + first invocation under cProfile
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            run()
        finally:
            profiler.disable()
            profiler.dump_stats(profile_to)
    else:
        run()


def warm_batch(handler: object, floor: object, template: str, count: int) -> dict[str, object]:
    """`count` invocations, each followed by one floor POST when there is a floor: wall and
    CPU time of each (CPU time of this process: what other load on the machine leaves out)."""
    clock, cpu_clock = time.perf_counter, time.process_time
    wall, cpu, floor_wall, floor_cpu = [], [], [], []
    for _ in range(count):
        event, context = new_invocation(template)
        started, cpu_started = clock(), cpu_clock()
        response = handler(event, context)  # type: ignore[operator]
        wall.append((clock() - started) * 1000)
        cpu.append((cpu_clock() - cpu_started) * 1000)
        check(response)
        if floor is not None:  # alternating: invocation, floor POST, invocation, ...
            started, cpu_started = clock(), cpu_clock()
            answer = floor(event, context)  # type: ignore[operator]
            floor_wall.append((clock() - started) * 1000)
            floor_cpu.append((cpu_clock() - cpu_started) * 1000)
            check(answer)
    return {
        "latencies_ms": wall,
        "cpu_ms": cpu,
        "floor_ms": floor_wall,
        "floor_cpu_ms": floor_cpu,
        "floor_traced": floor is not None and floor_traced(),
    }


def run() -> None:
    out = int(RESULT_FD)
    with open(EVENT_FILE) as file:
        template = file.read()
    t_import = time.perf_counter()
    module_name, function_name = TARGET.split(":")
    module = __import__(module_name, fromlist=[function_name])
    handler = getattr(module, function_name)
    t_init = time.perf_counter()
    event, context = new_invocation(template)
    t_call = time.perf_counter()
    response = handler(event, context)
    t_done = time.perf_counter()
    cpu_done = time.process_time()  # CPU since exec: robust to other load on the machine
    check(response)
    first = {
        "first_response_ms": (t_done - T0) * 1000,
        "first_response_cpu_ms": cpu_done * 1000,
        "init_ms": (t_init - T0) * 1000,  # Lambda's Init Duration (plus runtime bootstrap)
        "import_ms": (t_init - t_import) * 1000,
        "first_invoke_ms": (t_done - t_call) * 1000,  # Lambda's first Duration
        "maxrss_kib": peak_rss_kib(),
        "modules": len(sys.modules),
    }
    os.write(out, (json.dumps(first) + "\n").encode())
    if os.environ.get("BENCH_CPROFILE"):
        return
    if MODE == "cold":
        sys.stdout.flush()
        os._exit(0)
    warm_profile = os.environ.get("BENCH_CPROFILE_WARM")
    if warm_profile:  # run.py --profile: the warm invocations under cProfile
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    floor = load_floor()  # after the first invocation: never part of the cold start
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        result = warm_batch(handler, floor, template, int(command))
        sys.stdout.flush()
        os.write(out, (json.dumps(result) + "\n").encode())
    if warm_profile:
        profiler.disable()
        profiler.dump_stats(warm_profile)
    os.write(out, (json.dumps({"maxrss_kib": peak_rss_kib()}) + "\n").encode())
    sys.stdout.flush()
    os._exit(0)


main()
