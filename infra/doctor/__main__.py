"""`make doctor [ARGS="--live | --function NAME | --stack NAME | --since 24h | --json"]`.

Exit status 1 when any problem was found, 2 on a usage error, else 0.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any
from unittest import mock

from infra.doctor import render
from infra.doctor.config_checks import check_configuration
from infra.doctor.deployed import (
    GROUP_FUNCTION,
    GROUP_LOGS,
    Unreadable,
    failure_events,
    failure_findings,
    function_of_stack,
    parse_since,
    read_function,
    summarise,
)
from infra.doctor.findings import Finding, Report
from infra.doctor.live import GROUP as PLAID
from infra.doctor.live import check_link_tokens
from infra.doctor.network import check_network
from infra.doctor.secret_checks import check_secret, keys_environment_unknown
from linktoken.config import SETTINGS, raw_value


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    args = _parser().parse_args(argv)
    try:
        since_ms = parse_since(args.since)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    report = Report()
    title = "configuration from this environment"
    function = None
    if args.function or args.stack:
        try:
            name = args.function or function_of_stack(args.stack, _client("cloudformation"))
            function = read_function(name, _client("lambda"))
        except Unreadable as exc:
            report.add(
                Finding(
                    GROUP_FUNCTION,
                    "configuration",
                    "problem",  # nothing of it could be checked: not a pass
                    f"could not read it: {exc}",
                    "check the name, the region (AWS_REGION or your profile's) and "
                    "lambda:GetFunctionConfiguration (cloudformation:DescribeStacks for --stack)",
                )
            )
            return _finish(report, args, title)
        title = f"deployed function {function.name} (log group {function.log_group})"
        environ = function.environment
    elif not any(raw_value(environ, setting.variable) for setting in SETTINGS):
        return _local(report, args, environ)  # nothing configured: the local setup
    diagnose(report, environ, live=args.live)
    if function is not None:
        _recent_failures(report, function.log_group, since_ms, args.since)
    return _finish(report, args, title)


def diagnose(report: Report, environ: Mapping[str, str], live: bool, local: bool = False) -> None:
    """Configuration, secret and, with `live`, the network path and one call per platform.
    `local`: the local setup, whose secret needs no user_id_hmac_key."""
    config, findings = check_configuration(environ)
    report.add(*findings)
    secret_id = (environ.get("PLAID_SECRET_ID") or "").strip()
    credentials = check_secret(secret_id, report, require_hmac_key=not local) if secret_id else None
    if not live:
        if credentials is not None:
            report.add(keys_environment_unknown())
        return
    if config is None:
        report.add(Finding(PLAID, "link token", "skip", "not called: fix the configuration"))
        return
    report.add(*check_network(config.base_url, os.environ))
    if credentials is None:
        report.add(Finding(PLAID, "link token", "skip", "not called: no usable secret"))
        return
    report.add(*check_link_tokens(config, credentials))


def _local(report: Report, args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """No variable of the function's set: check what `make serve` and `make invoke` run with,
    against the same local stand-ins (Secrets Manager seeded from PLAID_CLIENT_ID/PLAID_SECRET
    or the stand-in's keys; Plaid Sandbox with keys, else the loopback stand-in)."""
    from infra.invoke.local_env import local_backends

    # local_backends fills the process environment, which the service's clients read.
    with mock.patch.dict(os.environ, dict(environ)), local_backends(os.environ) as backends:
        title = (
            "local configuration, as make serve runs it (infra/env.json; set PLAID_SECRET_ID "
            f"and your AWS configuration to check a real one). Secret: {backends.secrets}"
        )
        diagnose(report, os.environ, live=args.live, local=True)
        return _finish(report, args, title)


def _recent_failures(report: Report, log_group: str, since_ms: int, since: str) -> None:
    start = int(time.time() * 1000) - since_ms
    try:
        rows = summarise(failure_events(log_group, start, _client("logs")))
    except Unreadable as exc:
        report.add(
            Finding(
                GROUP_LOGS,
                log_group,
                "skip",
                f"could not read it: {exc}",
                "a function that never ran has no log group; otherwise grant "
                "logs:FilterLogEvents on it",
            )
        )
        return
    report.extra["failures"] = rows
    report.add(*failure_findings(rows, log_group, f"the last {since}"))


def _finish(report: Report, args: argparse.Namespace, title: str) -> int:
    output = render.as_json(report, title) if args.json else render.text(report, title)
    print(output)
    return report.exit_code


@functools.cache
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()  # one per process: it caches the service models


def _client(service: str) -> Any:
    """A client on the caller's standard configuration chain, with bounded waits."""
    from botocore.config import Config

    config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2})
    return _session().create_client(service, config=config)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make doctor",
        description="Name the cause of 'Unable to fetch link_token': configuration, secret, "
        "Plaid (--live) and a deployed function's recent failures (--function/--stack).",
    )
    parser.add_argument("--live", action="store_true", help="one real call to Plaid")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--function", metavar="NAME", help="check a deployed function")
    target.add_argument("--stack", metavar="NAME", help="check the function of a stack")
    parser.add_argument("--since", default="24h", help="log window for --function (24h)")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    return parser


if __name__ == "__main__":
    sys.exit(main())
