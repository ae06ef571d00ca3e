"""`make soak-serve`: concurrent requests through `make serve`, as apps would send them.

    .venv/bin/python -m infra.bench.soak_serve                 # 4,000 requests, 4 workers
    .venv/bin/python -m infra.bench.soak_serve -n 400 --workers 2   # the short run .ci/run does

`make serve` is started as a user starts it (infra/gateway/serve_process.py: PORT=0, its banner's
development JWT), with its workers (Lambda-like execution environments, one event at a time)
pointed at two loopback doubles of this repository: Plaid over TLS (infra/doubles/plaid_faults.py,
which counts TCP connections) and Secrets Manager (infra/doubles/secrets_faults.py, which counts
reads). Twice as many client threads as workers send a mix of good requests and bad ones
(malformed JSON, an unknown field, a wrong content type, a body too large, no token), each with
the status it must get.

It fails (exit 1) on any of:
- an unexpected answer (another status, or no answer);
- a number of Plaid connections other than the number of workers: one kept alive by each;
- more secret reads than workers x (elapsed / TTL + 1);
- a worker's RSS growing more than `--max-growth-mib` between warm-up and the end.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from infra.bench.soak import rss_mib_of
from infra.doubles.loopback import make_loopback_tls
from infra.doubles.plaid_faults import PlaidFaults
from infra.doubles.secrets_faults import SecretsFaults
from infra.gateway.serve_process import serve

ROOT = Path(__file__).resolve().parents[2]

CLIENT_ID = "soak-serve-client-id"
SECRET = "soak-serve-plaid-secret-7f41"  # noqa: S105 - a loopback-only fake key
JSON = {"content-type": "application/json"}
# name, headers, body, the status it must get; "auth" False: no JWT at all.
MIX: tuple[tuple[str, dict[str, str], bytes, int, bool], ...] = (
    ("defaults", JSON, b"{}", 200, True),
    ("ios", JSON, b'{"platform": "ios"}', 200, True),
    ("no body", {}, b"", 200, True),
    ("android, French", JSON, b'{"platform": "android", "language": "fr"}', 200, True),
    ("malformed JSON", JSON, b'{"platform": ', 400, True),
    ("unknown field", JSON, b'{"user": "someone-else"}', 400, True),
    ("wrong content type", {"content-type": "text/plain"}, b"platform=ios", 415, True),
    ("too large", JSON, b'{"platform": "' + b"x" * 20_000 + b'"}', 413, True),
    ("no token", JSON, b"{}", 401, False),
)


def worker_rss(pids: list[int]) -> dict[int, float]:
    return {pid: rss_mib_of(pid) for pid in pids}


def run(args: argparse.Namespace) -> dict[str, Any]:
    secret_doc = json.dumps({"client_id": CLIENT_ID, "secret": SECRET})
    with tempfile.TemporaryDirectory(prefix="soak-serve-") as tmp, SecretsFaults(secret_doc) as sm:
        tls = make_loopback_tls(Path(tmp))
        with PlaidFaults(tls.server_context(), client_id=CLIENT_ID, secret=SECRET) as plaid:
            env = {
                "WORKERS": str(args.workers),
                "PLAID_BASE_URL": plaid.base_url,
                "AWS_ENDPOINT_URL_SECRETS_MANAGER": sm.endpoint,
                "REQUESTS_CA_BUNDLE": str(tls.ca_pem),
                "PLAID_SECRET_TTL_SECONDS": str(args.ttl),
            }
            with serve(env, stop_within=10.0) as server:
                result = drive(args, server, plaid, sm)
    return result


def drive(
    args: argparse.Namespace, server: Any, plaid: PlaidFaults, sm: SecretsFaults
) -> dict[str, Any]:
    url = server.url + "/link-token"
    token = server.dev_token
    local = threading.local()
    unexpected: list[str] = []
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def one(i: int) -> None:
        name, headers, body, want, auth = MIX[i % len(MIX)]
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        if auth:
            headers = {**headers, "authorization": f"Bearer {token}"}
        try:
            status: int | str = session.post(
                url, data=body, headers=headers, timeout=30
            ).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        with lock:
            counts[name] = counts.get(name, 0) + 1
            if status != want:
                unexpected.append(f"#{i} {name}: {status}, expected {want}")

    clients = args.workers * 2
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(args.warmup)))
        pids = server.worker_pids()
        rss_start = worker_rss(pids)
        started = time.monotonic()
        list(pool.map(one, range(args.warmup, args.requests)))
        elapsed = time.monotonic() - started
    rss_end = worker_rss(pids)
    growth = max((rss_end[pid] - rss_start[pid] for pid in pids), default=0.0)
    return {
        "requests": args.requests,
        "workers": args.workers,
        "client_threads": clients,
        "by_kind": counts,
        "unexpected": unexpected,
        "seconds": round(elapsed, 1),
        "per_second": round((args.requests - args.warmup) / elapsed),
        "worker_rss_after_warmup_mib": sorted(round(v, 1) for v in rss_start.values()),
        "worker_rss_end_mib": sorted(round(v, 1) for v in rss_end.values()),
        "worker_rss_growth_max_mib": round(growth, 1),
        "plaid_connections": plaid.connections,
        "plaid_requests": plaid.request_count,
        "secret_reads": len(sm.requests),
        "secret_reads_allowed": args.workers * (math.floor(elapsed / args.ttl) + 1),
        "secret_leaks": int(SECRET in server.output()),
    }


def verdict(result: dict[str, Any], max_growth_mib: float) -> list[str]:
    failures = [f"unexpected: {line}" for line in result["unexpected"][:20]]
    if result["plaid_connections"] != result["workers"]:
        failures.append(
            f"{result['plaid_connections']} Plaid connections for {result['workers']} workers"
        )
    if result["secret_reads"] > result["secret_reads_allowed"]:
        failures.append(f"{result['secret_reads']} secret reads")
    if result["worker_rss_growth_max_mib"] > max_growth_mib:
        failures.append(f"a worker's RSS grew {result['worker_rss_growth_max_mib']} MiB")
    if result["secret_leaks"]:
        failures.append("the Plaid secret is in make serve's output")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("-n", "--requests", type=int, default=4_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=200, help="requests before RSS start")
    parser.add_argument("--ttl", type=int, default=10, help="secret TTL, seconds")
    parser.add_argument("--max-growth-mib", type=float, default=8.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    args.warmup = min(args.warmup, args.requests // 2)
    result = run(args)
    failures = verdict(result, args.max_growth_mib)
    print(json.dumps({k: v for k, v in result.items() if k != "unexpected"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    for failure in failures:
        print(f"soak-serve: FAIL {failure}")
    print(
        f"soak-serve: {'FAIL' if failures else 'ok'}: {result['requests']} requests, "
        f"{len(result['unexpected'])} unexpected, {result['plaid_connections']} Plaid connections "
        f"for {result['workers']} workers"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
