"""`--function NAME` / `--stack NAME`: a deployed function's configuration and recent failures.

Uses the caller's standard AWS configuration (profile, region, `AWS_ENDPOINT_URL` for a local
stand-in). What cannot be read (no permission, no log group) becomes a `skip` finding saying
so, never a crash. A stack's functions are found by their logical ids. Failures are counted
from the function's own failure lines (`link_token_failed`, `item_exchange_failed`,
`items_list_failed`, `item_remove_failed`, `item_refresh_failed`, `webhook_receive_failed`,
`webhook_failed`: `roles`), by code and cause, and each group's fix
comes from the service's error table: the rule whose cause the line names (`plaid_errors`),
else the setting the cause names (`config`), else the problem code's fix (`problems`). The
exchange's lines also say what became of an Item Plaid made but the function could not store
(`orphan`: "removed" at Plaid again, or "left" there).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.doctor.findings import Finding, Status
from infra.doctor.roles import LINK_TOKEN
from linktoken.config import SETTINGS, Setting
from linktoken.plaid_errors import Rule, all_rules, classify
from linktoken.problems import APP_SIDE_FIX, PROBLEM_TYPES

# The link-token function's failure line, what doctor read before there were three functions.
_FIRST_LINE = LINK_TOKEN.failures[0]
GROUP_FUNCTION = "function"
GROUP_LOGS = "recent failures"
MAX_EVENTS = 10_000  # enough to rank causes; a larger window is summarised from its start
# The stack's outputs naming the webhook queues, and the queues' logical ids (template.yaml).
QUEUE_OUTPUTS = {
    "WebhookQueueUrl": "WebhookQueue",
    "WebhookDeadLetterQueueUrl": "WebhookDeadLetterQueue",
}


# Codes a log line can carry that are no answer's (not in the error contract), and their fixes.
_LINE_FIXES = {
    "POISON_MESSAGE": "a queue message that is no webhook the receiver queued (the cause says "
    "what it lacks): something else sends to the webhook queue; after five tries it waits in "
    "the dead-letter queue: look at it there and delete it rather than redrive it",
}


class Unreadable(Exception):
    """Something doctor may not or cannot read; the message says what and why."""


@dataclass(frozen=True, slots=True)
class DeployedFunction:
    name: str
    environment: dict[str, str]
    log_group: str
    handler: str | None = None
    # The stack's logical id for it, in a report on several functions.
    label: str | None = None


def read_function(name: str, lambda_client: Any, label: str | None = None) -> DeployedFunction:
    """GetFunctionConfiguration: the variables the function runs with, its handler and where
    it logs."""
    try:
        config = lambda_client.get_function_configuration(FunctionName=name)
    except (ClientError, BotoCoreError) as exc:
        raise Unreadable(f"GetFunctionConfiguration {name}: {error_reason(exc)}") from None
    variables = (config.get("Environment") or {}).get("Variables") or {}
    log_group = (config.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{name}"
    return DeployedFunction(
        config.get("FunctionName", name), dict(variables), log_group, config.get("Handler"), label
    )


def functions_of_stack(stack: str, cfn_client: Any) -> list[tuple[str, str]]:
    """(logical id, function name) of each AWS::Lambda::Function of the stack, in the stack's
    order; without any, the stack's outputs that name functions (`FunctionName`,
    `ItemExchangeFunctionName`...), by output key."""
    described, resources = _stack(stack, cfn_client)
    functions = [
        (str(r["LogicalResourceId"]), str(r["PhysicalResourceId"]))
        for r in resources
        if r.get("ResourceType") == "AWS::Lambda::Function" and r.get("PhysicalResourceId")
    ]
    if not functions:
        functions = [
            (str(o["OutputKey"]), str(o["OutputValue"]))
            for o in described.get("Outputs") or []
            if str(o.get("OutputKey", "")).endswith("FunctionName") and o.get("OutputValue")
        ]
    if not functions:
        raise Unreadable(f"stack {stack} has no Lambda function; use --function")
    return functions


def queues_of_stack(stack: str, cfn_client: Any) -> dict[str, str]:
    """The webhook queues' URLs by output key (`WebhookQueueUrl`, `WebhookDeadLetterQueueUrl`),
    from the stack's outputs, else from its queue resources of the template's logical ids; empty
    for a stack without webhooks."""
    described, resources = _stack(stack, cfn_client)
    outputs = {
        str(o.get("OutputKey")): str(o["OutputValue"])
        for o in described.get("Outputs") or []
        if o.get("OutputValue")
    }
    by_id = {
        str(r.get("LogicalResourceId")): str(r["PhysicalResourceId"])
        for r in resources
        if r.get("ResourceType") == "AWS::SQS::Queue" and r.get("PhysicalResourceId")
    }
    found = {}
    for output, logical_id in QUEUE_OUTPUTS.items():
        url = outputs.get(output) or by_id.get(logical_id)
        if url:
            found[output] = url
    return found


def _stack(stack: str, cfn_client: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """DescribeStacks and every page of ListStackResources."""
    try:
        described: dict[str, Any] = cfn_client.describe_stacks(StackName=stack)["Stacks"][0]
        resources: list[dict[str, Any]] = []
        kwargs = {"StackName": stack}
        while True:
            page = cfn_client.list_stack_resources(**kwargs)
            resources.extend(page.get("StackResourceSummaries") or [])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    except (ClientError, BotoCoreError) as exc:
        raise Unreadable(f"stack {stack}: {error_reason(exc)}") from None
    return described, resources


def failure_events(
    log_group: str, since_ms: int, logs_client: Any, message: str = _FIRST_LINE
) -> Iterator[dict[str, Any]]:
    """The events of the log line `message` since `since_ms`, decoded, with CloudWatch's
    timestamp (the line's own `timestamp` format is not relied on)."""
    kwargs: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": since_ms,
        "filterPattern": f'{{ $.message = "{message}" }}',
    }
    seen = 0
    try:
        while True:
            page = logs_client.filter_log_events(**kwargs)
            for event in page.get("events", []):
                line = _decoded(event.get("message", ""))
                if line is not None and line.get("message") == message:
                    seen += 1
                    if seen > MAX_EVENTS:
                        return
                    yield {**line, "_timestamp": int(event.get("timestamp", 0))}
            if not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]
    except (ClientError, BotoCoreError) as exc:
        raise Unreadable(f"log group {log_group}: {error_reason(exc)}") from None


