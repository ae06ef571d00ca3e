"""infra/gateway/sqs_poller.py, the event source mapping make serve plays, against an SQS
written here: what it receives, what it invokes the function with, what it deletes (only the
successes; nothing when the function fails), and a poller thread that logs each batch,
outlives SQS's failures and stops when told."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import pytest

from infra.gateway import sqs_poller
from infra.gateway.lambda_workers import Failed, Invoked
from infra.gateway.sqs_event import sqs_event
from infra.gateway.sqs_poller import QueuePoller, QueueSource, run_batch

URL = "http://127.0.0.1:5000/123456789012/hooks.fifo"
ARN = "arn:aws:sqs:us-east-1:123456789012:hooks.fifo"


def message(message_id: str, group: str = "it-1") -> dict[str, Any]:
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"handle-{message_id}",
        "MD5OfBody": "0" * 32,
        "Body": f'{{"item_id":"{group}","n":"{message_id}"}}',
        "Attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": group},
        "MessageAttributes": {"signed_at": {"StringValue": "1700000000", "DataType": "Number"}},
    }


class FakeSqs:
    """Answers ReceiveMessage with the batches given (an exception is raised instead), then
    nothing; records every call."""

    def __init__(self, *batches: list[dict[str, Any]] | Exception) -> None:
        self.batches = list(batches)
        self.receives: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.lock = threading.Lock()

    def receive_message(self, **params: Any) -> dict[str, Any]:
        with self.lock:
            self.receives.append(params)
            batch = self.batches.pop(0) if self.batches else None
        if isinstance(batch, Exception):
            raise batch
        if not batch:
            time.sleep(0.01)  # as a long poll waits; no busy loop in the thread tests
            return {}
        return {"Messages": batch}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        assert QueueUrl == URL
        with self.lock:
            self.deleted.append(ReceiptHandle)


def source(client: FakeSqs, batch_size: int = 10, partial: bool = True) -> QueueSource:
    return QueueSource(
        client=client,
        queue_url=URL,
        queue_arn=ARN,
        region="us-east-1",
        function="Processor",
        batch_size=batch_size,
        report_batch_item_failures=partial,
    )


class Function:
    """The function's side: records each event, answers with `answer` (or fails)."""

    def __init__(self, answer: Any = None, failure: str | None = None) -> None:
        self.answer, self.failure = answer, failure
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> Invoked | Failed:
        self.events.append(event)
        if self.failure is not None:
            return Failed(self.failure, 5.0)
        return Invoked(self.answer, 5.0)


def test_a_batch_is_received_as_the_mapping_receives_it_and_sent_as_lambdas_event() -> None:
    batch = [message("m-1"), message("m-2", group="it-2")]
    sqs, function = FakeSqs(batch), Function({"batchItemFailures": []})

    outcome = run_batch(source(sqs, batch_size=25), function, wait_s=1)

    assert sqs.receives == [
        {
            "QueueUrl": URL,
            "AttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
            "MaxNumberOfMessages": 10,  # SQS's most per call, whatever the BatchSize
            "WaitTimeSeconds": 1,
        }
    ]
    assert function.events == [sqs_event(batch, ARN, "us-east-1")]
    assert outcome is not None
    assert (outcome.received, outcome.deleted, outcome.left, outcome.failure) == (2, 2, 0, None)
    assert sqs.deleted == ["handle-m-1", "handle-m-2"]


def test_a_smaller_batch_size_is_what_is_asked_for() -> None:
    sqs = FakeSqs([message("m-1")])
    run_batch(source(sqs, batch_size=3), Function())
    assert sqs.receives[0]["MaxNumberOfMessages"] == 3


def test_only_the_successes_are_deleted_the_reported_failures_stay() -> None:
    sqs = FakeSqs([message("m-1"), message("m-2"), message("m-3")])
    function = Function({"batchItemFailures": [{"itemIdentifier": "m-2"}]})

    outcome = run_batch(source(sqs), function)

    assert sqs.deleted == ["handle-m-1", "handle-m-3"]
    assert outcome is not None and (outcome.deleted, outcome.left) == (2, 1)
    assert outcome.failure is None, "a partial failure is an answer, not a failed batch"


