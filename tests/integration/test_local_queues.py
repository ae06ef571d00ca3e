"""The webhook queue as the local runs create it in moto (infra/gateway/local_queues.py, used by
infra/invoke/local_env.py for make serve / make invoke and by the Items world): the template's
FIFO queue with content-based de-duplication and its dead-letter queue after maxReceiveCount
receives, a short visibility timeout locally, empty at every run; and the table's ByItemId
index, which the processor queries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.doubles.items_world import moto_client
from infra.doubles.moto_server import moto_server
from infra.gateway.cfn_template import load_template
from infra.gateway.local_queues import LOCAL_VISIBILITY_TIMEOUT_S, create_queue, dead_letter_name
from infra.invoke.local_env import QueueTarget, local_backends

TEMPLATE = load_template()


@pytest.fixture
def sqs() -> Iterator[Any]:
    with moto_server() as endpoint:
        yield moto_client(endpoint, "sqs")


def attributes(sqs: Any, url: str) -> dict[str, str]:
    found: dict[str, str] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"
    ]
    return found


def unique(name: str = "hooks") -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}.fifo"


def test_the_queue_and_its_dead_letter_queue_are_the_templates(sqs: Any) -> None:
    name = unique()
    queue = create_queue(sqs, TEMPLATE, "WebhookQueue", name)

    assert queue.name == name
    assert queue.url.endswith(f"/{name}")
    assert queue.arn == f"arn:aws:sqs:us-east-1:123456789012:{name}"
    made = attributes(sqs, queue.url)
    assert (made["FifoQueue"], made["ContentBasedDeduplication"]) == ("true", "true")
    assert made["MessageRetentionPeriod"] == "345600"
    assert made["VisibilityTimeout"] == str(LOCAL_VISIBILITY_TIMEOUT_S) == "10", "360 deployed"
    assert json.loads(made["RedrivePolicy"]) == {
        "deadLetterTargetArn": queue.dead_letter_arn,
        "maxReceiveCount": 5,
    }
    assert queue.dead_letter_url is not None
    dead = attributes(sqs, queue.dead_letter_url)
    assert queue.dead_letter_arn == dead["QueueArn"]
    assert dead["QueueArn"].endswith(":" + name.removesuffix(".fifo") + "-dlq.fifo")
    assert (dead["FifoQueue"], dead["MessageRetentionPeriod"]) == ("true", "1209600")
    assert "RedrivePolicy" not in dead


def test_the_dead_letter_queue_is_named_beside_its_queue() -> None:
    assert dead_letter_name("plaid-link-webhooks-dev.fifo") == "plaid-link-webhooks-dev-dlq.fifo"
    assert dead_letter_name("plain") == "plain-dlq"


def test_a_fifo_queue_name_gets_its_suffix(sqs: Any) -> None:
    bare = f"hooks-{uuid.uuid4().hex[:6]}"
    assert create_queue(sqs, TEMPLATE, "WebhookQueue", bare).name == bare + ".fifo"


def test_the_same_body_twice_is_one_message_and_a_redelivered_one_ends_in_the_dlq(
    sqs: Any,
) -> None:
    queue = create_queue(sqs, TEMPLATE, "WebhookQueue", unique())
    for _ in range(2):  # Plaid's retry of the same webhook: the same raw body
        sqs.send_message(QueueUrl=queue.url, MessageBody='{"n":1}', MessageGroupId="it-1")

    for receive in range(1, 6):  # received and never deleted: the processor failed it
        answer = sqs.receive_message(QueueUrl=queue.url, AttributeNames=["All"])
        (message,) = answer["Messages"]
        assert message["Attributes"]["ApproximateReceiveCount"] == str(receive)
        sqs.change_message_visibility(
            QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )

    assert "Messages" not in sqs.receive_message(QueueUrl=queue.url), "the 6th goes to the DLQ"
    dead = sqs.receive_message(QueueUrl=queue.dead_letter_url)["Messages"]
    assert [m["Body"] for m in dead] == ['{"n":1}']


def test_a_second_run_in_one_process_starts_with_an_empty_queue(sqs: Any) -> None:
    name = unique()
    first = create_queue(sqs, TEMPLATE, "WebhookQueue", name)
    sqs.send_message(QueueUrl=first.url, MessageBody="left over", MessageGroupId="g")

    again = create_queue(sqs, TEMPLATE, "WebhookQueue", name)

    assert again.url == first.url
    assert "Messages" not in sqs.receive_message(QueueUrl=again.url)


def test_make_serve_and_make_invoke_point_the_functions_at_moto_s_queue() -> None:
    environ: dict[str, str] = {}
    with local_backends(environ) as backends:
        endpoint = environ["AWS_ENDPOINT_URL_SQS"]
        assert endpoint == environ["AWS_ENDPOINT_URL_DYNAMODB"], "the one moto server"
        url = environ["WEBHOOK_QUEUE_URL"]
        assert url.startswith(endpoint + "/") and url.endswith("/plaid-link-webhooks-dev.fifo")
        sqs = moto_client(endpoint, "sqs")
        arn = attributes(sqs, url)["QueueArn"]
        assert backends.queues == {"WebhookQueue": QueueTarget(url, endpoint, arn)}
        assert backends.webhooks.startswith(
            "plaid-link-webhooks-dev.fifo (visibility 10 s locally), dead letters to"
            " plaid-link-webhooks-dev-dlq.fifo after 5 receives in moto's SQS at"
        )
        sqs.send_message(QueueUrl=url, MessageBody="from the first run", MessageGroupId="g")
    again: dict[str, str] = {}
    with local_backends(again):
        sqs = moto_client(again["AWS_ENDPOINT_URL_SQS"], "sqs")
        assert "Messages" not in sqs.receive_message(QueueUrl=again["WEBHOOK_QUEUE_URL"])


def test_an_sqs_of_the_users_is_left_alone_and_polled_where_it_is() -> None:
    with moto_server() as theirs:
        environ = {
            "AWS_ENDPOINT_URL_SQS": theirs,
            "WEBHOOK_QUEUE_URL": f"{theirs}/123456789012/theirs.fifo",
        }
        with local_backends(environ) as backends:
            assert environ["WEBHOOK_QUEUE_URL"] == f"{theirs}/123456789012/theirs.fifo"
            assert backends.queues == {
                "WebhookQueue": QueueTarget(environ["WEBHOOK_QUEUE_URL"], theirs)
            }
            queues = moto_client(theirs, "sqs").list_queues().get("QueueUrls", [])
            assert not any(u.endswith("/theirs.fifo") for u in queues), "none made"


def test_with_real_aws_the_queue_is_the_stacks_and_no_local_poller_takes_it() -> None:
    real = {"AWS_PROFILE": "no-such-profile-for-this-test", "PLAID_SECRET_ID": "some/secret"}
    environ = dict(real)
    with local_backends(environ) as backends:
        assert "WEBHOOK_QUEUE_URL" not in environ, "infra/env.json's URL is no stack's"
        assert backends.queues == {}
        assert backends.webhooks == (
            "NOT configured: with real AWS set WEBHOOK_QUEUE_URL (the stack's WebhookQueueUrl"
            " output)"
        )
    url = "https://sqs.us-east-1.amazonaws.com/111122223333/stack-plaid-webhooks.fifo"
    environ = {**real, "WEBHOOK_QUEUE_URL": url}
    with local_backends(environ) as backends:
        assert backends.queues == {}, "the stack's own event source mapping consumes it"
        assert backends.webhooks == (
            f"{url} in AWS (the stack's event source mapping consumes it, not make serve)"
        )


def test_the_local_table_has_the_index_the_processor_queries() -> None:
    environ: dict[str, str] = {}
    with local_backends(environ):
        dynamodb = moto_client(environ["AWS_ENDPOINT_URL_DYNAMODB"], "dynamodb")
        table = environ["ITEMS_TABLE"]
        dynamodb.put_item(
            TableName=table,
            Item={"pk": {"S": "owner#x"}, "sk": {"S": "item#it-1"}, "item_id": {"S": "it-1"}},
        )
        found = dynamodb.query(
            TableName=table,
            IndexName="ByItemId",
            KeyConditionExpression="item_id = :id",
            ExpressionAttributeValues={":id": {"S": "it-1"}},
        )["Items"]
    assert found == [{"pk": {"S": "owner#x"}, "sk": {"S": "item#it-1"}, "item_id": {"S": "it-1"}}]
