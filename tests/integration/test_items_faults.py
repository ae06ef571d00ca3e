"""DynamoDB and KMS faults in the middle of the Items flow: each gets its documented status
within the time budget, nothing is lost (an exchanged Item is stored or removed at Plaid), and
the same warm container recovers. The fault double (infra/doubles/aws_faults.py) sits between
the functions and moto; the service's own clients, with their retries, meet each fault."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from infra.doubles.aws_faults import AwsDrop, AwsError, AwsFaults, AwsPass, AwsSlow
from infra.doubles.plaid_standin import Scripted
from linktoken.observability import metrics
from tests.helpers_items import CLIENT_ID, SECRET, World, body_of, items_world

QUERY, PUT, GET = (
    "DynamoDB_20120810.Query",
    "DynamoDB_20120810.PutItem",
    "DynamoDB_20120810.GetItem",
)
ENCRYPT, DECRYPT = "TrentService.Encrypt", "TrentService.Decrypt"
THROTTLED = AwsError("ThrottlingException")
# Two attempts of 1 s connect + 2 s read each, plus the retry delay (< 1 s), plus the rest.
BUDGET_S = 10.0


@pytest.fixture
def world() -> Iterator[tuple[World, AwsFaults]]:
    with items_world(with_faults=True) as built:
        assert built.faults is not None
        yield built, built.faults


def logged(out: str, message: str) -> list[dict[str, object]]:
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    return [line for line in lines if line.get("message") == message]


def test_a_throttled_table_is_503_retryable_then_the_same_container_answers(
    world: tuple[World, AwsFaults], capfd: pytest.CaptureFixture[str]
) -> None:
    items, faults = world
    faults.script(QUERY, THROTTLED, THROTTLED)
    started = time.monotonic()
    answer = items.list("user-throttled")
    assert time.monotonic() - started < BUDGET_S
    problem = body_of(answer)
    assert (answer["statusCode"], problem["code"], problem["retryable"]) == (
        503,
        "STORAGE_UNAVAILABLE",
        True,
    )
    assert faults.requests.count(QUERY) == 2  # the client's two attempts
    (line,) = logged(capfd.readouterr().out, "items_list_failed")
    assert line["cause"] == "dynamodb Query answered ThrottlingException"
    assert items.list("user-throttled")["statusCode"] == 200


def test_one_throttle_is_absorbed_by_the_clients_retry(world: tuple[World, AwsFaults]) -> None:
    items, faults = world
    faults.script(QUERY, THROTTLED)
    assert items.list("user-once")["statusCode"] == 200


def test_an_item_whose_token_cannot_be_sealed_is_removed_at_plaid(
    world: tuple[World, AwsFaults], capfd: pytest.CaptureFixture[str]
) -> None:
    items, faults = world
    token = items.public_token("ins_20")
    faults.script(ENCRYPT, THROTTLED, THROTTLED)
    answer = items.exchange("user-seal", token)
    metrics.flush_metrics()  # what the handler's decorator does after each invocation
    assert (answer["statusCode"], body_of(answer)["code"]) == (503, "STORAGE_UNAVAILABLE")
    out = capfd.readouterr().out
    (line,) = logged(out, "item_exchange_failed")
    assert line["orphan"] == "removed"
    assert any('"OrphanRemoved"' in x for x in out.splitlines())
    removed = {view.item_id: view.removed for view in items.plaid.items()}
    assert removed[str(line["item_id"])] is True
    # Nothing stored, and the claim released: the user can link again with a new token.
    assert body_of(items.list("user-seal"))["items"] == []
    assert items.exchange("user-seal", items.public_token("ins_20"))["statusCode"] == 201


def test_an_item_that_cannot_be_stored_nor_removed_is_logged_as_left_and_counted(
    world: tuple[World, AwsFaults], capfd: pytest.CaptureFixture[str]
) -> None:
    items, faults = world
    faults.script(PUT, AwsPass(), AwsError("AccessDeniedException"))  # the claim, the Item
    # Plaid exchanges, then refuses the three removal attempts.
    exchange = {
        "access_token": "access-sandbox-orphan-canary-0001",
        "item_id": "itemorphan1",
        "request_id": "r1",
    }
    items.plaid.script(
        Scripted(200, exchange),
        *[Scripted(500, {"error_code": "INTERNAL_SERVER_ERROR", "error_type": "API_ERROR"})] * 3,
    )
    answer = items.exchange("user-left", "public-sandbox-00000000-0000-0000-0000-000000000001")
    metrics.flush_metrics()
    out = capfd.readouterr().out
    assert (answer["statusCode"], body_of(answer)["code"]) == (500, "MISCONFIGURED")
    (line,) = logged(out, "item_exchange_failed")
    assert (line["orphan"], line["item_id"]) == ("left", "itemorphan1")
    assert "AccessDeniedException" in str(line["cause"])
    assert any("OrphanLeft" in x for x in out.splitlines())
    assert "access-sandbox-orphan-canary-0001" not in out


def test_a_slow_kms_on_remove_is_503_and_the_item_is_kept_until_a_retry(
    world: tuple[World, AwsFaults],
) -> None:
    items, faults = world
    item_id = body_of(items.exchange("user-slow", items.public_token("ins_21")))["item_id"]
    faults.script(DECRYPT, AwsSlow(2.5), AwsSlow(2.5))  # past the 2 s read timeout, twice
    started = time.monotonic()
    answer = items.remove("user-slow", item_id)
    assert time.monotonic() - started < BUDGET_S
    assert (answer["statusCode"], body_of(answer)["code"]) == (503, "STORAGE_UNAVAILABLE")
    assert [i["item_id"] for i in body_of(items.list("user-slow"))["items"]] == [item_id]
    assert items.remove("user-slow", item_id)["statusCode"] == 204


def test_a_dropped_connection_on_update_mode_is_503(world: tuple[World, AwsFaults]) -> None:
    items, faults = world
    item_id = body_of(items.exchange("user-drop", items.public_token("ins_22")))["item_id"]
    faults.script(GET, AwsDrop(), AwsDrop())
    answer = items.update_token("user-drop", item_id)
    assert (answer["statusCode"], body_of(answer)["code"]) == (503, "STORAGE_UNAVAILABLE")
    assert items.update_token("user-drop", item_id)["statusCode"] == 200


def test_a_missing_table_is_misconfigured_naming_the_variable(
    world: tuple[World, AwsFaults],
) -> None:
    items, faults = world
    faults.script(QUERY, AwsError("ResourceNotFoundException"))
    answer = items.list("user-missing")
    assert (answer["statusCode"], body_of(answer)["code"]) == (500, "MISCONFIGURED")


def test_an_exchange_whose_answer_is_lost_is_marked_and_its_retry_names_the_orphan(
    world: tuple[World, AwsFaults], capfd: pytest.CaptureFixture[str]
) -> None:
    """Plaid exchanged the token but the answer never came back (the connection dropped after
    the request was sent): the service cannot know the Item, so it says so, and the retry's
    INVALID_PUBLIC_TOKEN proves Plaid made it."""
    items, _ = world
    token = items.public_token("ins_40")
    # What Plaid did with the first request: the token is spent, an Item exists at Plaid.
    done = requests.post(
        items.plaid.base_url + "/item/public_token/exchange",
        json={"public_token": token},
        headers={"PLAID-CLIENT-ID": CLIENT_ID, "PLAID-SECRET": SECRET},
        timeout=5,
    )
    assert done.status_code == 200
    items.plaid.script(Scripted(close=True))  # ... and its answer to the service is lost
    first = items.exchange("user-lost", token)
    metrics.flush_metrics()
    out = capfd.readouterr().out
    assert (first["statusCode"], body_of(first)["retryable"]) == (503, True)
    (line,) = logged(out, "item_exchange_failed")
    assert (line["orphan"], line["link_session_id"]) == ("unknown", "s-1")
    assert any('"OrphanUnknown"' in x for x in out.splitlines())

    again = items.exchange("user-lost", token)
    metrics.flush_metrics()
    out = capfd.readouterr().out
    assert body_of(again)["code"] == "INVALID_PUBLIC_TOKEN"
    (line,) = logged(out, "item_exchange_failed")
    assert line["orphan"] == "left"
    assert "answer never came back" in str(line["cause"])
    assert any('"OrphanLeft"' in x for x in out.splitlines())


def test_an_exchange_whose_answer_is_lost_before_plaid_acted_succeeds_on_retry(
    world: tuple[World, AwsFaults],
) -> None:
    items, _ = world
    token = items.public_token("ins_41")
    items.plaid.script(Scripted(close=True))  # the request never got to exchange anything
    assert items.exchange("user-retry-lost", token)["statusCode"] == 503
    answer = items.exchange("user-retry-lost", token)
    assert answer["statusCode"] == 201
    assert [i["item_id"] for i in body_of(items.list("user-retry-lost"))["items"]] == [
        body_of(answer)["item_id"]
    ]


def test_a_plaid_5xx_on_the_exchange_is_an_unknown_outcome_not_nothing_made(
    world: tuple[World, AwsFaults], capfd: pytest.CaptureFixture[str]
) -> None:
    """A server that failed part way may have made the Item: not retried, logged as unknown."""
    items, _ = world
    token = items.public_token("ins_42")
    items.plaid.script(
        Scripted(
            500,
            {"error_type": "API_ERROR", "error_code": "INTERNAL_SERVER_ERROR", "request_id": "r5"},
        )
    )
    answer = items.exchange("user-5xx", token)
    assert (answer["statusCode"], body_of(answer)["code"]) == (503, "UPSTREAM_UNAVAILABLE")
    (line,) = logged(capfd.readouterr().out, "item_exchange_failed")
    assert (line["orphan"], line["attempts"]) == ("unknown", 1)
    assert (
        items.exchange("user-5xx", token)["statusCode"] == 201
    )  # nothing was made: the retry exchanges
