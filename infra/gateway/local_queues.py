"""The template's SQS queues in a local SQS (moto), created as the stack creates them: each
queue's attributes from its AWS::SQS::Queue properties (FifoQueue, ContentBasedDeduplication,
MessageRetentionPeriod, ...), its dead-letter queue first and the RedrivePolicy's
maxReceiveCount, so a message the consumer fails that often moves there as deployed. One copy
for `make serve`, `make invoke` and the Items test world.

One difference, on purpose: the VisibilityTimeout is at most LOCAL_VISIBILITY_TIMEOUT_S (10 s;
360 s deployed), so a webhook the processor failed comes back within seconds on a laptop, not
minutes. The local poller (infra/gateway/sqs_poller.py) is one thread that finishes a batch
before it receives the next, so no batch is received again while it is still being processed.

    queue = create_queue(sqs_client, template, "WebhookQueue", "plaid-link-webhooks-dev.fifo")
    queue.url, queue.arn, queue.dead_letter_url
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from infra.gateway.cfn_template import queue_definition

LOCAL_VISIBILITY_TIMEOUT_S = 10
FIFO_SUFFIX = ".fifo"


@dataclass(frozen=True)
class LocalQueue:
    """A queue created for a local run, and its dead-letter queue (None, None without one)."""

    logical_id: str
    name: str
    url: str
    arn: str
    visibility_timeout_s: int
    dead_letter_url: str | None = None
    dead_letter_arn: str | None = None
    max_receive_count: int | None = None

    def describe(self) -> str:
        """For a banner: the queue by name, and where its failures go."""
        text = f"{self.name} (visibility {self.visibility_timeout_s} s locally)"
        if self.dead_letter_arn:
            dead_letters = self.dead_letter_arn.rsplit(":", 1)[-1]
            text += f", dead letters to {dead_letters} after {self.max_receive_count} receives"
        return text


def dead_letter_name(name: str) -> str:
    """The dead-letter queue's name beside `name`, as the template names the stack's:
    x.fifo -> x-dlq.fifo."""
    if name.endswith(FIFO_SUFFIX):
        return name.removesuffix(FIFO_SUFFIX) + "-dlq" + FIFO_SUFFIX
    return name + "-dlq"


def queue_name(name: str, fifo: bool) -> str:
    """A FIFO queue's name must end in .fifo (SQS refuses it otherwise)."""
    return name if not fifo or name.endswith(FIFO_SUFFIX) else name + FIFO_SUFFIX


def _fresh_queue(client: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    """An empty queue of that name (a second run in one process finds the first one's: moto
    keeps its state per process); its URL and ARN."""
    with contextlib.suppress(client.exceptions.QueueDoesNotExist):
        client.delete_queue(QueueUrl=client.get_queue_url(QueueName=name)["QueueUrl"])
    url = str(client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, str(arn["QueueArn"])


def create_queue(
    client: Any,
    template: dict[str, Any],
    logical_id: str,
    name: str,
    visibility_timeout_s: int = LOCAL_VISIBILITY_TIMEOUT_S,
) -> LocalQueue:
    """The queue `logical_id` of the template, empty, named `name` (and its dead-letter queue
    beside it); see the module docstring."""
    definition = queue_definition(template, logical_id)
    attributes = dict(definition.attributes)
    name = queue_name(name, attributes.get("FifoQueue") == "true")
    visibility = min(int(attributes.get("VisibilityTimeout", 30)), visibility_timeout_s)
    attributes["VisibilityTimeout"] = str(visibility)
    dead_url = dead_arn = None
    if definition.dead_letter_queue is not None:
        dead = queue_definition(template, definition.dead_letter_queue)
        dead_url, dead_arn = _fresh_queue(client, dead_letter_name(name), dict(dead.attributes))
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dead_arn, "maxReceiveCount": definition.max_receive_count}
        )
    url, arn = _fresh_queue(client, name, attributes)
    return LocalQueue(
        logical_id, name, url, arn, visibility, dead_url, dead_arn, definition.max_receive_count
    )