def summarise(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A row per log line, error_code, plaid_error_code and cause (as the line says it): count,
    the most recent ids, the fix; most frequent first."""
    rows: dict[tuple[str, str, str | None, str | None], dict[str, Any]] = {}
    for line in events:
        cause = line.get("cause") or line.get("exception_name")
        key = (
            str(line.get("message", "")),
            str(line.get("error_code", "UNKNOWN")),
            line.get("plaid_error_code"),
            None if cause is None else str(cause),
        )
        row = rows.setdefault(key, {"count": 0, "_timestamp": -1})
        row["count"] += 1
        if line["_timestamp"] >= row["_timestamp"]:
            row.update(
                log_message=key[0],
                error_code=key[1],
                plaid_error_code=key[2],
                last_seen=_iso(line["_timestamp"]),
                request_id=line.get("correlation_id"),
                plaid_request_id=line.get("plaid_request_id"),
                message_id=line.get("message_id"),  # the processor's lines: an SQS message
                cause=key[3],
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
    code = str(line.get("error_code", ""))
    kind = PROBLEM_TYPES.get(code)
    return kind.fix if kind else _LINE_FIXES.get(code, APP_SIDE_FIX)


def setting_of_cause(cause: str) -> Setting | None:
    """The setting a configuration failure's cause names first ("configuration: PLAID_ENV ...":
    every configuration error starts with its variable), or a storage failure's cause names
    last ("dynamodb GetItem: ResourceNotFoundException: ... (check ITEMS_TABLE)")."""
    match = re.match(r"configuration: ([A-Z0-9_]+)", cause) or re.search(
        r"\(check ([A-Z0-9_]+)\)$", cause
    )
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


def failure_findings(
    rows: list[dict[str, Any]],
    log_group: str,
    since: str,
    messages: tuple[str, ...] = (_FIRST_LINE,),
) -> list[Finding]:
    """A finding per row; a row of a line other than link_token_failed is named with it."""
    if not rows:
        lines = " or ".join(messages)
        return [Finding(GROUP_LOGS, log_group, "ok", f"no {lines} lines in {since}")]
    findings = []
    for row in rows:
        code = row["error_code"] + (
            f"/{row['plaid_error_code']}" if row["plaid_error_code"] else ""
        )
        message = row.get("log_message") or _FIRST_LINE
        if message != _FIRST_LINE:
            code = f"{message} {code}"
        kind = PROBLEM_TYPES.get(row["error_code"])
        # Only what a release or the operator caused is a problem; the rest heals or is the app's.
        verdict: Status = "problem" if kind and kind.release_regression else "warn"
        ids = ", ".join(
            f"{name} {row[name]}"
            for name in ("request_id", "message_id", "plaid_request_id")
            if row.get(name)
        )
        last = f"last {row['last_seen']}" + (f" ({ids})" if ids else "")
        findings.append(
            Finding(
                GROUP_LOGS,
                code,
                verdict,
                f"{row['count']} in {since}, {last}: {row['cause']}",
                row["fix"],
            )
        )
    return findings


def orphans(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every exchange line that says what became of an Item it could not store, newest first:
    `orphan` "left" (live at Plaid, no record) or "removed" (removed at Plaid again)."""
    found = [
        {
            "orphan": line["orphan"],
            "item_id": line.get("item_id"),
            "last_seen": _iso(line["_timestamp"]),
            "request_id": line.get("correlation_id"),
            "plaid_request_id": line.get("plaid_request_id"),
            "error_code": line.get("error_code"),
            "cause": line.get("cause"),
            "orphan_cause": line.get("orphan_cause"),
            "fix": fix_for(line),
            "_timestamp": line["_timestamp"],
        }
        for line in events
        if line.get("orphan") in ("left", "removed")
    ]
    found.sort(key=lambda row: -row["_timestamp"])
    return [{k: v for k, v in row.items() if not k.startswith("_")} for row in found]


