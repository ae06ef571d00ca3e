"""Smoke test of the `sam build` output: import the handler exactly as Lambda will, invoke it.

Not a pytest module (pytest collects test_*.py only): `.ci/sam-checks.sh` runs it after
`sam build`. It catches the "passes tests, ImportError in Lambda" packaging faults: a runtime
dependency missing from handler/requirements.txt, a module left out of CodeUri, a Handler
that names the wrong function, an import that only works from the repository checkout.

How:
- `Handler`, `CodeUri`, `Timeout`, `MemorySize` and the environment variable names come from
  template.yaml; the built template must point the function at its build directory.
  LinkTokenFunction is the one invoked (infra/events are its requests); every other function
  is checked that far too (its build directory, its Handler's module, its infra/env.json
  entry), and its build output must be byte for byte LinkTokenFunction's (one recipe), the
  webhook receiver's plus exactly its extra distributions (infra/smoke/extra_dependencies.py).
- The handler runs in a fresh CPython 3.13 started with `-P -s -S -B` in an environment built
  from nothing: no site-packages, no user site, no current directory, a PYTHONPATH of the
  build directory and the runtime stand-in only, and no bytecode written into the build
  output (it is what gets deployed; the .pyc it ships are read, as on Lambda, and any module
  of the build output compiled from source instead is reported, and is a failure when the
  build ships bytecode). Its sys.path is the build directory, then a
  stand-in for the runtime directory (it holds only `snapshot_restore_py`, which the Lambda
  runtime provides), then the standard library - the order Lambda uses (/var/task before
  /var/runtime). After the run it reports any module loaded from anywhere else.
- Environment: infra/env.json (what `sam local invoke --env-vars` passes; it must name exactly
  the template's variables) plus what the Lambda runtime sets, fake AWS credentials, and two
  loopback stand-ins: Secrets Manager is a moto server (the secret is created through its HTTP
  API), Plaid is infra/doubles/plaid_standin.py (which is not Plaid). X-Ray segments go to a UDP
  socket on loopback, so they can be checked too.
- Every event in infra/events/expected.json is invoked with a fake Lambda context, its status
  compared; then a SnapStart restore is simulated (the runtime's after-restore hooks run) and
  ok.json is invoked again, which must read the secret afresh.
- Also checked: one summary log line per request carrying the request id, problem bodies
  consistent with their status, and the Plaid secret in no log line and no trace segment.

    .venv/bin/python -m infra.smoke --python /path/to/python3.13
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.gateway.cfn_template import LINK_TOKEN_FUNCTION, load_template
from infra.smoke.extra_dependencies import (
    extra_distributions,
    extra_top_level,
    installed_distributions,
    own_requirements,
)

ROOT = Path(__file__).resolve().parents[2]

EVENTS = ROOT / "infra" / "events"
REGION = "us-east-1"
# Loopback test credentials, recognisable in any output; never valid anywhere.
PLAID_CLIENT_ID = "smoke-client-id-0000"
PLAID_SECRET = "smoke-plaid-secret-must-never-be-logged-5f3a"  # noqa: S105 - a fake key
SUMMARY_MESSAGES = {"link_token_created", "link_token_failed"}


# --------------------------------------------------------------------------- template ------
def the_function(
    template: dict[str, Any], logical_id: str = LINK_TOKEN_FUNCTION
) -> tuple[str, dict[str, Any]]:
    """The function this tool invokes (the link-token one: infra/events are its requests):
    logical id and properties."""
    resource = template["Resources"].get(logical_id)
    if not resource or resource.get("Type") != "AWS::Serverless::Function":
        raise SystemExit(f"no AWS::Serverless::Function {logical_id} in the template")
    props: dict[str, Any] = resource.get("Properties", {})
    return logical_id, props


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every AWS::Serverless::Function of the template: logical id -> properties."""
    return {
        name: res.get("Properties", {})
        for name, res in template["Resources"].items()
        if res.get("Type") == "AWS::Serverless::Function"
    }


def resolve_number(value: Any, template: dict[str, Any]) -> int:
    """A literal, or a Ref to a parameter: its Default."""
    if isinstance(value, dict) and "Ref" in value:
        value = template["Parameters"][value["Ref"]]["Default"]
    return int(value)


