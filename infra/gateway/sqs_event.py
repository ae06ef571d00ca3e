"""Lambda's SQS event source mapping, its two pure halves: the event a batch of received
messages becomes, and which of them the function's answer lets it delete.

The event is the shape Lambda sends ("Using Lambda with Amazon SQS", the example FIFO event):

    {"Records": [{"messageId", "receiptHandle", "body",
                  "attributes": {"ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                 "ApproximateFirstReceiveTimestamp", "SequenceNumber",
                                 "MessageGroupId", "MessageDeduplicationId"},
                  "messageAttributes": {name: {"stringValue", "stringListValues": [],
                                               "binaryListValues": [], "dataType"}},
                  "md5OfBody", "eventSource": "aws:sqs", "eventSourceARN", "awsRegion"}]}

built from ReceiveMessage's messages as botocore parses them (`Attributes`, `MessageAttributes`
with `StringValue`/`BinaryValue` bytes/`DataType`). An attribute SQS did not return (moto has
no SequenceNumber) is absent, not invented.

The answer, with ReportBatchItemFailures, is read as Lambda reads it ("Implementing partial
batch responses"): no answer, an empty or null `batchItemFailures` is a success of the whole
batch; each `{"itemIdentifier": messageId}` stays in the queue; anything Lambda cannot use (not
an object, `batchItemFailures` not a list, an identifier missing, empty, not a string or not a
message of the batch) fails the whole batch. Without ReportBatchItemFailures a returned answer
deletes the whole batch.

    event = sqs_event(messages, queue_arn, "us-east-1")
    done = deletable(messages, answer, report_batch_item_failures=True)   # messages to delete
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

# The system attributes Lambda passes on, as ReceiveMessage (AttributeNames All) names them.
RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
)


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """One message attribute as Lambda writes it: camelCase, both list fields present, a
    binary value as base64 text."""
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        raw = value["BinaryValue"]
        attribute["binaryValue"] = base64.b64encode(
            raw if isinstance(raw, bytes) else str(raw).encode()
        ).decode("ascii")
    attribute["stringListValues"] = list(value.get("StringListValues") or [])
    attribute["binaryListValues"] = list(value.get("BinaryListValues") or [])
    attribute["dataType"] = value.get("DataType", "String")
    return attribute


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One received message as a record of Lambda's SQS event."""
    received = message.get("Attributes") or {}
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {name: received[name] for name in RECORD_ATTRIBUTES if name in received},
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda invokes the function with for this batch, in the order received."""
    return {"Records": [sqs_record(message, queue_arn, region) for message in messages]}


def failed_message_ids(answer: Any, message_ids: Sequence[str]) -> set[str] | None:
    """The messages a ReportBatchItemFailures answer leaves in the queue; None when Lambda
    would fail the whole batch (an answer it cannot use)."""
    if answer is None:
        return set()
    if not isinstance(answer, Mapping):
        return None
    failures = answer.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return None  # null, empty, a bad key or a message of no batch: all of it again
        failed.add(identifier)
    return failed


def deletable(
    messages: Sequence[Mapping[str, Any]], answer: Any, report_batch_item_failures: bool
) -> list[Mapping[str, Any]]:
    """The messages of a batch the function answered (returned, not raised) that Lambda
    deletes: all of them, or with ReportBatchItemFailures those not named as failures."""
    if not report_batch_item_failures:
        return list(messages)
    failed = failed_message_ids(answer, [str(message["MessageId"]) for message in messages])
    if failed is None:
        return []
    return [message for message in messages if message["MessageId"] not in failed]