def orphan_findings(rows: list[dict[str, Any]], since: str) -> list[Finding]:
    """A problem per Item left at Plaid, by item_id; one warning for those removed again."""
    findings = []
    left: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["orphan"] == "left":
            left.setdefault(str(row["item_id"]), row)  # rows are newest first
    for item_id, row in left.items():
        # Why the removal failed: the rule that cause names, as for any logged failure.
        remove_fix = fix_for({"cause": row["orphan_cause"], "error_code": row["error_code"]})
        findings.append(
            Finding(
                GROUP_LOGS,
                "orphan left",
                "problem",
                f"item_id {item_id}: exchanged at Plaid {row['last_seen']} (request_id "
                f"{row['request_id']}, plaid_request_id {row['plaid_request_id']}), then "
                f"neither stored ({row['cause']}) nor removed at Plaid ({row['orphan_cause']}): "
                "it is live at Plaid, billed, with no record in the Items table",
                f"remove item_id {item_id} through Plaid, quoting it and plaid_request_id "
                "to Plaid support (the function kept no access token for it); what made the "
                f"removal fail: {remove_fix}",
            )
        )
    removed = [row for row in rows if row["orphan"] == "removed"]
    if removed:
        last = removed[0]
        findings.append(
            Finding(
                GROUP_LOGS,
                "orphan removed",
                "warn",
                f"{len(removed)} in {since}: an Item exchanged at Plaid could not be stored and "
                f"was removed at Plaid again (nothing left over); last item_id {last['item_id']} "
                f"{last['last_seen']} (request_id {last['request_id']}): {last['cause']}",
                last["fix"],
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


def error_reason(exc: Exception) -> str:
    """A botocore error in a few words: its code and message, or its type."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"
