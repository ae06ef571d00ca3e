"""plaidhooks.processor.WebhookProcessor for the login pair, with a scripted table and recheck:
Plaid's answer is stored in place of the webhook's claim, an Item removed while its webhook
was applied is acknowledged, and every other failure goes back to the queue."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from linktoken.problems import Problem
from plaidhooks.processor import WebhookProcessor
from plaiditems.records import Institution, ItemRecord

LIVE = ItemRecord(
    item_id="item1",
    institution=Institution("ins_1", "Bank"),
    accounts=(),
    created_at="2026-12-01T00:00:00Z",
    health="login_required",
    sealed_token="c2VhbGVk",
)
REMOVED = replace(LIVE, removed_at="2026-12-08T00:00:00Z")
REPAIRED = json.dumps(
    {"webhook_type": "ITEM", "webhook_code": "LOGIN_REPAIRED", "item_id": "item1"}
)


class Store:
    """What the processor asks of the table: each `get_item` answers the next record."""

    def __init__(self, *records: ItemRecord) -> None:
        self.records = list(records)
        self.writes: list[Any] = []

    def find_owner(self, item_id: str) -> str:
        return "owner1"

    def get_item(self, owner: str, item_id: str) -> ItemRecord:
        return self.records.pop(0)

    def set_health(self, *args: Any) -> bool:
        self.writes.append(args)
        return True


def processor(store: Store, recheck: Any) -> WebhookProcessor:
    return WebhookProcessor(store, recheck, lambda: None)  # type: ignore[arg-type]


def refused(code: str, plaid_code: str | None = None) -> Any:
    def recheck(*_args: Any) -> ItemRecord:
        raise Problem(code, cause="scripted", plaid_error_code=plaid_code)

    return recheck


def test_plaids_answer_is_stored_and_a_disagreement_is_superseded() -> None:
    still_broken = replace(LIVE, health="login_required")

    def recheck(owner: str, record: ItemRecord, remaining: Any, log: dict[str, Any]) -> Any:
        log["plaid_request_id"] = "req-1"
        return still_broken

    applied = processor(Store(LIVE), recheck).apply(REPAIRED, 100, lambda: 10.0)
    assert applied.outcome == "superseded"
    assert applied.log["claimed_health"] == "healthy"
    assert applied.log["health"] == "login_required"
    assert applied.log["plaid_request_id"] == "req-1"


def test_an_item_removed_while_its_webhook_is_applied_is_acknowledged() -> None:
    store = Store(LIVE, REMOVED)  # live when read, removed when Plaid says ITEM_NOT_FOUND
    applied = processor(store, refused("ITEM_NOT_FOUND", "ITEM_NOT_FOUND")).apply(
        REPAIRED, 100, lambda: 10.0
    )
    assert applied.outcome == "item_removed"
    assert store.writes == []


def test_item_not_found_at_plaid_for_an_item_the_table_still_holds_goes_back() -> None:
    store = Store(LIVE, LIVE)
    with pytest.raises(Problem) as raised:
        processor(store, refused("ITEM_NOT_FOUND", "ITEM_NOT_FOUND")).apply(
            REPAIRED, 100, lambda: 10.0
        )
    assert raised.value.plaid_error_code == "ITEM_NOT_FOUND"


def test_plaid_unavailable_goes_back_without_reading_the_item_again() -> None:
    store = Store(LIVE)
    with pytest.raises(Problem):
        processor(store, refused("UPSTREAM_UNAVAILABLE")).apply(REPAIRED, 100, lambda: 10.0)
    assert store.records == [] and store.writes == []
