"""The queue between the receiver and the processor: one message per verified webhook.

The body is Plaid's raw webhook body, unchanged, so the FIFO queue's content-based
de-duplication drops a redelivery of the same webhook within its five minutes. The group is the
Item (one Item's webhooks are applied one at a time, in order); `signed_at` (the verified
`iat`) travels as a message attribute for the processor's ordering.
"""

from dataclasses import dataclass
from typing import Final

from linktoken.aws_clients import JsonCall
from linktoken.aws_json import AwsServiceError
from linktoken.xray import Span, no_span
from plaiditems.aws_calls import aws_call, storage_problem

NO_ITEM_GROUP: Final = "no-item"
SIGNED_AT: Final = "signed_at"


@dataclass(frozen=True, slots=True)
class QueuedWebhook:
    body: str
    group: str
    signed_at: int


class WebhookQueue:
    def __init__(self, client: JsonCall, queue_url: str, span: Span = no_span) -> None:
        self._client = client
        self._url = queue_url
        self._span = span

    def send(self, message: QueuedWebhook) -> str | None:
        """Enqueue; the SQS message id. Raises `Problem` (STORAGE_UNAVAILABLE, MISCONFIGURED)."""
        params = {
            "QueueUrl": self._url,
            "MessageBody": message.body,
            "MessageGroupId": message.group,
            "MessageAttributes": {
                SIGNED_AT: {"DataType": "Number", "StringValue": str(message.signed_at)}
            },
        }
        try:
            answer = aws_call(self._client, self._span, "sqs", "SendMessage", params)
        except AwsServiceError as exc:
            raise storage_problem("sqs", "SendMessage", exc) from None
        message_id = answer.get("MessageId")
        return message_id if isinstance(message_id, str) else None

    def close(self) -> None:
        self._client.close()
