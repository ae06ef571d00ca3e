"""What each Plaid webhook means for an Item's `health` (plaiditems.records): one table.

Only `ITEM` webhooks change health. An `ITEM`/`ERROR` changes it only for
`ITEM_LOGIN_REQUIRED`; other errors and `WEBHOOK_UPDATE_ACKNOWLEDGED` are known but leave it
(`ignored`); anything not in the table is `unknown_type`: logged, counted and acknowledged.

The login pair (`ERROR` with `ITEM_LOGIN_REQUIRED`, `LOGIN_REPAIRED`) is `confirm`ed: each
undoes the other, and Plaid signs every retry anew, so a late retry cannot be told from a new
webhook by its signing time. The processor stores what Plaid's `/item/get` says instead.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

ITEM_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
_RFC3339: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True, slots=True)
class Decision:
    """`outcome` "change" with the new `health` (and its time fields), or why nothing changes:
    "ignored", "unknown_type". `confirm`: the health is Plaid's `/item/get` answer, not the
    webhook's."""

    outcome: str
    health: str | None = None
    times: Mapping[str, str] = field(default_factory=dict)
    confirm: bool = False


def _fixed(health: str, confirm: bool = False) -> Callable[[Mapping[str, Any]], Decision]:
    return lambda _webhook: Decision("change", health, confirm=confirm)


def _login_error(webhook: Mapping[str, Any]) -> Decision:
    error = webhook.get("error")
    code = error.get("error_code") if isinstance(error, Mapping) else None
    if code == "ITEM_LOGIN_REQUIRED":
        return Decision("change", "login_required", confirm=True)
    return Decision("ignored")


def _with_time(health: str, name: str) -> Callable[[Mapping[str, Any]], Decision]:
    """A pending state with the time Plaid gives (kept only when it is RFC 3339 text)."""

    def decide(webhook: Mapping[str, Any]) -> Decision:
        value = webhook.get(name)
        times = {name: value} if isinstance(value, str) and _RFC3339.fullmatch(value) else {}
        return Decision("change", health, times)

    return decide


RULES: Final[Mapping[tuple[str, str], Callable[[Mapping[str, Any]], Decision]]] = {
    ("ITEM", "ERROR"): _login_error,
    ("ITEM", "LOGIN_REPAIRED"): _fixed("healthy", confirm=True),
    ("ITEM", "PENDING_DISCONNECT"): _with_time("pending_disconnect", "disconnect_time"),
    ("ITEM", "PENDING_EXPIRATION"): _with_time("pending_expiration", "consent_expiration_time"),
    ("ITEM", "NEW_ACCOUNTS_AVAILABLE"): _fixed("new_accounts_available"),
    ("ITEM", "USER_PERMISSION_REVOKED"): _fixed("revoked"),
    ("ITEM", "USER_ACCOUNT_REVOKED"): _fixed("revoked"),
    ("ITEM", "WEBHOOK_UPDATE_ACKNOWLEDGED"): lambda _webhook: Decision("ignored"),
}

# Once revoked, an Item stays revoked: the user must link the bank again (a new Item).
TERMINAL: Final = frozenset({"revoked"})


def decide(webhook: Mapping[str, Any]) -> Decision:
    rule = RULES.get((str(webhook.get("webhook_type")), str(webhook.get("webhook_code"))))
    return rule(webhook) if rule else Decision("unknown_type")


def short_text(value: object) -> str | None:
    """A webhook's type or code for a log line: Plaid's are short upper-case words, a
    sender's text is cut at 64 characters."""
    return value[:64] if isinstance(value, str) else None


def item_id_of(webhook: Mapping[str, Any]) -> str | None:
    item_id = webhook.get("item_id")
    return item_id if isinstance(item_id, str) and ITEM_ID.fullmatch(item_id) else None
