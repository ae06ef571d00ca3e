"""`--function NAME` / `--stack NAME`: a deployed function's configuration and recent failures.

Uses the caller's standard AWS configuration (profile, region, `AWS_ENDPOINT_URL` for a local
stand-in). What cannot be read (no permission, no log group) becomes a `skip` finding saying
so, never a crash. Failures are counted from the function's own `link_token_failed` lines and
each group's fix comes from the service's error table: the rule whose cause the line names
(`plaid_errors`), else the problem code's fix (`problems`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.doctor.findings import Finding, Status
from linktoken.config import SETTINGS, Setting
from linktoken.plaid_errors import Rule, all_rules, classify
from linktoken.problems import APP_SIDE_FIX, PROBLEM_TYPES

GROUP_FUNCTION = "function"
GROUP_LOGS = "recent failures"
MAX_EVENTS = 10_000  # enough to rank causes; a larger window is summarised from its start
FILTER = '{ $.message = "link_token_failed" }'


class Unreadable(Exception):
    """Something doctor may not or cannot read; the message says what and why."""


@dataclass(frozen=True, slots=True)
class DeployedFunction:
    name: str
    environment: dict[str, str]
    log_group: str


def read_function(name: str, lambda_client: Any) -> DeployedFunction:
    """GetFunctionConfiguration: the variables the function runs with and where it logs."""
    try:
        config = lambda_client.get_function_configuration(FunctionName=name)
    except (ClientError, BotoCoreError) as exc:
        raise Unreadable(f"GetFunctionConfiguration {name}: {_reason(exc)}") from None
    variables = (config.get("Environment") or {}).get("Variables") or {}
    log_group = (config.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{name}"
    return DeployedFunction(config.get("FunctionName", name), dict(variables), log_group)


def function_of_stack(stack: str, cfn_client: Any) -> str:
    """The stack's `FunctionName` output, else its (one) AWS::Lambda::Function resource."""
    try:
        described = cfn_client.describe_stacks(StackName=stack)["Stacks"][0]
        for output in described.get("Outputs") or []:
            if output.get("OutputKey") == "FunctionName":
                return str(output["OutputValue"])
        resources = cfn_client.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    except (ClientError, BotoCoreError) as exc:
        raise Unreadable(f"stack {stack}: {_reason(exc)}") from None
    functions = [
        r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Lambda::Function"
    ]
    if len(functions) != 1:
        raise Unreadable(f"stack {stack} has {len(functions)} Lambda functions; use --function")
    return str(functions[0])


def failure_events(log_group: str, since_ms: int, logs_client: Any) -> Iterator[dict[str, Any]]:
    """The `link_token_failed` events since `since_ms`, decoded, with CloudWatch's timestamp
    (the line's own `timestamp` format is not relied on)."""
    kwargs: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": since_ms,
        "filterPattern": FILTER,
    }
    seen = 0
    try:
        while True:
            page = logs_client.filter_log_events(**kwargs)
            for event in page.get("events", []):
                line = _decoded(event.get("message", ""))
                if line is not None and line.get("message") == "link_token_failed":
                    seen += 1
                    if seen > MAX_EVENTS:
                        return
                    yield {**line, "_timestamp": int(event.get("timestamp", 0))}
            if not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]
    except (ClientError, BotoCoreError) as exc:
        raise Unreadable(f"log group {log_group}: {_reason(exc)}") from None


def summarise(events: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """A row per (error_code, plaid_error_code): count, the most recent ids and cause, the fix;
    most frequent first."""
    rows: dict[tuple[str, str | None], dict[str, Any]] = {}
    for line in events:
        key = (str(line.get("error_code", "UNKNOWN")), line.get("plaid_error_code"))
        row = rows.setdefault(key, {"count": 0, "_timestamp": -1})
        row["count"] += 1
        if line["_timestamp"] >= row["_timestamp"]:
            row.update(
                error_code=key[0],
                plaid_error_code=key[1],
                last_seen=_iso(line["_timestamp"]),
                request_id=line.get("correlation_id"),
                plaid_request_id=line.get("plaid_request_id"),
                cause=line.get("cause") or line.get("exception_name"),
                fix=fix_for(line),
                _timestamp=line["_timestamp"],
            )
    ordered = sorted(rows.values(), key=lambda r: (-r["count"], -r["_timestamp"]))
    return [{k: v for k, v in row.items() if not k.startswith("_")} for row in ordered]


def fix_for(line: dict[str, Any]) -> str:
    """The error table's fix for a logged failure: the rule whose cause the line names, else
    the rule Plaid's fields select, else the fix of the code the app got."""
    rule = rule_of_cause(str(line.get("cause") or ""))
    if rule is None and (line.get("plaid_error_code") or line.get("plaid_status")):
        status = line.get("plaid_status")
        payload = {
            "error_code": line.get("plaid_error_code"),
            "error_type": line.get("plaid_error_type"),
            "error_message": line.get("plaid_error_message"),
        }
        rule = classify(status if isinstance(status, int) else 0, payload).rule
    if rule is not None:
        return rule.fix
    setting = setting_of_cause(str(line.get("cause") or ""))
    if setting is not None:
        return setting.fix
    kind = PROBLEM_TYPES.get(str(line.get("error_code", "")))
    return kind.fix if kind else APP_SIDE_FIX


def setting_of_cause(cause: str) -> Setting | None:
    """The setting a configuration failure's cause names first ("configuration: PLAID_ENV ...":
    every configuration error starts with its variable)."""
    match = re.match(r"configuration: ([A-Z0-9_]+)", cause)
    return next((s for s in SETTINGS if match and s.variable == match[1]), None)


def rule_of_cause(cause: str) -> Rule | None:
    """The rule whose cause a log line's `cause` is: the same text, or that text followed by
    the service's note (" (...)") or the reason an answer was unusable (": ...")."""
    named = [
        rule
        for rule in all_rules()
        if cause == rule.cause or cause.startswith((rule.cause + " (", rule.cause + ": "))
    ]
    return max(named, key=lambda rule: len(rule.cause), default=None)


def failure_findings(rows: list[dict[str, Any]], log_group: str, since: str) -> list[Finding]:
    if not rows:
        return [Finding(GROUP_LOGS, log_group, "ok", f"no link_token_failed lines in {since}")]
    findings = []
    for row in rows:
        code = row["error_code"] + (
            f"/{row['plaid_error_code']}" if row["plaid_error_code"] else ""
        )
        kind = PROBLEM_TYPES.get(row["error_code"])
        # Only what a release or the operator caused is a problem; the rest heals or is the app's.
        verdict: Status = "problem" if kind and kind.release_regression else "warn"
        ids = f"request_id {row['request_id']}"
        if row["plaid_request_id"]:
            ids += f", plaid_request_id {row['plaid_request_id']}"
        findings.append(
            Finding(
                GROUP_LOGS,
                code,
                verdict,
                f"{row['count']} in {since}, last {row['last_seen']} ({ids}): {row['cause']}",
                row["fix"],
            )
        )
    return findings


def parse_since(text: str) -> int:
    """`90m`, `24h`, `7d` -> milliseconds."""
    match = re.fullmatch(r"(\d+)\s*([mhd])", text.strip())
    if not match or int(match[1]) == 0:
        raise ValueError(f"--since wants a duration like 90m, 24h or 7d, not {text!r}")
    return int(match[1]) * {"m": 60, "h": 3600, "d": 86400}[match[2]] * 1000


def _decoded(message: str) -> dict[str, Any] | None:
    try:
        line = json.loads(message)
    except ValueError:
        return None
    return line if isinstance(line, dict) else None


def _iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"
