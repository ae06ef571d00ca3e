"""plaidhooks.processor_endpoint.handle_batch: the partial-batch answer SQS FIFO needs. A failed webhook
is retried, and so is every later one of the same Item in the batch (unapplied), while other
Items' webhooks go on; a message without its signing time is a poison message."""

from __future__ import annotations

from typing import Any

from infra.doubles.lambda_runtime import LambdaContext
from linktoken.problems import Problem
from plaidhooks.processor import Applied
from plaidhooks.processor_container import ProcessorContainer
from plaidhooks.processor_endpoint import handle_batch


def record(message_id: str, group: str, body: str = "{}", signed_at: str | None = "100") -> Any:
    attributes = {"MessageGroupId": group, "ApproximateReceiveCount": "1"}
    message_attributes = (
        {"signed_at": {"stringValue": signed_at, "dataType": "Number"}} if signed_at else {}
    )
    return {
        "messageId": message_id,
        "body": body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "eventSource": "aws:sqs",
    }


class Processor:
    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.applied: list[str] = []

    def apply(self, body: str, signed_at: int, remaining: Any) -> Applied:
        if body in self.failing:
            raise Problem("STORAGE_UNAVAILABLE", cause="dynamodb UpdateItem answered Throttling")
        self.applied.append(body)
        return Applied("applied", {"item_id": body})

    def reset(self) -> None:
        pass


def test_a_failure_holds_back_the_rest_of_its_group_only() -> None:
    processor = Processor(failing={"a2"})
    container = ProcessorContainer(processor)  # type: ignore[arg-type]
    event = {
        "Records": [
            record("m1", "A", "a1"),
            record("m2", "A", "a2"),
            record("m3", "B", "b1"),
            record("m4", "A", "a3"),
            record("m5", "B", "b2"),
        ]
    }
    answer = handle_batch(event, container, LambdaContext())
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m4"}]}
    assert processor.applied == ["a1", "b1", "b2"]


def test_all_good_is_an_empty_failure_list() -> None:
    processor = Processor(failing=set())
    container = ProcessorContainer(processor)  # type: ignore[arg-type]
    answer = handle_batch({"Records": [record("m1", "A", "a1")]}, container, LambdaContext())
    assert answer == {"batchItemFailures": []}


def test_a_message_without_signed_at_is_failed_as_poison() -> None:
    processor = Processor(failing=set())
    container = ProcessorContainer(processor)  # type: ignore[arg-type]
    event = {"Records": [record("m1", "A", "a1", signed_at=None), record("m2", "C", "c1")]}
    answer = handle_batch(event, container, LambdaContext())
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert processor.applied == ["c1"]


def test_a_misconfigured_processor_fails_every_message_and_never_raises() -> None:
    container = ProcessorContainer(
        None, "ITEMS_TABLE and ITEMS_KEY_ID are required by the webhook processor"
    )
    answer = handle_batch(
        {"Records": [record("m1", "A"), record("m2", "B")]}, container, LambdaContext()
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert handle_batch("not an event", container, LambdaContext()) == {"batchItemFailures": []}
