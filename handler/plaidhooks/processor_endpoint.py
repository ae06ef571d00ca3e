"""One SQS batch of webhooks in, `batchItemFailures` out, and one log line per webhook:
`webhook_applied` (with its `outcome`) or `webhook_failed`. A failed webhook fails every later
one of its group (its Item) in the batch too, unapplied, so that one Item's webhooks are never
applied out of the queue's order (SQS FIFO's partial-batch rule).

Plaid is called (for the login pair) only while the invocation has time for it and for the
write after it: a webhook that finds too little time left fails with NO_TIME and comes back.
"""

from collections.abc import Callable, Mapping
from typing import Any, Final

from linktoken import observability as obs
from linktoken.endpoint import Invocation
from linktoken.problems import Problem
from plaidhooks.processor import PoisonMessage
from plaidhooks.processor_container import ProcessorContainer
from plaidhooks.queue import SIGNED_AT

# Kept back from Plaid's call for what follows it: the conditional write (two DynamoDB
# attempts of 1 s + 2 s and a retry delay of up to 1 s) and the batch's answer.
WRITE_RESERVE_S: Final = 2 * 3.0 + 1.0 + 0.5


def handle_batch(
    event: Any, container: ProcessorContainer, invocation: Invocation
) -> dict[str, Any]:
    """One SQS batch; the ids of the messages SQS must deliver again. Never raises."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    failures: list[dict[str, str]] = []
    failed_groups: set[str] = set()
    remaining = _remaining(invocation)
    for record in records if isinstance(records, list) else []:
        message_id = _text(record, "messageId")
        group = _text(record.get("attributes"), "MessageGroupId") if record else ""
        if group in failed_groups:  # behind a failed webhook of the same Item: keep the order
            failures.append({"itemIdentifier": message_id})
            continue
        if not _apply(record, message_id, container, remaining):
            failures.append({"itemIdentifier": message_id})
            failed_groups.add(group)
    return {"batchItemFailures": failures}


def _apply(
    record: Any, message_id: str, container: ProcessorContainer, remaining: Callable[[], float]
) -> bool:
    """Apply one message; False when SQS must deliver it again."""
    fields: dict[str, Any] = {"message_id": message_id, "receive_count": _receive_count(record)}
    try:
        if container.processor is None:
            raise Problem("MISCONFIGURED", cause=f"configuration: {container.config_error}")
        applied = container.processor.apply(_text(record, "body"), _signed_at(record), remaining)
    except Problem as problem:
        obs.count_failure(problem.code, "WebhookFailed")
        obs.logger.error(  # with Plaid's fields (its request_id) when Plaid refused
            "webhook_failed",
            extra=_present({**fields, **problem.log}, error_code=problem.code, cause=problem.cause),
        )
        return False
    except PoisonMessage as poison:
        obs.count_failure("POISON_MESSAGE", "WebhookFailed")
        obs.logger.error(
            "webhook_failed", extra={**fields, "error_code": "POISON_MESSAGE", "cause": str(poison)}
        )
        return False
    except Exception as exc:  # a bug: the message goes back to the queue, then its DLQ
        obs.count_failure("INTERNAL_ERROR", "WebhookFailed")
        obs.logger.exception(
            "webhook_failed",
            exc_info=exc,
            extra={**fields, "error_code": "INTERNAL_ERROR", "cause": "a bug: see the traceback"},
        )
        return False
    obs.count_by("WebhookApplied", "Outcome", applied.outcome)
    obs.logger.info(
        "webhook_applied", extra=_present({**fields, **applied.log}, outcome=applied.outcome)
    )
    return True


def _remaining(invocation: Invocation) -> Callable[[], float]:
    return lambda: invocation.get_remaining_time_in_millis() / 1000 - WRITE_RESERVE_S


def _signed_at(record: Any) -> int:
    attributes = record.get("messageAttributes") if isinstance(record, Mapping) else None
    value = attributes.get(SIGNED_AT) if isinstance(attributes, Mapping) else None
    text = value.get("stringValue") if isinstance(value, Mapping) else None
    if not isinstance(text, str) or not text.isdigit() or len(text) > 12:
        raise PoisonMessage("the message has no signed_at attribute")
    return int(text)


def _receive_count(record: Any) -> int | None:
    text = _text(
        record.get("attributes") if isinstance(record, Mapping) else None, "ApproximateReceiveCount"
    )
    return int(text) if text.isdigit() else None


def _text(mapping: Any, name: str) -> str:
    value = mapping.get(name) if isinstance(mapping, Mapping) else None
    return value if isinstance(value, str) else ""


def _present(log: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    return {k: v for k, v in {**log, **more}.items() if v is not None}
