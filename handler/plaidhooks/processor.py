"""Apply one queued webhook to its Item's health, apart from Lambda and SQS.

Plaid delivers at least once and in any order, so applying is idempotent and ordered: the
store writes a health only over older information (`signed_at`, the verified signing time)
and never over `revoked`. What cannot change any Item (a type this service does not know, an
Item it does not hold) is acknowledged with its outcome; what failed for now (the table) raises,
so that SQS delivers the message again and, after five tries, to the dead-letter queue.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from plaidhooks.health_rules import decide, item_id_of, short_text
from plaiditems.records import utc_text
from plaiditems.store import ItemStore


class PoisonMessage(Exception):
    """A message no retry can apply (not a webhook the receiver would queue)."""


@dataclass(slots=True)
class Applied:
    """`outcome`: applied, stale, ignored, unknown_type, item_unknown or item_removed."""

    outcome: str
    log: dict[str, Any] = field(default_factory=dict)


class WebhookProcessor:
    def __init__(self, store: ItemStore) -> None:
        self.store = store

    def apply(self, body: str, signed_at: int) -> Applied:
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
        if record is None:
            return Applied("item_unknown", log)
        if record.removed:
            return Applied("item_removed", log)
        written = self.store.set_health(
            owner or "",
            record.item_id,
            decision.health,
            signed_at,
            dict(decision.times),
            utc_text(signed_at),
        )
        log["previous_health"] = record.health
        return Applied("applied" if written else "stale", log)

    def reset(self) -> None:
        self.store.close()


def _webhook(body: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise PoisonMessage("the message body is not JSON") from None
    if not isinstance(doc, dict):
        raise PoisonMessage("the message body is not a JSON object")
    return doc
