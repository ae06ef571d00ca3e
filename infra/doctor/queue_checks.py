"""`--function` / `--stack`: the webhook queues, read with GetQueueAttributes through the
service's own SQS client (`aws_reads`), so a fault is named as the receiver's log line names it.

- the queue (the receiver's WEBHOOK_QUEUE_URL, or the stack's output WebhookQueueUrl): it
  exists, is FIFO, de-duplicates by content (the receiver sends no de-duplication id: without
  it every SendMessage is refused) and has a dead-letter queue;
- the dead-letter queue (the stack's output WebhookDeadLetterQueueUrl): it exists, is FIFO, and
  how many webhooks wait in it (a problem when any: each is an Item whose health is not what
  Plaid says).

Nothing read here is secret: names, ARNs, counts. No message is received or read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from infra.doctor import aws_reads
from infra.doctor.aws_reads import ClientFactory, Missing, Skip, default_client
from infra.doctor.findings import Finding
from linktoken.aws_clients import SQS
from linktoken.config import SETTINGS

GROUP = "webhook queue"
QUEUE_SETTING: Final = next(s for s in SETTINGS if s.variable == "WEBHOOK_QUEUE_URL")
# The saved Logs Insights query (template.yaml) whose webhook_failed lines say why.
OUTCOMES_QUERY: Final = "11 Webhook outcomes by type and code"
_REDEPLOY: Final = (
    "deploy the stack again (template.yaml's WebhookQueue and WebhookDeadLetterQueue)"
)


@dataclass(slots=True)
class QueueState:
    """What was found, and what later checks use: the queue's ARN, its visible messages."""

    findings: list[Finding] = field(default_factory=list)
    arn: str | None = None
    messages: int | None = None


def check_queue(url: str, client_factory: ClientFactory = default_client) -> QueueState:
    """The webhook queue: there, FIFO, content-based de-duplication, a redrive policy."""
    state = QueueState()
    attributes = _attributes(url, "queue", client_factory, state)
    if attributes is None:
        return state
    fifo = attributes.get("FifoQueue") == "true"
    dedup = attributes.get("ContentBasedDeduplication") == "true"
    if not fifo or not dedup:
        missing = "not FIFO" if not fifo else "FIFO without content-based de-duplication"
        state.findings.append(
            Finding(
                GROUP,
                "queue",
                "problem",
                f"{url} is {missing}: the receiver sends each webhook with a group id and no "
                "de-duplication id, which only a FIFO queue de-duplicating by content accepts: "
                "every SendMessage fails and every webhook is answered 503",
                f"{QUEUE_SETTING.fix}, or {_REDEPLOY}",
            )
        )
    else:
        waiting = "?" if state.messages is None else str(state.messages)
        state.findings.append(
            Finding(
                GROUP,
                "queue",
                "ok",
                f"{url}: FIFO, content-based de-duplication, {waiting} message(s) waiting",
            )
        )
    state.findings.append(_redrive(url, attributes.get("RedrivePolicy")))
    return state


def check_dead_letters(
    url: str,
    queue_arn: str | None,
    stack: str = "<stack>",
    client_factory: ClientFactory = default_client,
) -> QueueState:
    """The dead-letter queue: there, FIFO, and empty (`queue_arn`: where a redrive sends its
    messages, when known; `stack`: whose saved query to read)."""
    state = QueueState()
    attributes = _attributes(url, "dead-letter queue", client_factory, state)
    if attributes is None:
        return state
    if attributes.get("FifoQueue") != "true":
        state.findings.append(
            Finding(
                GROUP,
                "dead-letter queue",
                "problem",
                f"{url} is not FIFO: a FIFO queue's dead-letter queue must be FIFO, so failed "
                "webhooks cannot move there",
                _REDEPLOY,
            )
        )
        return state
    count = state.messages or 0
    if count == 0:
        state.findings.append(Finding(GROUP, "dead-letter queue", "ok", f"{url}: FIFO, empty"))
        return state
    redrive = f"aws sqs start-message-move-task --source-arn {state.arn or '<its ARN>'}"
    if queue_arn:
        redrive += f" --destination-arn {queue_arn}"
    state.findings.append(
        Finding(
            GROUP,
            "dead-letter queue",
            "problem",
            f"{url}: {count} webhook(s) the processor failed five times: the Items they name do "
            "not have the health Plaid gave them",
            f'read the saved query "{stack}/{OUTCOMES_QUERY}" (its webhook_failed lines, and '
            f"the processor's recent failures here, say why), fix the cause, then redrive: "
            f"{redrive}",
        )
    )
    return state


def _attributes(
    url: str, check: str, client_factory: ClientFactory, state: QueueState
) -> dict[str, str] | None:
    """GetQueueAttributes, or None with the finding that says why not."""
    try:
        call = aws_reads.client(client_factory, SQS, GROUP, check, "GetQueueAttributes")
    except Skip as skip:
        state.findings.append(skip.finding)
        return None
    params = {"QueueUrl": url, "AttributeNames": ["All"]}
    try:
        answer = aws_reads.read(call, "sqs", "GetQueueAttributes", params, GROUP, check)
    except Skip as skip:
        state.findings.append(skip.finding)
        return None
    except Missing as missing:
        fix = QUEUE_SETTING.fix if check == "queue" else _REDEPLOY
        cause = missing.cause
        if check != "queue":  # the receiver's words name its own queue and variable
            cause = f"sqs GetQueueAttributes: {url} does not exist in this region"
        state.findings.append(Finding(GROUP, check, "problem", cause, fix))
        return None
    finally:
        call.close()
    attributes: dict[str, Any] = answer.get("Attributes") or {}
    state.arn = str(attributes["QueueArn"]) if attributes.get("QueueArn") else None
    count = str(attributes.get("ApproximateNumberOfMessages", ""))
    state.messages = int(count) if count.isdigit() else None
    return {str(k): str(v) for k, v in attributes.items()}


def _redrive(url: str, policy: str | None) -> Finding:
    """Without a redrive policy a webhook that always fails is retried until the queue's
    retention ends, then lost without a trace."""
    try:
        doc = json.loads(policy) if policy else {}
    except ValueError:
        doc = {}
    target = doc.get("deadLetterTargetArn") if isinstance(doc, dict) else None
    if not target:
        return Finding(
            GROUP,
            "redrive policy",
            "problem",
            f"{url} has no dead-letter queue: a webhook the processor always fails is retried "
            "until the queue's retention ends, then lost, and no alarm pages",
            _REDEPLOY,
        )
    tries = doc.get("maxReceiveCount", "?")
    return Finding(GROUP, "redrive policy", "ok", f"to {target} after {tries} failed receives")
