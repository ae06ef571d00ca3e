"""`make doctor [ARGS="--live | --function NAME | --stack NAME | --since 24h | --json"]`.

Exit status 1 when any problem was found, 2 on a usage error, else 0.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Hashable, Mapping, Sequence
from typing import Any
from unittest import mock

from infra.doctor import render
from infra.doctor.config_checks import check_configuration
from infra.doctor.deployed import (
    GROUP_FUNCTION,
    GROUP_LOGS,
    DeployedFunction,
    Unreadable,
    failure_events,
    failure_findings,
    functions_of_stack,
    orphan_findings,
    orphans,
    parse_since,
    queues_of_stack,
    read_function,
    summarise,
)
from infra.doctor.event_source import check_event_source
from infra.doctor.findings import Finding, Report
from infra.doctor.live import GROUP as PLAID
from infra.doctor.live import check_link_tokens
from infra.doctor.network import check_network
from infra.doctor.queue_checks import GROUP as QUEUES
from infra.doctor.queue_checks import QueueState, check_dead_letters, check_queue
from infra.doctor.roles import (
    ITEM_EXCHANGE,
    LINK_TOKEN,
    ROLES,
    WEBHOOK_APPLIED,
    WEBHOOK_PROCESSOR,
    WEBHOOK_RECEIVER,
    WEBHOOK_REJECTED,
    Role,
    role_of,
)
from infra.doctor.secret_checks import GROUP as SECRET
from infra.doctor.secret_checks import check_secret, keys_environment_unknown
from infra.doctor.storage_checks import GROUP as STORAGE
from infra.doctor.storage_checks import check_key, check_table
from infra.doctor.webhook_logs import (
    outcome_findings,
    outcome_rows,
    rejection_findings,
    rejection_rows,
)
from linktoken.config import SETTINGS, check_environment, raw_value
from linktoken.secret_store import PlaidCredentials

# What a stack's functions share (the secret, the Plaid call, the table, the key) is checked
# for the first function that names it: key -> (that function, what the check gave).
Shared = dict[tuple[Hashable, ...], tuple[str, Any]]


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    args = _parser().parse_args(argv)
    try:
        since_ms = parse_since(args.since)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    report = Report()
    if args.function or args.stack:
        return _deployed(report, args, since_ms)
    if not any(raw_value(environ, setting.variable) for setting in SETTINGS):
        return _local(report, args, environ)  # nothing configured: the local setup
    diagnose(report, environ, live=args.live)
    return _finish(report, args, "configuration from this environment")


def diagnose(
    report: Report,
    environ: Mapping[str, str],
    live: bool,
    local: bool = False,
    role: Role | None = None,
    shared: Shared | None = None,
    label: str = "",
) -> None:
    """Configuration, secret and, with `live`, the network path and one call per platform.
    `local`: the local setup, whose secret needs no user_id_hmac_key. `role`: the deployed
    function's; `shared`: what earlier functions of the report (`label` is this one) checked."""
    config, findings = check_configuration(environ, role)
    report.add(*findings)
    secret_id = (environ.get("PLAID_SECRET_ID") or "").strip()
    credentials: PlaidCredentials | None = None
    earlier = _earlier(shared, ("secret", secret_id))
    if earlier is not None:
        report.add(_same(SECRET, "readable", "secret", secret_id, earlier[0]))
        credentials = earlier[1]
    elif secret_id:
        credentials = check_secret(secret_id, report, require_hmac_key=not local)
        _remember(shared, ("secret", secret_id), label, credentials)
        if not live and credentials is not None:
            report.add(keys_environment_unknown())
    if not live:
        return
    if config is None:
        report.add(Finding(PLAID, "link token", "skip", "not called: fix the configuration"))
        return
    earlier = _earlier(shared, ("plaid", config, secret_id))
    if earlier is not None:
        report.add(_same(PLAID, "link token", "configuration and secret", secret_id, earlier[0]))
        return
    _remember(shared, ("plaid", config, secret_id), label, None)
    report.add(*check_network(config.base_url, os.environ))
    if credentials is None:
        report.add(Finding(PLAID, "link token", "skip", "not called: no usable secret"))
        return
    report.add(*check_link_tokens(config, credentials))