# ------------------------------------------------------------------------- stand-ins -------
@contextmanager
def secrets_manager(secret_id: str, secret_string: str) -> Iterator[str]:
    """A moto server on loopback holding one secret; yields its endpoint URL."""
    import boto3

    from infra.doubles.moto_server import moto_server

    with moto_server() as endpoint:
        client = boto3.client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="smoke",
            aws_secret_access_key="smoke",  # noqa: S106 - moto takes any key
        )
        client.create_secret(Name=secret_id, SecretString=secret_string)
        yield endpoint


# ----------------------------------------------------------------------- the Lambda side ---
# Runs in the isolated interpreter. Kept free of anything but the standard library.
CHILD = r"""
import importlib, json, os, sys, time, traceback, uuid

plan = json.load(open(sys.argv[1]))
os.chdir(plan["task_root"])  # Lambda's working directory is /var/task

class Context:
    def __init__(self, timeout_s):
        self.function_name = plan["function_name"]
        self.function_version = "1"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{plan['region']}:123456789012:function:{self.function_name}:live"
        )
        self.memory_limit_in_mb = plan["memory_mb"]
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/smoke"
        self.log_stream_name = "smoke"
        self._deadline = time.monotonic() + timeout_s
    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

def marker(**fields):
    sys.stdout.write(json.dumps({"smoke_marker": fields}) + "\n")
    sys.stdout.flush()

results = {"invocations": [], "import_error": None}

# Every module of the build output that Python compiles from source, i.e. for which it found
# no usable .pyc (none shipped, or one for another Python version or with a bad header).
# -B stops Python writing bytecode, not reading it: shipped .pyc are used as on Lambda.
import importlib.machinery
compiled_from_source = []
_source_to_code = importlib.machinery.SourceFileLoader.source_to_code
def _counting_source_to_code(self, data, path, *args, **kwargs):
    if os.path.realpath(path).startswith(plan["task_root"]):
        compiled_from_source.append(os.path.relpath(path, plan["task_root"]))
    return _source_to_code(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = _counting_source_to_code

module_name, _, function_name = plan["handler"].rpartition(".")
started = time.perf_counter()
try:
    handler = getattr(importlib.import_module(module_name), function_name)
except BaseException:
    results["import_error"] = traceback.format_exc()
    json.dump(results, open(sys.argv[2], "w"))
    sys.exit(0)
results["import_ms"] = round((time.perf_counter() - started) * 1000, 1)

def invoke(name, phase):
    event = json.load(open(os.path.join(plan["events_dir"], name)))
    # The runtime sets the trace header per invocation, like Lambda with active tracing.
    os.environ["_X_AMZN_TRACE_ID"] = (
        f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
        f"Parent={uuid.uuid4().hex[:16]};Sampled=1"
    )
    marker(event=name, phase=phase)
    record = {"event": name, "phase": phase}
    try:
        response = handler(event, Context(plan["timeout_s"]))
        record["response"] = response
    except BaseException:
        record["exception"] = traceback.format_exc()
    sys.stdout.flush()
    results["invocations"].append(record)

for name in plan["events"]:
    invoke(name, "warm" if results["invocations"] else "cold")

# SnapStart: what the runtime does after restoring a snapshot, then one more request.
import snapshot_restore_py
hooks = snapshot_restore_py.get_after_restore()
results["after_restore_hooks"] = len(hooks)
for func, args, kwargs in hooks:
    func(*args, **kwargs)
invoke(plan["after_restore_event"], "after-restore")

roots = tuple(plan["allowed_roots"])
results["foreign_modules"] = sorted(
    f"{name}: {getattr(mod, '__file__', '')}"
    for name, mod in list(sys.modules.items())
    if getattr(mod, "__file__", None) and not os.path.realpath(mod.__file__).startswith(roots)
)
# Distinct files: sys.modules holds some modules under several names (six.moves, aliases).
results["modules_from_build"] = len({
    os.path.realpath(mod.__file__) for mod in list(sys.modules.values())
    if getattr(mod, "__file__", None)
    and os.path.realpath(mod.__file__).startswith(plan["task_root"])
})
# Includes optional modules whose import then failed (e.g. urllib3.contrib.socks).
results["compiled_from_source"] = sorted(set(compiled_from_source))
json.dump(results, open(sys.argv[2], "w"))
"""


