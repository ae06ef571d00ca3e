"""plaidhooks.health_rules: each Item webhook Plaid documents moves health as the issue's
table says; everything else leaves it."""

from __future__ import annotations

import pytest

from plaidhooks.health_rules import decide, item_id_of


@pytest.mark.parametrize(
    ("webhook", "outcome", "health", "times"),
    [
        (
            {"webhook_code": "ERROR", "error": {"error_code": "ITEM_LOGIN_REQUIRED"}},
            "change",
            "login_required",
            {},
        ),
        ({"webhook_code": "LOGIN_REPAIRED"}, "change", "healthy", {}),
        (
            {"webhook_code": "PENDING_DISCONNECT", "disconnect_time": "2026-12-14T00:00:00Z"},
            "change",
            "pending_disconnect",
            {"disconnect_time": "2026-12-14T00:00:00Z"},
        ),
        (
            {
                "webhook_code": "PENDING_EXPIRATION",
                "consent_expiration_time": "2026-12-14T00:00:00+00:00",
            },
            "change",
            "pending_expiration",
            {"consent_expiration_time": "2026-12-14T00:00:00+00:00"},
        ),
        (
            {"webhook_code": "PENDING_EXPIRATION", "consent_expiration_time": "<script>"},
            "change",
            "pending_expiration",
            {},
        ),
        ({"webhook_code": "NEW_ACCOUNTS_AVAILABLE"}, "change", "new_accounts_available", {}),
        ({"webhook_code": "USER_PERMISSION_REVOKED"}, "change", "revoked", {}),
        ({"webhook_code": "USER_ACCOUNT_REVOKED", "account_id": "a"}, "change", "revoked", {}),
        (
            {"webhook_code": "ERROR", "error": {"error_code": "INSTITUTION_DOWN"}},
            "ignored",
            None,
            {},
        ),
        ({"webhook_code": "ERROR", "error": None}, "ignored", None, {}),
        ({"webhook_code": "WEBHOOK_UPDATE_ACKNOWLEDGED"}, "ignored", None, {}),
        ({"webhook_code": "SOMETHING_NEW"}, "unknown_type", None, {}),
    ],
)
def test_item_webhooks(
    webhook: dict[str, object], outcome: str, health: str | None, times: dict[str, str]
) -> None:
    decision = decide({"webhook_type": "ITEM", "item_id": "i", **webhook})
    assert (decision.outcome, decision.health, dict(decision.times)) == (outcome, health, times)


def test_other_types_are_unknown_however_their_code_reads() -> None:
    assert decide({"webhook_type": "TRANSACTIONS", "webhook_code": "LOGIN_REPAIRED"}).outcome == (
        "unknown_type"
    )
    assert decide({}).outcome == "unknown_type"


def test_item_ids_are_plaids_shape_only() -> None:
    assert item_id_of({"item_id": "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6"}) == (
        "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6"
    )
    for bad in ("", "a/b", "x" * 129, 7, None, "../../etc"):
        assert item_id_of({"item_id": bad}) is None
