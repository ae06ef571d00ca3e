"""Apply one queued webhook to its Item's health, apart from Lambda and SQS.

Plaid delivers at least once and in any order, so applying is idempotent and ordered: the
store writes a health only over older information and never over `revoked`. A webhook's
information is as old as its signing time (`signed_at`, verified by the receiver), except for
the login pair (`health_rules`): for those the processor asks Plaid's `/item/get` and stores
its answer as of the call (`recheck`), so a late retry leaves what is true now.

What cannot change any Item (a type this service does not know, an Item it does not hold) is
acknowledged with its outcome; what failed for now (the table, the key, Plaid) raises, so that
SQS delivers the message again and, after five tries, to the dead-letter queue.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from linktoken.problems import Problem
from plaidhooks.health_rules import TERMINAL, decide, item_id_of, short_text
from plaiditems.records import ItemRecord, utc_text
from plaiditems.service import ALREADY_REMOVED
from plaiditems.store import ItemStore

# `ItemsService.recheck`: (owner, live Item, remaining seconds, log fields) -> the Item stored.
Recheck = Callable[[str, ItemRecord, Callable[[], float], dict[str, Any]], ItemRecord]


# Every `Applied.outcome` (the WebhookApplied metric's Outcome dimension).
OUTCOMES: Final = frozenset(
    {
        "applied",
        "stale",
        "superseded",
        "ignored",
        "unknown_type",
        "item_unknown",
        "item_removed",
    }
)


class PoisonMessage(Exception):
    """A message no retry can apply (not a webhook the receiver would queue)."""


@dataclass(slots=True)
class Applied:
    """`outcome`: one of OUTCOMES (`superseded`: Plaid's `/item/get` says otherwise now, and
    that is stored)."""

    outcome: str
    log: dict[str, Any] = field(default_factory=dict)


class WebhookProcessor:
    def __init__(self, store: ItemStore, recheck: Recheck, reset: Callable[[], None]) -> None:
        self.store = store
        self.recheck = recheck
        self._reset = reset

    def apply(self, body: str, signed_at: int, remaining: Callable[[], float]) -> Applied:
        webhook = _webhook(body)
        log: dict[str, Any] = {
            "webhook_type": short_text(webhook.get("webhook_type")),
            "webhook_code": short_text(webhook.get("webhook_code")),
            "item_id": item_id_of(webhook),
            "signed_at": signed_at,
        }
        decision = decide(webhook)
        if decision.outcome != "change" or decision.health is None:
            return Applied(decision.outcome, log)
        log["health"] = decision.health
        item_id = log["item_id"]
        owner = self.store.find_owner(item_id) if item_id else None
        record = self.store.get_item(owner, item_id) if owner and item_id else None
        if owner is None or record is None:
            return Applied("item_unknown", log)
        if record.removed or not record.sealed_token:
            return Applied("item_removed", log)
        log["previous_health"] = record.health
        if record.health in TERMINAL:  # nothing is written over it: no need to ask Plaid
            return Applied("stale", log)
        if decision.confirm:
            return self._confirmed(owner, record, decision.health, remaining, log)
        written = self.store.set_health(
            owner,
            record.item_id,
            decision.health,
            signed_at,
            dict(decision.times),
            utc_text(signed_at),
        )
        return Applied("applied" if written else "stale", log)

    def _confirmed(
        self,
        owner: str,
        record: ItemRecord,
        claimed: str,
        remaining: Callable[[], float],
        log: dict[str, Any],
    ) -> Applied:
        """Plaid's current health stored in place of the webhook's `claimed` one."""
        plaid: dict[str, Any] = {}  # a failure raises with Plaid's fields of its own
        try:
            stored = self.recheck(owner, record, remaining, plaid)
        except Problem as problem:
            # Removed while this webhook was applied (Plaid no longer has it, and the table
            # says so now): acknowledged, as a webhook for a removed Item is.
            if problem.plaid_error_code in ALREADY_REMOVED and self._removed_now(owner, record):
                return Applied("item_removed", log)
            raise
        log.update(
            health=stored.health,
            claimed_health=claimed,
            plaid_request_id=plaid.get("plaid_request_id"),
        )
        return Applied("applied" if stored.health == claimed else "superseded", log)

    def _removed_now(self, owner: str, record: ItemRecord) -> bool:
        now = self.store.get_item(owner, record.item_id)
        return now is None or now.removed

    def reset(self) -> None:
        self._reset()


def _webhook(body: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise PoisonMessage("the message body is not JSON") from None
    if not isinstance(doc, dict):
        raise PoisonMessage("the message body is not a JSON object")
    return doc