def _deployed(report: Report, args: argparse.Namespace, since_ms: int) -> int:
    """`--function NAME`, or each function of `--stack NAME`, by its logical id."""
    title = "configuration from this environment"
    try:
        targets: list[tuple[str, str]] = (
            [(args.function, args.function)]
            if args.function
            else functions_of_stack(args.stack, _client("cloudformation"))
        )
    except Unreadable as exc:
        report.add(_unreadable_function(exc))
        return _finish(report, args, title)
    several = len(targets) > 1
    functions: list[DeployedFunction] = []
    for label, name in targets:
        with report.about(label if several else None):
            try:
                functions.append(read_function(name, _client("lambda"), label if several else None))
            except Unreadable as exc:
                report.add(_unreadable_function(exc))
    if several:
        title = f"stack {args.stack}: {len(targets)} functions ({', '.join(t[0] for t in targets)})"
    elif functions:
        title = f"deployed function {functions[0].name} (log group {functions[0].log_group})"
    report.extra["functions"] = [
        {
            "function": f.label or f.name,
            "name": f.name,
            "handler": f.handler,
            "log_group": f.log_group,
        }
        for f in functions
    ]
    shared: Shared = {}
    for function in functions:
        with report.about(function.label):
            _check_function(report, function, args, since_ms, shared)
    if args.stack:
        _stack_queues(report, args.stack, functions, shared)
    return _finish(report, args, title)


def _check_function(
    report: Report,
    function: DeployedFunction,
    args: argparse.Namespace,
    since_ms: int,
    shared: Shared,
) -> None:
    role = role_of(function.handler)
    report.add(_handler_finding(function, role))
    role = role or LINK_TOKEN
    label = function.label or function.name
    diagnose(report, function.environment, args.live, role=role, shared=shared, label=label)
    _items_storage(report, function.environment, role, shared, label)
    if role is WEBHOOK_RECEIVER:
        _receiver_queue(report, function.environment, shared, label)
    _recent_failures(report, function, role, since_ms, args.since)


def _handler_finding(function: DeployedFunction, role: Role | None) -> Finding:
    if role is not None:
        return Finding(
            GROUP_FUNCTION,
            "handler",
            "ok",
            f"{function.name}: Handler {function.handler}, {role.title}; log group "
            f"{function.log_group}",
        )
    handlers = ", ".join(r.handler for r in ROLES)
    return Finding(
        GROUP_FUNCTION,
        "handler",
        "warn",
        f"{function.name}: Handler {function.handler!r} is none of this service's ({handlers}): "
        "checked as the link-token function",
        "check the function's Handler against template.yaml",
    )


def _items_storage(
    report: Report, environ: Mapping[str, str], role: Role, shared: Shared, label: str
) -> None:
    """The table and key the function names (valid names only: a wrong one is named above)."""
    values, _errors = check_environment(environ)
    table, key_id = values.get("items_table"), values.get("items_key_id")
    if isinstance(table, str) and role.uses_table:
        earlier = _earlier(shared, ("table", table))
        if earlier is not None:
            report.add(_same(STORAGE, "table", "table", table, earlier[0]))
        else:
            _remember(shared, ("table", table), label, None)
            report.add(*check_table(table))
    if isinstance(key_id, str) and role.kms_operation:
        earlier = _earlier(shared, ("key", key_id))
        if earlier is not None:
            report.add(_same(STORAGE, "key", "key", key_id, earlier[0]))
        else:
            _remember(shared, ("key", key_id), label, None)
            report.add(*check_key(key_id, role.kms_operation))


def _receiver_queue(report: Report, environ: Mapping[str, str], shared: Shared, label: str) -> None:
    """The queue the receiver sends to (a valid URL only: a wrong one is named above)."""
    values, _errors = check_environment(environ)
    url = values.get("webhook_queue_url")
    if not isinstance(url, str):
        return
    state = check_queue(url)
    _remember(shared, ("queue", url), label, state)
    report.add(*state.findings)


def _stack_queues(
    report: Report, stack: str, functions: list[DeployedFunction], shared: Shared
) -> None:
    """The stack's webhook queue and dead-letter queue (its outputs), for a stack that has
    webhooks: the queue the processor consumes, and the webhooks that failed five times."""
    webhooks = [f for f in functions if role_of(f.handler) in (WEBHOOK_RECEIVER, WEBHOOK_PROCESSOR)]
    try:
        urls = queues_of_stack(stack, _client("cloudformation"))
    except Unreadable as exc:
        if webhooks:
            report.add(Finding(QUEUES, "queues", "skip", f"could not read them: {exc}"))
        return
    if not urls and not webhooks:
        return  # a stack from before webhooks
    queue_url, dead_url = urls.get("WebhookQueueUrl"), urls.get("WebhookDeadLetterQueueUrl")
    queue: QueueState | None = None
    if queue_url:
        queue = _stack_queue(report, queue_url, functions, shared)
    if dead_url:
        dead = check_dead_letters(dead_url, queue.arn if queue else None, stack)
        report.extra["dead_letters"] = dead.messages
        report.add(*dead.findings)
    for processor in (f for f in functions if role_of(f.handler) is WEBHOOK_PROCESSOR):
        queue_arn = queue.arn if queue else None
        report.add(check_event_source(processor.name, queue_arn, _client("lambda")))
    for output, url in (("WebhookQueueUrl", queue_url), ("WebhookDeadLetterQueueUrl", dead_url)):
        if not url:
            report.add(
                Finding(
                    QUEUES,
                    output,
                    "skip",
                    f"the stack has no output {output}: that queue is not checked",
                    "deploy the stack's template again (template.yaml has the output)",
                )
            )


