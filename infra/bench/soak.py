"""`make soak`: one warm container, many invocations, mixed good and bad requests and faults.

    .venv/bin/python -m infra.bench.soak                  # 20,000 invocations (make soak)
    .venv/bin/python -m infra.bench.soak -n 1000          # the short run .ci/run does

The real `app.lambda_handler`, in this process, is invoked over and over like one Lambda
container: the events of infra/events in turn (good and bad requests; expected.json says the
status each must get) and, every `--fault-every`-th good request, a scripted Plaid fault from
FAULTS. Plaid is infra/doubles/plaid_faults.py over TLS (a CA made for this run), Secrets
Manager is infra/doubles/secrets_faults.py (the real botocore client, with a secret TTL of
`--ttl` seconds so it expires during the run). Backoff sleeps are skipped: the fault suite
(tests/integration/test_faults.py) measures timing; this measures what a long life does to a
container.

It fails (exit 1) on any of:
- an unexpected answer: a status other than the one expected, a missing summary log line;
- memory growth: RSS at the end minus RSS after the warm-up over `--max-growth-mib`;
- more than one Plaid connection, plus one per fault that breaks a connection;
- more secret reads than the TTL allows: elapsed / ttl + 1;
- the Plaid secret in any output line.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.doubles.lambda_runtime import LambdaContext
from infra.doubles.loopback import make_loopback_tls
from infra.doubles.plaid_faults import Action, PlaidFaults, Reply, Reset, error_body
from infra.doubles.secrets_faults import SecretsFaults

ROOT = Path(__file__).resolve().parents[2]

CLIENT_ID = "soak-client-id"
SECRET = "soak-plaid-secret-never-in-output-9d2e"  # noqa: S105 - a loopback-only fake key
EVENTS = ROOT / "infra" / "events"


@dataclass(frozen=True)
class Fault:
    """A scripted Plaid misbehaviour, the code the app must get (None: a token), and whether
    it costs the kept-alive connection."""

    name: str
    actions: tuple[Action, ...]
    code: str | None
    breaks_connection: bool = False


FAULTS = (
    Fault("500 then success", (error_body(500, "API_ERROR", "INTERNAL_SERVER_ERROR", "x"),), None),
    Fault(
        "503 PLANNED_MAINTENANCE",
        (error_body(503, "API_ERROR", "PLANNED_MAINTENANCE", "maintenance"),) * 3,
        "UPSTREAM_UNAVAILABLE",
    ),
    Fault("bare 429", (Reply(429, b""),) * 3, "RATE_LIMITED"),
    Fault("HTML with 200", (Reply(200, b"<html>busy</html>"),), "UPSTREAM_REJECTED"),
    Fault("truncated JSON", (Reply(200, b'{"link_token": "link-sa'),), "UPSTREAM_REJECTED"),
    Fault("200 without link_token", (Reply(200, {"expiration": "x"}),), "UPSTREAM_REJECTED"),
    Fault("reset mid-response, then success", (Reset(),), None, breaks_connection=True),
)


class OutputSink:
    """Where the handler's log lines and EMF documents go: counted and searched, not kept
    (keeping them would be the memory growth this run is looking for)."""

    def __init__(self, forbidden: str) -> None:
        self.forbidden = forbidden
        self.lines = 0
        self.summaries = 0
        self.leaks = 0
        self.not_json = 0
        self._partial = ""

    def write(self, text: str) -> int:
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self._line(line)
        return len(text)

    def flush(self) -> None:
        pass

    def _line(self, line: str) -> None:
        if not line:
            return
        self.lines += 1
        self.leaks += self.forbidden in line
        try:
            doc = json.loads(line)
        except ValueError:
            self.not_json += 1
            return
        self.summaries += doc.get("message") in {"link_token_created", "link_token_failed"}


def rss_mib_of(pid: int | str = "self") -> float:
    """A process's resident set size now, MiB (Linux)."""
    with open(f"/proc/{pid}/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Tally:
    """What happened, by kind of request."""

    invocations: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    faults: int = 0
    broken_connections: int = 0

    def count(self, kind: str) -> None:
        self.invocations += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


def run(args: argparse.Namespace) -> dict[str, Any]:
    expected: dict[str, int] = json.loads((EVENTS / "expected.json").read_text())
    events = {name: json.loads((EVENTS / name).read_text()) for name in expected}
    secret_doc = json.dumps({"client_id": CLIENT_ID, "secret": SECRET})
    with (
        tempfile.TemporaryDirectory(prefix="soak-") as tmp,
        SecretsFaults(secret_doc) as sm,
    ):
        tls = make_loopback_tls(Path(tmp))
        with PlaidFaults(tls.server_context(), client_id=CLIENT_ID, secret=SECRET) as plaid:
            os.environ.update(
                {
                    **json.loads((ROOT / "infra/env.json").read_text())["LinkTokenFunction"],
                    "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_ACCESS_KEY_ID": "soak",
                    "AWS_SECRET_ACCESS_KEY": "soak",
                    "POWERTOOLS_TRACE_DISABLED": "true",
                    "AWS_ENDPOINT_URL_SECRETS_MANAGER": sm.endpoint,
                    "REQUESTS_CA_BUNDLE": str(tls.ca_pem),
                    "PLAID_BASE_URL": plaid.base_url,
                    "PLAID_SECRET_TTL_SECONDS": str(args.ttl),
                }
            )
            return drive(args, events, expected, plaid, sm)


def drive(
    args: argparse.Namespace,
    events: dict[str, Any],
    expected: dict[str, int],
    plaid: PlaidFaults,
    sm: SecretsFaults,
) -> dict[str, Any]:
    sink = OutputSink(SECRET)
    sys.stdout, real_stdout = sink, sys.stdout
    try:
        import app
        from linktoken.observability import logger
        from linktoken.plaid_client import PlaidClient, RetryPolicy
        from linktoken.problems import PROBLEM_TYPES

        logger.registered_handler.setStream(sink)  # type: ignore[attr-defined]
        service = app.CONTAINER.service
        assert service is not None, app.CONTAINER.config_error
        service.plaid = PlaidClient(service.config.base_url, RetryPolicy(), sleep=lambda _s: None)

        tally = Tally()
        names = list(events)
        started = time.monotonic()
        rss_start = 0.0
        for i in range(args.invocations):
            if i == args.warmup:
                rss_start = rss_mib_of()
            name = names[i % len(names)]
            want, kind = expected[name], name
            if expected[name] == 200 and (i // len(names)) % args.fault_every == 0:
                fault = FAULTS[tally.faults % len(FAULTS)]
                tally.faults += 1
                tally.broken_connections += fault.breaks_connection
                plaid.script(*fault.actions)
                want = PROBLEM_TYPES[fault.code].status if fault.code else 200
                kind = f"fault: {fault.name}"
            event = copy.deepcopy(events[name])
            if isinstance(event.get("requestContext"), dict):
                event["requestContext"]["requestId"] = f"soak-{uuid.uuid4().hex[:12]}"
            summaries = sink.summaries
            response = app.lambda_handler(event, LambdaContext())
            tally.count(kind)
            status = response.get("statusCode")
            if status != want or sink.summaries != summaries + 1:
                tally.unexpected.append(f"#{i} {kind}: status {status}, expected {want}")
        elapsed = time.monotonic() - started
        rss_end = rss_mib_of()
    finally:
        sys.stdout = real_stdout
    bound_reads = math.floor(elapsed / args.ttl) + 1
    return {
        "invocations": tally.invocations,
        "by_kind": tally.by_kind,
        "faults_injected": tally.faults,
        "unexpected": tally.unexpected,
        "seconds": round(elapsed, 1),
        "per_second": round(tally.invocations / elapsed),
        "rss_after_warmup_mib": round(rss_start, 1),
        "rss_end_mib": round(rss_end, 1),
        "rss_growth_mib": round(rss_end - rss_start, 1),
        "plaid_connections": plaid.connections,
        "plaid_connections_allowed": 1 + tally.broken_connections,
        "plaid_requests": plaid.request_count,
        "secret_reads": len(sm.requests),
        "secret_reads_allowed": bound_reads,
        "output_lines": sink.lines,
        "summary_lines": sink.summaries,
        "non_json_lines": sink.not_json,
        "secret_leaks": sink.leaks,
    }


def verdict(result: dict[str, Any], max_growth_mib: float) -> list[str]:
    failures = [f"unexpected: {line}" for line in result["unexpected"][:20]]
    if result["rss_growth_mib"] > max_growth_mib:
        failures.append(f"RSS grew {result['rss_growth_mib']} MiB (limit {max_growth_mib})")
    if result["plaid_connections"] > result["plaid_connections_allowed"]:
        failures.append(f"{result['plaid_connections']} Plaid connections")
    if result["secret_reads"] > result["secret_reads_allowed"]:
        failures.append(f"{result['secret_reads']} secret reads")
    if result["secret_leaks"] or result["non_json_lines"]:
        failures.append(
            f"{result['secret_leaks']} leaks, {result['non_json_lines']} non-JSON lines"
        )
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("-n", "--invocations", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=500, help="invocations before RSS start")
    parser.add_argument("--fault-every", type=int, default=5, help="rounds between faults")
    parser.add_argument("--ttl", type=int, default=10, help="secret TTL, seconds")
    parser.add_argument("--max-growth-mib", type=float, default=8.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    args.warmup = min(args.warmup, args.invocations // 2)
    result = run(args)
    failures = verdict(result, args.max_growth_mib)
    shown = {k: v for k, v in result.items() if k != "unexpected"}
    print(json.dumps(shown, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(f"soak: FAIL {failure}" for failure in failures))
    print(
        f"soak: {'FAIL' if failures else 'ok'}: {result['invocations']} invocations, "
        f"{len(result['unexpected'])} unexpected, RSS {result['rss_growth_mib']:+} MiB"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
