"""The Items world's webhook path, in-process: a webhook signed with the stand-in's key through
the receiver's handler, into the world's FIFO queue on moto, drained into the processor's
handler with the event make serve's poller builds (the same `run_batch`), and the Item's health
read back through GET /items. A batch the processor fails stays in the queue, comes back, and
after five receives is in the dead-letter queue, as deployed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers_items import World, body_of, items_world


@pytest.fixture
def world() -> Iterator[World]:
    with items_world(queue_visibility_s=1) as made:
        yield made


def item_error(item_id: str) -> dict[str, Any]:
    return {
        "webhook_type": "ITEM",
        "webhook_code": "ERROR",
        "item_id": item_id,
        "error": {"error_type": "ITEM_ERROR", "error_code": "ITEM_LOGIN_REQUIRED"},
        "environment": "sandbox",
    }


def stored_item(world: World, sub: str) -> str:
    created = world.exchange(sub, world.public_token())
    assert created["statusCode"] == 201, created
    return str(body_of(created)["item_id"])


def health(world: World, sub: str) -> list[str]:
    return [item["health"] for item in body_of(world.list(sub))["items"]]


def test_a_signed_webhook_goes_through_the_queue_and_changes_the_items_health(
    world: World,
) -> None:
    item_id = stored_item(world, "hook-user")
    assert health(world, "hook-user") == ["healthy"]
    world.plaid.reset_login_item(item_id)  # what the processor's /item/get then finds

    answer = world.webhook(*world.signed(item_error(item_id)))
    assert answer["statusCode"] == 200, answer
    assert body_of(answer)["received"] is True
    assert health(world, "hook-user") == ["healthy"], "not before the processor ran"

    (batch,) = world.drain_webhooks()

    assert (batch.received, batch.deleted, batch.failure) == (1, 1, None)
    assert health(world, "hook-user") == ["login_required"]
    assert world.drain_webhooks() == [], "deleted once applied"


def test_the_processor_gets_the_pollers_event_for_the_receivers_message(world: World) -> None:
    item_id = stored_item(world, "shape-user")
    signed_at = int(time.time()) - 5
    body, verification = world.signed(item_error(item_id), iat=signed_at)
    assert world.webhook(body, verification)["statusCode"] == 200
    seen: list[dict[str, Any]] = []

    def processor(event: dict[str, Any]) -> Any:
        seen.append(event)
        return world.process(event)

    world.drain_webhooks(processor)

    (event,) = seen
    (record,) = event["Records"]
    assert record["body"] == body.decode(), "Plaid's raw body, unchanged"
    assert record["attributes"]["MessageGroupId"] == item_id
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["signed_at"] == {
        "stringValue": str(signed_at),
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "Number",
    }
    assert (record["eventSource"], record["eventSourceARN"]) == ("aws:sqs", world.queue.arn)
    assert record["awsRegion"] == "us-east-1"


def test_plaids_retry_of_the_same_body_is_one_message(world: World) -> None:
    item_id = stored_item(world, "retry-user")
    body = json.dumps(item_error(item_id)).encode()
    for _ in range(2):  # each attempt signed afresh, the body the same
        assert world.webhook(body, world.plaid.signing_key.sign(body))["statusCode"] == 200

    (batch,) = world.drain_webhooks()

    assert batch.received == 1, "the FIFO queue's content-based de-duplication"


def test_an_unsigned_webhook_is_refused_and_nothing_is_queued(world: World) -> None:
    item_id = stored_item(world, "forged-user")

    answer = world.webhook(json.dumps(item_error(item_id)).encode(), None)

    assert answer["statusCode"] == 401
    assert body_of(answer)["code"] == "WEBHOOK_UNVERIFIED"
    assert world.drain_webhooks() == []
    assert health(world, "forged-user") == ["healthy"]


def test_a_webhook_of_no_stored_item_is_acknowledged_not_retried(world: World) -> None:
    assert world.webhook(*world.signed(item_error("nobody-has-this-item")))["statusCode"] == 200

    (batch,) = world.drain_webhooks()

    assert (batch.deleted, batch.left) == (1, 0)


def test_a_reported_failure_stays_and_the_rest_of_the_batch_is_deleted(world: World) -> None:
    ids = [stored_item(world, f"partial-{n}") for n in range(2)]
    for item_id in ids:
        assert world.webhook(*world.signed(item_error(item_id)))["statusCode"] == 200
    failed: list[str] = []

    def fail_the_first(event: dict[str, Any]) -> Any:
        first = event["Records"][0]["messageId"]
        failed.append(first)
        return {"batchItemFailures": [{"itemIdentifier": first}]}

    (batch,) = world.drain_webhooks(fail_the_first)

    assert (batch.received, batch.deleted, batch.left) == (2, 1, 1)
    time.sleep(1.2)  # the local visibility timeout of this world
    (again,) = world.drain_webhooks(fail_the_first)
    assert again.received == 1
    assert failed[1] == failed[0], "the failed one came back, the other did not"


def test_a_failing_processor_leaves_the_batch_until_the_dead_letter_queue(world: World) -> None:
    item_id = stored_item(world, "poison-user")
    body, verification = world.signed(item_error(item_id))
    assert world.webhook(body, verification)["statusCode"] == 200
    counts: list[str] = []

    def crash(event: dict[str, Any]) -> Any:
        counts.append(event["Records"][0]["attributes"]["ApproximateReceiveCount"])
        raise RuntimeError("the processor crashed")

    for _ in range(5):  # maxReceiveCount
        (batch,) = world.drain_webhooks(crash)
        assert (batch.deleted, batch.failure) == (0, "RuntimeError: the processor crashed")
        time.sleep(1.2)

    assert counts == ["1", "2", "3", "4", "5"]
    assert world.drain_webhooks(crash) == [], "the 6th receive moves it instead"
    assert world.dead_letters() == [body.decode()]
    assert health(world, "poison-user") == ["healthy"]