def _stack_queue(
    report: Report, url: str, functions: list[DeployedFunction], shared: Shared
) -> QueueState:
    """The stack's queue, once: the receiver's, when it sends to it; a problem when it
    sends elsewhere (the processor consumes the stack's queue)."""
    receivers = [f for f in functions if role_of(f.handler) is WEBHOOK_RECEIVER]
    for function in receivers:
        sent_to = (function.environment.get("WEBHOOK_QUEUE_URL") or "").strip()
        if sent_to and sent_to != url:
            report.add(
                Finding(
                    QUEUES,
                    "receiver's queue",
                    "problem",
                    f"{function.label or function.name} sends webhooks to {sent_to}, not to the "
                    f"stack's WebhookQueue {url}, which the processor consumes: they are never "
                    "applied",
                    "deploy the stack again (it sets WEBHOOK_QUEUE_URL from WebhookQueue)",
                )
            )
    earlier = _earlier(shared, ("queue", url))
    if earlier is not None:
        report.add(_same(QUEUES, "queue", "queue", url, earlier[0]))
        state: QueueState = earlier[1]
        return state
    state = check_queue(url)
    report.add(*state.findings)
    return state


def _earlier(shared: Shared | None, key: tuple[Hashable, ...]) -> tuple[str, Any] | None:
    return None if shared is None else shared.get(key)


def _remember(shared: Shared | None, key: tuple[Hashable, ...], label: str, value: Any) -> None:
    if shared is not None:
        shared[key] = (label, value)


def _same(group: str, check: str, what: str, name: str, first: str) -> Finding:
    """A shared resource checked above, for an earlier function: said once, counted once."""
    return Finding(group, check, "skip", f"{name}: the same {what} as {first}'s, checked above")


def _unreadable_function(exc: Unreadable) -> Finding:
    return Finding(
        GROUP_FUNCTION,
        "configuration",
        "problem",  # nothing of it could be checked: not a pass
        f"could not read it: {exc}",
        "check the name, the region (AWS_REGION or your profile's) and "
        "lambda:GetFunctionConfiguration (cloudformation:DescribeStacks and ListStackResources "
        "for --stack)",
    )


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


def _recent_failures(
    report: Report, function: DeployedFunction, role: Role, since_ms: int, since: str
) -> None:
    """The function's failure lines (each role writes its own), by code and cause; for the
    exchange, what became of the Items it could not store; for the webhook functions, the
    receiver's rejections by reason and the processor's outcomes."""
    log_group = function.log_group
    start = int(time.time() * 1000) - since_ms
    lines: list[dict[str, Any]] = []
    # The receiver's rejections and the processor's outcomes: not failures, but counted.
    counted = {WEBHOOK_RECEIVER: WEBHOOK_REJECTED, WEBHOOK_PROCESSOR: WEBHOOK_APPLIED}.get(role)
    tallied: list[dict[str, Any]] = []
    try:
        logs = _client("logs")
        for message in role.failures:
            lines.extend(failure_events(log_group, start, logs, message))
        if counted:
            tallied.extend(failure_events(log_group, start, logs, counted))
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
    named = function.label or function.name
    window = f"the last {since}"
    if role is ITEM_EXCHANGE:
        found = orphans(lines)
        report.extra.setdefault("orphans", []).extend({**o, "function": named} for o in found)
        report.add(*orphan_findings(found, window))
    rows = summarise(lines)
    report.extra.setdefault("failures", []).extend({**row, "function": named} for row in rows)
    report.add(*failure_findings(rows, log_group, window, role.failures))
    if role is WEBHOOK_RECEIVER:
        rejected = rejection_rows(tallied)
        report.extra.setdefault("rejections", []).extend(
            {**row, "function": named} for row in rejected
        )
        report.add(*rejection_findings(rejected, window))
    elif role is WEBHOOK_PROCESSOR:
        outcomes = outcome_rows(tallied)
        report.extra.setdefault("outcomes", []).extend(
            {**row, "function": named} for row in outcomes
        )
        report.add(*outcome_findings(outcomes, window))


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
        description="Name the cause of 'Unable to fetch link_token' and of the Items routes' "
        "and webhooks' failures: configuration, secret, Plaid (--live) and a deployed "
        "function's Items table and key, webhook queues and recent failures "
        "(--function/--stack).",
    )
    parser.add_argument("--live", action="store_true", help="one real call to Plaid")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--function", metavar="NAME", help="check a deployed function")
    target.add_argument("--stack", metavar="NAME", help="check each function of a stack")
    parser.add_argument("--since", default="24h", help="log window for --function/--stack (24h)")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    return parser


if __name__ == "__main__":
    sys.exit(main())
