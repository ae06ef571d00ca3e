"""What the service keeps of an Item, and what an app is shown of it.

`health` is the app-facing state of the Item's connection: `healthy`, `login_required`,
`pending_disconnect` (with `disconnect_time`), `pending_expiration` (with
`consent_expiration_time`), `new_accounts_available` or `revoked`. The exchange starts it at
`healthy`; Plaid's webhooks (plaidhooks) and `/item/get` after update mode move it.
`health_signed_at` (Unix seconds) is when the information behind it was true: a webhook's
signing time, or the moment of an `/item/get`. Older information never overwrites newer.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

HEALTH_VALUES: Final = frozenset(
    {
        "healthy",
        "login_required",
        "pending_disconnect",
        "pending_expiration",
        "new_accounts_available",
        "revoked",
    }
)


@dataclass(frozen=True, slots=True)
class Institution:
    institution_id: str
    name: str

    def view(self) -> dict[str, str]:
        return {"institution_id": self.institution_id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Account:
    """An account as Link's metadata describes it (never a balance or a number)."""

    id: str
    name: str
    mask: str | None
    type: str | None
    subtype: str | None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "mask": self.mask,
            "type": self.type,
            "subtype": self.subtype,
        }


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One stored Item. `sealed_token` is the KMS ciphertext of its access token (base64);
    `repr` never shows it."""

    item_id: str
    institution: Institution
    accounts: tuple[Account, ...]
    created_at: str
    health: str = "healthy"
    health_at: str | None = None
    consent_expiration_time: str | None = None
    disconnect_time: str | None = None
    health_signed_at: int | None = None
    link_session_id: str | None = None
    sealed_token: str | None = field(default=None, repr=False)
    removed_at: str | None = None

    @property
    def removed(self) -> bool:
        return self.removed_at is not None

    def masks(self) -> frozenset[str | None]:
        return frozenset(account.mask for account in self.accounts)

    def view(self) -> dict[str, Any]:
        """What `GET /items` shows of it (never the token)."""
        doc: dict[str, Any] = {
            "item_id": self.item_id,
            "institution": self.institution.view(),
            "accounts": [account.view() for account in self.accounts],
            "health": self.health,
            "health_at": self.health_at or self.created_at,
            "created_at": self.created_at,
        }
        if self.consent_expiration_time:
            doc["consent_expiration_time"] = self.consent_expiration_time
        if self.disconnect_time:
            doc["disconnect_time"] = self.disconnect_time
        return doc

    def fields(self) -> dict[str, Any]:
        """The record as the table's attributes (without its keys)."""
        return {
            "item_id": self.item_id,
            "institution_id": self.institution.institution_id,
            "institution_name": self.institution.name,
            "accounts": [account.view() for account in self.accounts],
            "created_at": self.created_at,
            "health": self.health,
            "health_at": self.health_at,
            "consent_expiration_time": self.consent_expiration_time,
            "disconnect_time": self.disconnect_time,
            "health_signed_at": self.health_signed_at,
            "link_session_id": self.link_session_id,
            "sealed_token": self.sealed_token,
            "removed_at": self.removed_at,
        }

    @classmethod
    def from_fields(cls, doc: dict[str, Any]) -> "ItemRecord":
        return cls(
            item_id=str(doc["item_id"]),
            institution=Institution(
                str(doc.get("institution_id", "")), str(doc.get("institution_name", ""))
            ),
            accounts=tuple(
                Account(
                    str(a.get("id", "")),
                    str(a.get("name", "")),
                    a.get("mask"),
                    a.get("type"),
                    a.get("subtype"),
                )
                for a in doc.get("accounts") or []
            ),
            created_at=str(doc.get("created_at", "")),
            health=str(doc.get("health") or "healthy"),
            health_at=doc.get("health_at"),
            consent_expiration_time=doc.get("consent_expiration_time"),
            disconnect_time=doc.get("disconnect_time"),
            health_signed_at=_whole(doc.get("health_signed_at")),
            link_session_id=doc.get("link_session_id"),
            sealed_token=doc.get("sealed_token"),
            removed_at=doc.get("removed_at"),
        )


def utc_text(epoch: float) -> str:
    """A moment as the records and the API write it: RFC 3339, UTC, whole seconds."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole(value: Any) -> int | None:
    """A stored number (DynamoDB gives Decimal or int) as int; anything else None."""
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None
