"""`--stack`: the processor's SQS event source mapping, read with ListEventSourceMappings.

Lambda applies the queued webhooks only through it: a mapping that is missing, disabled or
failing leaves them in the queue (and, after five receives, in the dead-letter queue); one
without `ReportBatchItemFailures` reads the processor's `batchItemFailures` as a success and
deletes a failed webhook with its batch. Nothing read here is secret: names, ARNs, states.
"""

from __future__ import annotations

from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from infra.doctor.deployed import error_reason
from infra.doctor.findings import Finding

GROUP: Final = "webhook queue"
CHECK: Final = "event source"
# What template.yaml's WebhookProcessorFunction SQS event sets.
REPORTS_FAILURES: Final = "ReportBatchItemFailures"
FIFO_MAX_BATCH: Final = 10
_REDEPLOY: Final = "deploy the stack again (template.yaml's WebhookProcessorFunction SQS event)"


def check_event_source(function: str, queue_arn: str | None, lambda_client: Any) -> Finding:
    """The mapping from the stack's webhook queue (`queue_arn`) to the processor `function`."""
    if queue_arn is None:
        return Finding(GROUP, CHECK, "skip", "not checked: the webhook queue's ARN is unknown")
    try:
        mappings = _mappings(function, lambda_client)
    except (ClientError, BotoCoreError) as exc:
        return Finding(
            GROUP,
            CHECK,
            "skip",
            f"could not read it: ListEventSourceMappings {function}: {error_reason(exc)} "
            "(read with your AWS profile and region, not the function's role)",
            "grant lambda:ListEventSourceMappings to the caller, or check the region",
        )
    found = [m for m in mappings if m.get("EventSourceArn") == queue_arn]
    if not found:
        return Finding(
            GROUP,
            CHECK,
            "problem",
            f"{function} has no event source mapping from {queue_arn}: nothing applies the "
            "queued webhooks, so no Item's health changes",
            _REDEPLOY,
        )
    return _judge(function, found[0])


def _judge(function: str, mapping: dict[str, Any]) -> Finding:
    uuid = str(mapping.get("UUID", "?"))
    state = str(mapping.get("State", "?"))
    if state != "Enabled":
        why = mapping.get("StateTransitionReason") or mapping.get("LastProcessingResult") or ""
        return Finding(
            GROUP,
            CHECK,
            "problem",
            f"{uuid} ({function}) is {state}{f': {why}' if why else ''}: the queued webhooks "
            "wait, and move to the dead-letter queue after five receives",
            f"aws lambda update-event-source-mapping --uuid {uuid} --enabled"
            if state == "Disabled"
            else "wait for it to be Enabled, or deploy the stack again",
        )
    if REPORTS_FAILURES not in (mapping.get("FunctionResponseTypes") or []):
        return Finding(
            GROUP,
            CHECK,
            "problem",
            f"{uuid} ({function}) does not report batch item failures: Lambda takes the "
            "processor's answer as a success and deletes a webhook it failed with its batch",
            _REDEPLOY,
        )
    batch = int(mapping.get("BatchSize") or 0)
    return Finding(
        GROUP,
        CHECK,
        "ok" if 0 < batch <= FIFO_MAX_BATCH else "warn",
        f"{uuid} ({function}): Enabled, batches of up to {batch}, reports batch item failures",
        None if 0 < batch <= FIFO_MAX_BATCH else f"a FIFO queue gives at most {FIFO_MAX_BATCH}",
    )


def _mappings(function: str, lambda_client: Any) -> list[dict[str, Any]]:
    """Every page of ListEventSourceMappings for the function."""
    mappings: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"FunctionName": function}
    while True:
        page = lambda_client.list_event_source_mappings(**kwargs)
        mappings.extend(page.get("EventSourceMappings") or [])
        if not page.get("NextMarker"):
            return mappings
        kwargs["Marker"] = page["NextMarker"]