def stdlib_prefixes(python: str) -> list[str]:
    """Where the target interpreter's standard library lives (its only allowed import root)."""
    code = (
        "import json, sysconfig; p = sysconfig.get_paths(); "
        "print(json.dumps([p['stdlib'], p['platstdlib']]))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter path
        [python, "-I", "-S", "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return sorted({os.path.realpath(p) for p in json.loads(out)})


# -------------------------------------------------------------------------- checks ---------
def split_logs(
    stdout: str,
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], list[dict[str, Any]]]]:
    """Init-phase JSON lines, and the JSON lines of each invocation (keyed by event, phase)."""
    init: list[dict[str, Any]] = []
    per: dict[tuple[str, str], list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = init
    for line in stdout.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            current.append({"_raw": line})
            continue
        if isinstance(doc, dict) and "smoke_marker" in doc:
            key = (doc["smoke_marker"]["event"], doc["smoke_marker"]["phase"])
            current = per.setdefault(key, [])
            continue
        current.append(doc if isinstance(doc, dict) else {"_raw": line})
    return init, per


def check_invocation(
    record: dict[str, Any], expected: int, lines: list[dict[str, Any]], event: dict[str, Any]
) -> list[str]:
    """Problems with one invocation (empty when it is right)."""
    name = f"{record['event']} ({record['phase']})"
    if "exception" in record:
        return [f"{name}: the handler raised:\n{record['exception']}"]
    response = record["response"]
    try:
        body = json.loads(response.get("body") or "")
    except ValueError:
        return [f"{name}: body is not JSON: {response.get('body')!r:.200}"]
    request_id = (event.get("requestContext") or {}).get("requestId")
    return [
        f"{name}: {fault}"
        for fault in (
            *_response_faults(response, body, expected, request_id),
            *_log_faults(lines, response["statusCode"], body, request_id),
        )
    ]


def _response_faults(
    response: dict[str, Any], body: dict[str, Any], expected: int, request_id: str | None
) -> list[str]:
    status = response.get("statusCode")
    content_type = {k.lower(): v for k, v in (response.get("headers") or {}).items()}.get(
        "content-type", ""
    )
    faults = []
    if status != expected:
        faults.append(f"status {status}, expected {expected}; body {response.get('body')!r:.300}")
    if status == 200:
        if not str(body.get("link_token", "")).startswith("link-sandbox-"):
            faults.append(f"no link_token in {body}")
        if not content_type.startswith("application/json"):
            faults.append(f"content-type {content_type!r}")
    else:
        if content_type != "application/problem+json":
            faults.append(f"content-type {content_type!r}, not application/problem+json")
        if body.get("status") != status or not body.get("code"):
            faults.append(f"problem body disagrees with status {status}: {body}")
    if request_id and body.get("request_id") != request_id:
        faults.append(f"body request_id {body.get('request_id')!r} != {request_id!r}")
    return faults


def _log_faults(
    lines: list[dict[str, Any]], status: int, body: dict[str, Any], request_id: str | None
) -> list[str]:
    summaries = [line for line in lines if line.get("message") in SUMMARY_MESSAGES]
    if len(summaries) != 1:
        return [f"{len(summaries)} summary log lines, expected exactly 1"]
    summary = summaries[0]
    faults = []
    if summary.get("status") != status:
        faults.append(f"log status {summary.get('status')} != response {status}")
    if request_id and summary.get("correlation_id") != request_id:
        faults.append(f"log correlation_id {summary.get('correlation_id')!r} != {request_id!r}")
    if status != 200 and summary.get("error_code") != body.get("code"):
        faults.append(f"log error_code {summary.get('error_code')} != {body.get('code')}")
    return faults


def emf_value(lines: list[dict[str, Any]], metric: str) -> float:
    """Sum of one metric over the EMF documents among these log lines."""
    total = 0.0
    for line in lines:
        if "_aws" in line and metric in line:
            value = line[metric]
            total += sum(value) if isinstance(value, list) else value
    return total


# --------------------------------------------------------------------------- main ----------
@dataclass
class Target:
    """What the template says about the function, and where its build output is."""

    logical_id: str
    props: dict[str, Any]
    template: dict[str, Any]
    build_dir: Path
    env: dict[str, str]
    expected: dict[str, int]

    @property
    def handler(self) -> str:
        return str(self.props["Handler"])


def _function_faults(
    logical_id: str,
    props: dict[str, Any],
    built: dict[str, Any],
    build_root: Path,
    env_json: dict[str, dict[str, str]],
) -> list[str]:
    """One function's build: the built template points at its directory, which holds its
    Handler's module, and infra/env.json names exactly its variables."""
    faults = []
    built_resource = built["Resources"].get(logical_id) or {}
    built_uri = built_resource.get("Properties", {}).get("CodeUri")
    if built_uri != logical_id:
        faults.append(f"built template: CodeUri {built_uri!r}, expected {logical_id!r}")
    handler = str(props["Handler"])
    module_file = (build_root / logical_id).resolve() / (
        handler.rpartition(".")[0].replace(".", "/") + ".py"
    )
    if not module_file.is_file():
        faults.append(f"Handler {handler!r}: {module_file} is not in the build output")
    env_names = set(props["Environment"]["Variables"])
    env_file = set(env_json.get(logical_id, {}))
    if env_file != env_names:
        faults.append(
            f"infra/env.json and template.yaml name different variables for {logical_id}: "
            f"only in env.json {sorted(env_file - env_names)}, "
            f"only in template {sorted(env_names - env_file)}"
        )
    return faults


def build_digest(build_dir: Path) -> dict[str, str]:
    """Every file of a build output: relative path -> sha256 of its bytes; for a .pyc, of its
    16-byte header (magic number, flags, hash of its source). The rest of a .pyc holds the
    path it was compiled at (co_filename, which the import system rewrites to the module's
    path at run time), so it differs between build directories of the same code."""

    def digest(path: Path) -> str:
        data = path.read_bytes()
        return hashlib.sha256(data[:16] if path.suffix == ".pyc" else data).hexdigest()

    return {
        str(path.relative_to(build_dir)): digest(path)
        for path in sorted(build_dir.rglob("*"))
        if path.is_file()
    }


def static_faults(template_path: Path, build_root: Path) -> tuple[Target, list[str]]:
    """Read the template, the built template, env.json and the event list; check they agree.

    Every function is checked statically (its build directory, its Handler's module, its
    variables in infra/env.json), and every build output must be byte for byte the invoked
    function's: handler/Makefile builds them all with one recipe, so invoking one exercises
    the code and dependencies of all. A function the Makefile gives its own requirements file
    (the webhook receiver's) may hold, beyond those bytes, exactly its extra distributions.
    """
    template = load_template(template_path)
    logical_id, props = the_function(template)
    build_dir = (build_root / logical_id).resolve()
    built = load_template(build_root / "template.yaml")
    env_json: dict[str, dict[str, str]] = json.loads((ROOT / "infra" / "env.json").read_text())
    expected = json.loads((EVENTS / "expected.json").read_text())
    target = Target(logical_id, props, template, build_dir, env_json[logical_id], expected)

    faults = []
    everything = functions(template)
    for name, function_props in everything.items():
        faults += _function_faults(name, function_props, built, build_root, env_json)
    if set(env_json) != set(everything):
        faults.append(
            f"infra/env.json names {sorted(env_json)}, the template's functions are "
            f"{sorted(everything)}"
        )
    if build_dir.is_dir():
        reference = build_digest(build_dir)
        own = own_requirements()
        for name in everything.keys() - {logical_id}:
            other = (build_root / name).resolve()
            if not other.is_dir():
                continue  # reported above: its Handler is not in the build output
            digest = build_digest(other)
            extras = extra_distributions(own[name]) if name in own else set()
            allowed = extra_top_level(other, extras)
            missing = sorted(extras - installed_distributions(other))
            if missing:
                faults.append(f"{name}'s build output lacks {', '.join(missing)}")
            differ = sorted(
                p
                for p in reference.keys() | digest.keys()
                if reference.get(p) != digest.get(p)
                and not (p not in reference and p.split("/", 1)[0] in allowed)
            )
            if differ:
                faults.append(
                    f"{name}'s build output differs from {logical_id}'s in {len(differ)} "
                    f"file(s), e.g. {', '.join(differ[:3])} (one recipe builds both)"
                )
    on_disk = {p.name for p in EVENTS.glob("*.json")} - {"expected.json"}
    if set(expected) != on_disk:
        faults.append(
            f"infra/events: no expectation for {sorted(on_disk - set(expected))}, "
            f"no event for {sorted(set(expected) - on_disk)}"
        )
    return target, faults


@dataclass
class Run:
    """What the isolated interpreter did."""

    proc: subprocess.CompletedProcess[str]
    results: dict[str, Any]
    datagrams: list[str]
    seconds: float
    plaid_headers: list[dict[str, str]]  # the headers of every request the stand-in received


def lambda_environment(target: Target, runtime_dir: Path, home: Path) -> dict[str, str]:
    """env.json plus what the Lambda runtime sets (the part libraries read) and fake keys."""
    memory_mb = resolve_number(target.props.get("MemorySize", 128), target.template)
    return {
        **target.env,
        "AWS_LAMBDA_FUNCTION_NAME": f"smoke-{target.logical_id}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{target.props['Runtime']}",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "LAMBDA_TASK_ROOT": str(target.build_dir),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "_HANDLER": target.handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "HOME": str(home),  # no ~/.aws of the operator leaks in
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "ASIASMOKETESTFAKE000",
        "AWS_SECRET_ACCESS_KEY": "smoke-fake-secret-access-key",
        "AWS_SESSION_TOKEN": "smoke-fake-session-token",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }


def run_isolated(target: Target, python: str) -> Run:
    """Start the stand-ins, then the handler in a clean CPython; collect what it did."""
    import snapshot_restore_py  # the module the Lambda runtime provides

    from infra.doubles.loopback import XRaySink
    from infra.doubles.plaid_standin import PlaidStandIn

    stdlib = stdlib_prefixes(python)
    secret_doc = json.dumps({"client_id": PLAID_CLIENT_ID, "secret": PLAID_SECRET})
    with (
        tempfile.TemporaryDirectory(prefix="smoke-") as tmp,
        secrets_manager(target.env["PLAID_SECRET_ID"], secret_doc) as sm_endpoint,
        PlaidStandIn(client_id=PLAID_CLIENT_ID, secret=PLAID_SECRET) as plaid,
        XRaySink() as xray,
    ):
        tmpdir = Path(tmp).resolve()
        runtime_dir = tmpdir / "var-runtime"  # stands in for /var/runtime
        runtime_dir.mkdir()
        shutil.copy(snapshot_restore_py.__file__, runtime_dir)
        (tmpdir / "home").mkdir()
        plan = {
            "task_root": str(target.build_dir),
            "runtime_dir": str(runtime_dir),
            "stdlib_prefixes": stdlib,
            "allowed_roots": [str(target.build_dir), str(runtime_dir), *stdlib],
            "handler": target.handler,
            "function_name": f"smoke-{target.logical_id}",
            "region": REGION,
            "memory_mb": resolve_number(target.props.get("MemorySize", 128), target.template),
            "timeout_s": resolve_number(target.props["Timeout"], target.template),
            "events_dir": str(EVENTS),
            "events": list(target.expected),
            "after_restore_event": "ok.json",
        }
        (tmpdir / "plan.json").write_text(json.dumps(plan))
        env = {
            **lambda_environment(target, runtime_dir, tmpdir / "home"),
            "AWS_XRAY_DAEMON_ADDRESS": xray.address,
            # Loopback stand-ins. PLAID_BASE_URL is a test-only override, never in the template.
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": sm_endpoint,
            "PLAID_BASE_URL": plaid.base_url,
            # The import path Lambda gives the handler: the task root before the runtime
            # directory, then the standard library (-S: no site-packages).
            "PYTHONPATH": os.pathsep.join((str(target.build_dir), str(runtime_dir))),
        }
        results_path = tmpdir / "results.json"
        started = time.perf_counter()
        proc = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
            # Isolated as -I is, but reading PYTHONPATH (the environment is built above, from
            # nothing): -P no current directory, -s no user site, -S no site-packages; -B: write
            # no __pycache__ into the build output, which is what gets deployed.
            [
                python,
                "-P",
                "-s",
                "-S",
                "-B",
                "-c",
                CHILD,
                str(tmpdir / "plan.json"),
                str(results_path),
            ],
            env=env,
            cwd=target.build_dir,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        seconds = time.perf_counter() - started
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
    datagrams = [d.decode("utf-8", "replace") for d in xray.datagrams]
    plaid_headers = [request["headers"] for request in plaid.requests]
    return Run(proc, results, datagrams, seconds, plaid_headers)


def shipped_bytecode(build_dir: Path) -> int:
    """How many .pyc files the build output ships."""
    return sum(1 for _ in build_dir.rglob("__pycache__/*.pyc"))


def run_faults(target: Target, run: Run) -> list[str]:
    """Check every invocation, the SnapStart restore, imports, traces and secret hygiene."""
    init_lines, per_invocation = split_logs(run.proc.stdout)
    faults: list[str] = []
    for record in run.results["invocations"]:
        name = record["event"]
        event = json.loads((EVENTS / name).read_text())
        lines = per_invocation.get((name, record["phase"]), [])
        problems = check_invocation(record, target.expected[name], lines, event)
        faults += problems
        got = record.get("response", {}).get("statusCode", "raised")
        mark = "ok  " if not problems else "FAIL"
        print(
            f"{mark} {name:<26} {record['phase']:<13} expected {target.expected[name]}  got {got}"
        )

    restored = per_invocation.get(("ok.json", "after-restore"), [])
    if run.results.get("after_restore_hooks", 0) < 1:
        faults.append("the handler registered no SnapStart after-restore hook")
    elif emf_value(restored, "SecretsFetched") < 1:
        faults.append("after a SnapStart restore the secret was not read again")
    if not any("_aws" in line for lines in per_invocation.values() for line in lines):
        faults.append("no EMF metrics in the function's output")
    if run.results["foreign_modules"]:
        faults.append(
            "modules imported from outside the build output and the standard library:\n  "
            + "\n  ".join(run.results["foreign_modules"])
        )
    if not run.datagrams:
        faults.append("no X-Ray segment reached the daemon address (Tracing: Active)")
    elif not any("## plaid /link/token/create" in datagram for datagram in run.datagrams):
        faults.append("no X-Ray subsegment for the Plaid call")
    if any(key.lower() == "x-amzn-trace-id" for h in run.plaid_headers for key in h):
        faults.append("our X-Ray trace header (X-Amzn-Trace-Id) was sent to Plaid")
    from_source = run.results["compiled_from_source"]
    if shipped_bytecode(target.build_dir) and from_source:
        faults.append(
            f"{len(from_source)} module(s) of the build output compiled from source although "
            f"it ships .pyc (missing, stale or for another Python): {', '.join(from_source[:5])}"
        )
    outputs = {
        "stdout": run.proc.stdout,
        "stderr": run.proc.stderr,
        "X-Ray": "\n".join(run.datagrams),
    }
    leaks = [where for where, text in outputs.items() if PLAID_SECRET in text]
    if leaks:
        faults.append(f"the Plaid secret appears in: {', '.join(leaks)}")

    stray = [line["_raw"] for line in init_lines if "_raw" in line]
    stray += [line["_raw"] for lines in per_invocation.values() for line in lines if "_raw" in line]
    if stray:
        print(f"note: {len(stray)} non-JSON output line(s), first: {stray[0][:200]!r}")
    if run.proc.stderr.strip():
        print(f"note: stderr of the function process:\n{run.proc.stderr.strip()[-1500:]}")
    return faults


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument(
        "--python", default=getattr(sys, "_base_executable", sys.executable), help="a CPython 3.13"
    )
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--build-root", type=Path, default=ROOT / ".aws-sam" / "build")
    args = parser.parse_args()

    target, faults = static_faults(args.template, args.build_root)
    props = target.props
    print(f"template: {target.logical_id} Handler={target.handler} CodeUri={props['CodeUri']}")
    print(f"build:    {target.build_dir}")
    if faults:
        print("\n".join(f"FAIL {fault}" for fault in faults))
        return 1

    run = run_isolated(target, shutil.which(args.python) or args.python)
    if run.proc.returncode != 0 or not run.results or run.results.get("import_error"):
        print(run.proc.stdout[-3000:], run.proc.stderr[-3000:], sep="\n")
        print(f"FAIL importing {target.handler} from the build output (exit {run.proc.returncode})")
        print(run.results.get("import_error") or "")
        return 1

    faults = run_faults(target, run)
    results = run.results
    pyc = shipped_bytecode(target.build_dir)
    bytecode = f"{pyc} .pyc shipped" if pyc else "no .pyc shipped"
    print(
        f"handler import (cold, this machine, {bytecode}): {results['import_ms']} ms; "
        f"{results['modules_from_build']} modules loaded from the build output, "
        f"{len(results['compiled_from_source'])} .py compiled from source at import; "
        f"{len(results['invocations'])} invocations in {run.seconds:.1f} s; "
        f"{len(run.datagrams)} X-Ray datagrams; "
        f"after-restore hooks: {results['after_restore_hooks']}"
    )
    if faults:
        print("\n".join(f"FAIL {fault}" for fault in faults))
        print(f"smoke: {len(results['invocations']) - len(faults)} passed, {len(faults)} failed")
        return 1
    print(f"smoke: {len(results['invocations'])} passed, 0 failed")
    return 0
