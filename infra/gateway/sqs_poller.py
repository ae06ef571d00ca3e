"""Lambda's SQS event source mapping, played for `make serve`: a thread that long-polls one
queue and invokes its function's workers with each batch, then deletes what succeeded.

One batch (`run_batch`, which the Items test world drains its queue with too):

1. ReceiveMessage: AttributeNames and MessageAttributeNames All, up to the event's BatchSize
   (at most 10, SQS's limit per call; the deployed mapping may gather more from several calls,
   which no FIFO batch of 10 needs), waiting up to `wait_s` for one (long polling);
2. the function invoked with Lambda's SQS event (sqs_event.py);
3. DeleteMessage for each message the answer lets go (with ReportBatchItemFailures all but the
   `batchItemFailures`); the function raising, crashing, timing out or answering what Lambda
   cannot read deletes nothing: the whole batch comes back after the visibility timeout, and
   after maxReceiveCount receives SQS moves it to the dead-letter queue.

`QueuePoller` repeats that until stopped. It is one thread: a batch is finished before the
next is received (the deployed mapping runs several at once, across message groups). It never
raises out of its thread: a failing SQS is said once (then every `RETRY_PAUSE_S`, quietly) and
retried; stopping ends it within a poll (`wait_s`, 1 s) plus any batch in a worker, which the
pool's own stop cuts short. Each batch is one log line (logger `infra.gateway.sqs_poller`):
DEBUG, WARNING when the whole batch was left for redelivery.

    poller = QueuePoller(source, pool.invoke)
    poller.start()
    ...
    poller.request_stop(); pool.stop(); poller.join()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.gateway.lambda_workers import Failed, Invoked, say
from infra.gateway.sqs_event import deletable, failed_message_ids, sqs_event

log = logging.getLogger(__name__)

MAX_MESSAGES_PER_RECEIVE = 10  # SQS's limit for one ReceiveMessage
POLL_WAIT_S = 1  # a long poll short enough that Ctrl-C stops the thread within a second
RETRY_PAUSE_S = 1.0  # after a failed SQS call

Invoke = Callable[[dict[str, Any]], Invoked | Failed]


@dataclass(frozen=True)
class QueueSource:
    """One SQS event source of the template, bound to a queue: `client` is a botocore SQS
    client for the SQS that holds `queue_url`; `function` names the consumer in log lines."""

    client: Any
    queue_url: str
    queue_arn: str
    region: str
    function: str
    batch_size: int = 10
    report_batch_item_failures: bool = True

    @property
    def queue_name(self) -> str:
        return self.queue_arn.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class BatchOutcome:
    """What one batch came to: `left` messages stay for redelivery; `failure` says why the
    whole batch did (None when the function's answer was used)."""

    received: int
    deleted: int
    duration_ms: float
    failure: str | None = None

    @property
    def left(self) -> int:
        return self.received - self.deleted


def receive(source: QueueSource, wait_s: int) -> list[dict[str, Any]]:
    """One ReceiveMessage, as the event source mapping makes it."""
    answer = source.client.receive_message(
        QueueUrl=source.queue_url,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        MaxNumberOfMessages=max(1, min(source.batch_size, MAX_MESSAGES_PER_RECEIVE)),
        WaitTimeSeconds=wait_s,
    )
    messages: list[dict[str, Any]] = answer.get("Messages") or []
    return messages


def run_batch(source: QueueSource, invoke: Invoke, wait_s: int = 0) -> BatchOutcome | None:
    """Receive one batch, invoke the function with it, delete what it let go; None when the
    queue had nothing within `wait_s`. SQS's own errors are raised (botocore's)."""
    messages = receive(source, wait_s)
    if not messages:
        return None
    started = time.perf_counter()
    outcome = invoke(sqs_event(messages, source.queue_arn, source.region))
    failure = None
    if isinstance(outcome, Failed):
        done: list[Any] = []
        failure = outcome.reason
    else:
        done = deletable(messages, outcome.result, source.report_batch_item_failures)
        ids = [str(message["MessageId"]) for message in messages]
        if source.report_batch_item_failures and failed_message_ids(outcome.result, ids) is None:
            failure = "its answer's batchItemFailures are not Lambda's shape"
    for message in done:
        source.client.delete_message(
            QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    return BatchOutcome(len(messages), len(done), elapsed, failure)


def describe(source: QueueSource, outcome: BatchOutcome) -> str:
    """The batch's log line."""
    line = (
        f"serve: queue {source.queue_name} -> {source.function}: {outcome.received} received,"
        f" {outcome.deleted} deleted, {outcome.left} left for redelivery"
        f" ({outcome.duration_ms:g} ms)"
    )
    return line + (f": {outcome.failure}" if outcome.failure else "")


class QueuePoller:
    """`run_batch` in a loop on a thread of its own until `request_stop` (see the module
    docstring)."""

    def __init__(
        self,
        source: QueueSource,
        invoke: Invoke,
        wait_s: int = POLL_WAIT_S,
        say: Callable[[str], None] = say,
    ) -> None:
        self.source = source
        self._invoke = invoke
        self._wait_s = wait_s
        self._say = say
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"sqs-poller-{source.function}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """No batch is received after this; one in a worker is still answered (or cut short
        by the pool's stop)."""
        self._stopping.set()

    def join(self, timeout: float = 5.0) -> None:
        """Stop, and wait for the thread to end (at most `timeout` seconds)."""
        self.request_stop()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        failing = False
        while not self._stopping.is_set():
            try:
                outcome = run_batch(self.source, self._invoke, self._wait_s)
            except Exception as exc:  # moto gone, a bug here: never the server's end
                if self._stopping.is_set():
                    return
                if not failing:  # once per failing spell, not once a second
                    self._say(
                        f"serve: queue {self.source.queue_name}: polling failed"
                        f" ({type(exc).__name__}: {exc}); retrying every {RETRY_PAUSE_S:g} s"
                    )
                failing = True
                self._stopping.wait(RETRY_PAUSE_S)
                continue
            if failing:
                self._say(f"serve: queue {self.source.queue_name}: SQS answers again")
                failing = False
            if outcome is not None:
                level = logging.WARNING if outcome.failure else logging.DEBUG
                log.log(level, describe(self.source, outcome))
