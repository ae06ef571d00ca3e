"""infra/gateway/sqs_event.py: a received batch as Lambda's SQS event, and which messages a
ReportBatchItemFailures answer lets the event source mapping delete (Lambda's documented
rules), on messages written here as botocore parses ReceiveMessage."""

from __future__ import annotations

from typing import Any

import pytest

from infra.gateway.sqs_event import deletable, failed_message_ids, sqs_event

ARN = "arn:aws:sqs:us-east-1:123456789012:plaid-link-webhooks-dev.fifo"


def message(message_id: str = "m-1", **attributes: str) -> dict[str, Any]:
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"handle-{message_id}",
        "MD5OfBody": "9a0364b9e99bb480dd25e1f0284c8555",
        "Body": '{"webhook_type":"ITEM","webhook_code":"ERROR","item_id":"it-1"}',
        "Attributes": {
            "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
            "SentTimestamp": "1700000000000",
            "ApproximateReceiveCount": "2",
            "ApproximateFirstReceiveTimestamp": "1700000000100",
            "SequenceNumber": "18849496460467696128",
            "MessageDeduplicationId": "5f1c",
            "MessageGroupId": "it-1",
            **attributes,
        },
        "MD5OfMessageAttributes": "ecccac12bcd3c734c0d98d1d11072357",
        "MessageAttributes": {"signed_at": {"StringValue": "1700000000", "DataType": "Number"}},
    }


def test_a_batch_becomes_lambdas_sqs_event_record_by_record() -> None:
    event = sqs_event([message("m-1"), message("m-2")], ARN, "us-east-1")

    first, second = event["Records"]
    assert first == {
        "messageId": "m-1",
        "receiptHandle": "handle-m-1",
        "body": '{"webhook_type":"ITEM","webhook_code":"ERROR","item_id":"it-1"}',
        "attributes": {
            "ApproximateReceiveCount": "2",
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
            "ApproximateFirstReceiveTimestamp": "1700000000100",
            "SequenceNumber": "18849496460467696128",
            "MessageGroupId": "it-1",
            "MessageDeduplicationId": "5f1c",
        },
        "messageAttributes": {
            "signed_at": {
                "stringValue": "1700000000",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "Number",
            }
        },
        "md5OfBody": "9a0364b9e99bb480dd25e1f0284c8555",
        "eventSource": "aws:sqs",
        "eventSourceARN": ARN,
        "awsRegion": "us-east-1",
    }
    assert second["messageId"] == "m-2", "in the order received"
    assert list(event) == ["Records"]


def test_attributes_sqs_did_not_return_are_absent_and_binary_values_are_base64() -> None:
    received = message()
    del received["Attributes"]["SequenceNumber"]  # moto returns none
    received["Attributes"]["SomethingNew"] = "x"  # not one Lambda passes on
    received["MessageAttributes"] = {"raw": {"BinaryValue": b"\x00\xff", "DataType": "Binary"}}

    (record,) = sqs_event([received], ARN, "eu-west-1")["Records"]

    assert "SequenceNumber" not in record["attributes"]
    assert "SomethingNew" not in record["attributes"]
    assert record["messageAttributes"] == {
        "raw": {
            "binaryValue": "AP8=",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        }
    }
    assert record["awsRegion"] == "eu-west-1"


IDS = ["m-1", "m-2", "m-3"]


@pytest.mark.parametrize(
    ("answer", "failed"),
    [
        (None, set()),  # a null response: the whole batch succeeded
        ({}, set()),  # an empty response
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m-2"}]}, {"m-2"}),
        (
            {"batchItemFailures": [{"itemIdentifier": "m-3"}, {"itemIdentifier": "m-1"}]},
            {"m-1", "m-3"},
        ),
    ],
)
def test_a_partial_batch_answer_names_the_messages_left_in_the_queue(
    answer: Any, failed: set[str]
) -> None:
    assert failed_message_ids(answer, IDS) == failed


@pytest.mark.parametrize(
    "answer",
    [
        "not an object",
        ["m-1"],
        {"batchItemFailures": "m-1"},
        {"batchItemFailures": [{"itemIdentifier": ""}]},  # empty
        {"batchItemFailures": [{"itemIdentifier": None}]},  # null
        {"batchItemFailures": [{"id": "m-1"}]},  # a bad key name
        {"batchItemFailures": [{"itemIdentifier": "m-9"}]},  # no message of the batch
        {"batchItemFailures": [{"itemIdentifier": "m-1"}, "m-2"]},
    ],
)
def test_an_answer_lambda_cannot_use_fails_the_whole_batch(answer: Any) -> None:
    assert failed_message_ids(answer, IDS) is None
    assert deletable([message(i) for i in IDS], answer, report_batch_item_failures=True) == []


def test_only_the_messages_not_named_as_failures_are_deleted() -> None:
    batch = [message(i) for i in IDS]
    answer = {"batchItemFailures": [{"itemIdentifier": "m-2"}]}

    done = deletable(batch, answer, report_batch_item_failures=True)

    assert [m["MessageId"] for m in done] == ["m-1", "m-3"]


def test_without_partial_batch_responses_any_answer_deletes_the_whole_batch() -> None:
    batch = [message(i) for i in IDS]
    answer = {"batchItemFailures": [{"itemIdentifier": "m-2"}]}  # ignored, as Lambda does

    assert deletable(batch, answer, report_batch_item_failures=False) == batch