@pytest.mark.parametrize(
    "reason", ["Processor timed out after 30 s", "the worker (pid 7, Processor) died"]
)
def test_a_crash_or_a_timeout_leaves_the_whole_batch_for_redelivery(reason: str) -> None:
    sqs = FakeSqs([message("m-1"), message("m-2")])

    outcome = run_batch(source(sqs), Function(failure=reason))

    assert sqs.deleted == []
    assert outcome is not None
    assert (outcome.deleted, outcome.left, outcome.failure) == (0, 2, reason)


def test_an_answer_lambda_cannot_read_leaves_the_whole_batch() -> None:
    sqs = FakeSqs([message("m-1"), message("m-2")])

    outcome = run_batch(source(sqs), Function({"batchItemFailures": [{"itemIdentifier": ""}]}))

    assert sqs.deleted == []
    assert outcome is not None and outcome.left == 2
    assert outcome.failure == "its answer's batchItemFailures are not Lambda's shape"


def test_without_partial_batch_responses_an_answer_deletes_everything() -> None:
    sqs = FakeSqs([message("m-1"), message("m-2")])
    answer = {"batchItemFailures": [{"itemIdentifier": "m-1"}]}

    run_batch(source(sqs, partial=False), Function(answer))

    assert sqs.deleted == ["handle-m-1", "handle-m-2"]


def test_an_empty_queue_invokes_nothing() -> None:
    function = Function()
    assert run_batch(source(FakeSqs()), function) is None
    assert function.events == []


def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_poller_logs_one_debug_line_per_batch_and_a_warning_for_a_failed_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sqs = FakeSqs([message("m-1"), message("m-2")], [message("m-3")])
    answers = iter([Invoked({"batchItemFailures": [{"itemIdentifier": "m-2"}]}, 1.0)])

    def invoke(event: dict[str, Any]) -> Invoked | Failed:
        return next(answers, Failed("Processor timed out after 30 s", 30_000.0))

    caplog.set_level(logging.DEBUG, logger="infra.gateway.sqs_poller")
    poller = QueuePoller(source(sqs), invoke, wait_s=0, say=lambda line: None)
    poller.start()
    wait_until(lambda: len(caplog.records) == 2)
    poller.join()

    first, second = caplog.records
    assert first.levelno == logging.DEBUG
    assert re.fullmatch(
        r"serve: queue hooks\.fifo -> Processor: 2 received, 1 deleted, 1 left for redelivery"
        r" \([\d.]+ ms\)",
        first.getMessage(),
    )
    assert second.levelno == logging.WARNING
    assert re.fullmatch(
        r"serve: queue hooks\.fifo -> Processor: 1 received, 0 deleted, 1 left for redelivery"
        r" \([\d.]+ ms\): Processor timed out after 30 s",
        second.getMessage(),
    )
    assert sqs.deleted == ["handle-m-1"]


def test_sqs_failing_is_said_once_retried_and_never_ends_the_poller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqs_poller, "RETRY_PAUSE_S", 0.05)
    said: list[str] = []
    sqs = FakeSqs(ConnectionError("moto gone"), ConnectionError("still gone"), [message("m-1")])
    function = Function()
    poller = QueuePoller(source(sqs), function, wait_s=0, say=said.append)

    poller.start()
    wait_until(lambda: sqs.deleted == ["handle-m-1"], timeout=10)
    poller.join()

    assert said == [
        "serve: queue hooks.fifo: polling failed (ConnectionError: moto gone); retrying every 0.05 s",
        "serve: queue hooks.fifo: SQS answers again",
    ]
    assert len(function.events) == 1


def test_a_bug_in_the_invocation_does_not_end_the_poller_either() -> None:
    sqs = FakeSqs([message("m-1")], [message("m-2")])
    calls: list[str] = []

    def invoke(event: dict[str, Any]) -> Invoked | Failed:
        calls.append(event["Records"][0]["messageId"])
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return Invoked(None, 1.0)

    poller = QueuePoller(source(sqs), invoke, wait_s=0, say=lambda line: None)
    poller.start()
    wait_until(lambda: sqs.deleted == ["handle-m-2"], timeout=10)
    poller.join()

    assert calls == ["m-1", "m-2"], "m-1 was left (not deleted), m-2 went on"


def test_the_poller_stops_when_told_and_receives_nothing_after() -> None:
    sqs = FakeSqs()
    poller = QueuePoller(source(sqs), Function(), wait_s=0, say=lambda line: None)
    poller.start()
    wait_until(lambda: len(sqs.receives) > 2)

    poller.join(timeout=2)

    assert not poller.is_alive()
    before = len(sqs.receives)
    time.sleep(0.05)
    assert len(sqs.receives) == before
