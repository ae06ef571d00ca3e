"""The function under the runtime Lambda really uses: AWS's runtime interface client.

Not a pytest module: `.ci/sam-checks.sh` runs it on the `sam build` output;
`tests/e2e/test_runtime_interface.py` runs the same checks on handler/ as it is in the checkout.

Lambda does not call the handler directly. Its runtime (`awslambdaric` implements it) imports
`app.lambda_handler`, long-polls the Runtime API for events and posts results back; it also
owns stdout, the log format (`AWS_LAMBDA_LOG_FORMAT=JSON`) and the root logger. Here the
function runs exactly so: `python3.13 -S -B -m awslambdaric app.lambda_handler` in the task
root, against infra/conformance/runtime_api.py (a Runtime API emulator), with Secrets Manager
as a moto
server and Plaid as the loopback stand-in (which is not Plaid). The runtime's own files are
copied from the dev environment into a directory standing in for /var/runtime; the build's
aarch64 extensions are skipped for their pure-Python fallbacks, as in infra/smoke/smoke_build.py.

Checked (the events and the configuration error at the template's LogLevel INFO and ERROR):
- every infra/events event gets its expected status through `/response`;
- every line the process writes (stdout and stderr) is one JSON object, none repeated (the
  runtime's own root handler included), one summary line per request when its level is shown,
  carrying the Runtime API's request id; EMF documents are whole (every metric they declare
  is present) and every invocation emits one;
- a configuration error is kept by the handler: init succeeds (nothing on `/init/error`) and
  every request is answered `500 MISCONFIGURED` through `/response`, no crash loop;
- an unhandled exception reaches the Runtime API's `/error` endpoint with its type, logged
  as one JSON line, and the runtime keeps serving;
- a handler that cannot be loaded is reported on `/init/error`;
- the Plaid secret appears nowhere in the output.

    .venv/bin/python -m infra.conformance --python python3.13 --build-root .aws-sam/build
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from infra.conformance.runtime_api import Result, RuntimeApi
from infra.gateway.cfn_template import load_template
from infra.smoke.smoke_build import (
    EVENTS,
    PLAID_CLIENT_ID,
    PLAID_SECRET,
    ROOT,
    SUMMARY_MESSAGES,
    Target,
    lambda_environment,
    secrets_manager,
    static_faults,
    the_function,
)

RUNTIME_FILES = ("awslambdaric", "runtime_client", "simplejson", "snapshot_restore_py")
# A test-only handler: it breaks one of app's invariants so the real, decorated handler raises.
CRASH_MODULE = """import app
from linktoken import endpoint

def _broken_respond(*args, **kwargs):
    raise RuntimeError("forced by the conformance test")

endpoint.respond = _broken_respond  # test-only: the last step of every answer now fails
lambda_handler = app.lambda_handler
"""


def runtime_dir(directory: Path) -> Path:
    """A stand-in for /var/runtime: awslambdaric and what it imports, nothing else."""
    directory.mkdir()
    for name in RUNTIME_FILES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, f"{name} is not installed (dev dependency)"
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(
                origin.parent, directory / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(origin, directory)
    return directory


def source_target() -> Target:
    """The function as it is in the checkout: handler/ for a task root."""
    template = load_template()
    logical_id, props = the_function(template)
    env = json.loads((ROOT / "infra" / "env.json").read_text())[logical_id]
    expected = json.loads((EVENTS / "expected.json").read_text())
    return Target(logical_id, props, template, ROOT / "handler", env, expected)


@dataclass
class Function:
    """A running function process: its Runtime API and what it has written so far."""

    api: RuntimeApi
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    offsets: list[int] = field(default_factory=list)

    def output(self) -> str:
        return self.stdout.read_text(errors="replace")

    def invoke(self, event: Any) -> tuple[str, Result | None, list[str]]:
        """One invocation: its request id, what the runtime posted, the lines it wrote.

        The runtime writes (unbuffered) before it posts the result, and stdout is a file, so
        everything after the previous offset belongs to this invocation.
        """
        start = self.stdout.stat().st_size
        request_id = self.api.invoke(event)
        result = self.api.result(request_id)
        text = self.stdout.read_bytes()[start:].decode(errors="replace")
        return request_id, result, text.splitlines()


@contextmanager
def running_function(
    target: Target,
    python: str,
    secrets_endpoint: str,
    *,
    handler: str | None = None,
    log_level: str = "INFO",
    env: dict[str, str] | None = None,
    extra_paths: tuple[Path, ...] = (),
) -> Iterator[Function]:
    """The function under awslambdaric, with Secrets Manager and Plaid on loopback."""
    from infra.doubles.loopback import XRaySink
    from infra.doubles.plaid_standin import PlaidStandIn

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ric-"))).resolve()
        plaid = stack.enter_context(PlaidStandIn(client_id=PLAID_CLIENT_ID, secret=PLAID_SECRET))
        xray = stack.enter_context(XRaySink())
        api = stack.enter_context(RuntimeApi())
        runtime = runtime_dir(tmp / "var-runtime")
        (tmp / "home").mkdir()
        (tmp / "extra").mkdir()
        (tmp / "extra" / "conformance_crash.py").write_text(CRASH_MODULE)
        handler = handler or target.handler
        path = [target.build_dir, runtime, *extra_paths, tmp / "extra"]
        full_env = {
            **lambda_environment(target, runtime, tmp / "home"),
            "_HANDLER": handler,
            "AWS_LAMBDA_RUNTIME_API": api.address,
            # `log_level` is the template's LogLevel: Lambda's filter gets the template's mapping
            # of it (never above INFO, so EMF survives), the service's logger the level itself.
            "AWS_LAMBDA_LOG_LEVEL": target.template["Mappings"]["LambdaLogLevel"][log_level][
                "Level"
            ],
            "POWERTOOLS_LOG_LEVEL": log_level,
            "AWS_XRAY_DAEMON_ADDRESS": xray.address,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets_endpoint,
            "PLAID_BASE_URL": plaid.base_url,
            "PYTHONPATH": os.pathsep.join(map(str, path)),
            "PYTHONNOUSERSITE": "1",
            **(env or {}),
        }
        stdout, stderr = tmp / "stdout", tmp / "stderr"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
                # -S: no site-packages (only the task root and the runtime directory);
                # -B: no bytecode written into the build output, which is what ships.
                [python, "-S", "-B", "-m", "awslambdaric", handler],
                cwd=target.build_dir,
                env=full_env,
                stdout=out,
                stderr=err,
            )
        try:
            yield Function(api, process, stdout, stderr)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# ------------------------------------------------------------------------ checks ----------
def line_faults(lines: list[str], where: str, *, one_invocation: bool = True) -> list[str]:
    """Every line one JSON object; no line twice; EMF documents whole.

    Over several invocations (`one_invocation=False`) an EMF document may repeat: it names no
    request and its timestamp is in milliseconds, so two warm invocations that fail alike within
    one millisecond write the same bytes. A log line names its request, so it never may.
    """
    faults = []
    seen: set[str] = set()
    for line in lines:
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            faults.append(f"{where}: not a JSON line: {line[:160]!r}")
            continue
        emf = isinstance(doc, dict) and "_aws" in doc
        if not isinstance(doc, dict):
            faults.append(f"{where}: a JSON line that is not an object: {line[:160]!r}")
        elif emf:
            faults += [f"{where}: {fault}" for fault in emf_faults(doc)]
        if line in seen and (one_invocation or not emf):
            faults.append(f"{where}: line written twice: {line[:160]!r}")
        seen.add(line)
    return faults


def emf_faults(doc: dict[str, Any]) -> list[str]:
    """An EMF document CloudWatch would accept: every declared metric and dimension present."""
    meta = doc["_aws"]
    if not isinstance(meta.get("Timestamp"), int) or not meta.get("CloudWatchMetrics"):
        return [f"EMF document without Timestamp or CloudWatchMetrics: {doc}"]
    faults = []
    for directive in meta["CloudWatchMetrics"]:
        for metric in directive.get("Metrics", []):
            if metric["Name"] not in doc:
                faults.append(f"EMF declares {metric['Name']} but has no value for it")
        for dimensions in directive.get("Dimensions", []):
            faults += [f"EMF dimension {d} has no value" for d in dimensions if d not in doc]
    return faults


def summaries(lines: list[str]) -> list[dict[str, Any]]:
    docs = []
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("message") in SUMMARY_MESSAGES:
            docs.append(doc)
    return docs


def shown(status: int, log_level: str) -> bool:
    """Whether the summary line of a request with this status passes the log level."""
    level = "INFO" if status < 400 else ("WARNING" if status < 500 else "ERROR")
    order = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    return order.index(level) >= order.index(log_level)


def check_events(function: Function, target: Target, log_level: str) -> list[str]:
    """Every event of infra/events through the Runtime API, with its expected status."""
    faults = []
    for name, expected in target.expected.items():
        event = json.loads((EVENTS / name).read_text())
        request_id, result, lines = function.invoke(event)
        if result is None or result.kind != "response":
            faults.append(f"{name}: the runtime posted {result}")
            continue
        status = result.body.get("statusCode")
        if status != expected:
            faults.append(f"{name}: status {status}, expected {expected}")
        found = summaries(lines)
        if len(found) != int(shown(expected, log_level)):
            faults.append(f"{name}: {len(found)} summary lines at {log_level}")
        for summary in found:
            if summary.get("function_request_id") != request_id:
                faults.append(f"{name}: summary line without the runtime's request id")
        if not any('"_aws"' in line for line in lines):
            faults.append(f"{name}: no EMF document")
        faults += line_faults(lines, name)
    return faults


def check_common(function: Function) -> list[str]:
    """The whole output: JSON lines only (stdout and stderr), no secret anywhere."""
    out, err = function.output(), function.stderr.read_text(errors="replace")
    faults = line_faults(out.splitlines(), "stdout", one_invocation=False)
    faults += line_faults(err.splitlines(), "stderr", one_invocation=False)
    if PLAID_SECRET in out or PLAID_SECRET in err:
        faults.append("the Plaid secret is in the function's output")
    return faults


@dataclass
class Report:
    """Checks run and faults found, by scenario."""

    lines: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)

    def add(self, scenario: str, faults: list[str], detail: str) -> None:
        self.lines.append(f"{'ok  ' if not faults else 'FAIL'} {scenario}: {detail}")
        self.faults += [f"{scenario}: {fault}" for fault in faults]


def conformance(target: Target, python: str, extra_paths: tuple[Path, ...] = ()) -> Report:
    """Every scenario of the module docstring; the report says what was checked."""
    # One moto server for every run: moto keeps its state per process, not per server.
    secret_doc = json.dumps({"client_id": PLAID_CLIENT_ID, "secret": PLAID_SECRET})
    with secrets_manager(target.env["PLAID_SECRET_ID"], secret_doc) as endpoint:
        return _scenarios(target, python, endpoint, extra_paths)


def _scenarios(target: Target, python: str, endpoint: str, extra_paths: tuple[Path, ...]) -> Report:
    report = Report()
    start = partial(running_function, target, python, endpoint, extra_paths=extra_paths)
    for level in ("INFO", "ERROR"):
        with start(log_level=level) as fn:
            faults = check_events(fn, target, level) + check_common(fn)
            lines = len(fn.output().splitlines())
        detail = f"{len(target.expected)} events, {lines} JSON lines"
        report.add(f"events at LogLevel={level}", faults, detail)
    for level in ("INFO", "ERROR"):  # its lines are errors: shown at both levels
        with start(env={"PLAID_CLIENT_NAME": ""}, log_level=level) as fn:
            faults = check_misconfigured(fn) + check_common(fn)
        detail = "init succeeds, 2 requests answered 500 MISCONFIGURED"
        report.add(f"configuration error at {level}", faults, detail)
    with start(handler="conformance_crash.lambda_handler") as fn:
        faults = check_unhandled(fn) + check_common(fn)
    report.add(
        "unhandled exception", faults, "2 invocations reported on /error, runtime kept serving"
    )
    with start(handler="app.no_such_handler") as fn:
        result = fn.api.result("init")
        faults = check_common(fn)
    if result is None or result.body.get("errorType") != "Runtime.HandlerNotFound":
        faults.append(f"expected Runtime.HandlerNotFound on /init/error, got {result}")
    report.add("handler not found", faults, "reported on /init/error")
    return report


def check_misconfigured(fn: Function) -> list[str]:
    """A configuration error: init succeeds, every request is a 500 MISCONFIGURED answer."""
    faults = []
    ok_event = json.loads((EVENTS / "ok.json").read_text())
    for _ in range(2):
        _, result, lines = fn.invoke(ok_event)
        if result is None or result.kind != "response":
            faults.append(f"expected an answer on /response, got {result}")
            continue
        body = json.loads(result.body["body"])
        if (result.body["statusCode"], body.get("code")) != (500, "MISCONFIGURED"):
            faults.append(f"expected 500 MISCONFIGURED, got {result.body}")
        if len(summaries(lines)) != 1:
            faults.append(f"{len(summaries(lines))} summary lines, expected 1")
    if fn.api.result("init", timeout=0) is not None:
        faults.append("the configuration error was reported as an init failure")
    if '"configuration_invalid"' not in fn.output():
        faults.append("no configuration_invalid line at init")
    if fn.process.poll() is not None:
        faults.append("the function process exited")
    return faults


def check_unhandled(fn: Function) -> list[str]:
    """An exception out of the handler: on /error with its type, one JSON line, still serving."""
    faults = []
    ok_event = json.loads((EVENTS / "ok.json").read_text())
    for _ in range(2):
        _, result, lines = fn.invoke(ok_event)
        if result is None or result.kind != "error":
            faults.append(f"expected the exception on /error, got {result}")
            continue
        if result.body.get("errorType") != "RuntimeError":
            faults.append(f"errorType {result.body.get('errorType')!r}")
        # The X-Ray cause the runtime hands Lambda for the trace (one header, JSON).
        headers = {k.lower(): v for k, v in result.headers.items()}
        cause = json.loads(headers.get("lambda-runtime-function-xray-error-cause", "{}"))
        if [e.get("type") for e in cause.get("exceptions", [])] != ["RuntimeError"]:
            faults.append(f"no X-Ray error cause naming the exception: {headers}")
        logged = [line for line in lines if '"errorType": "RuntimeError"' in line]
        if len(logged) != 1:
            faults.append(f"{len(logged)} runtime error lines, expected 1")
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
    if faults:
        print("\n".join(f"FAIL {fault}" for fault in faults))
        return 1
    report = conformance(replace(target), shutil.which(args.python) or args.python)
    print("\n".join(report.lines))
    for fault in report.faults:
        print(f"FAIL {fault}")
    print(
        f"conformance under awslambdaric: {len(report.lines)} scenarios, "
        f"{len(report.faults)} faults"
    )
    return 1 if report.faults else 0
