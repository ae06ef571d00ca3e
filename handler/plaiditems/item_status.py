"""What Plaid's `/item/get` says of an Item's health, for the refresh after update mode and the
webhook processor's login pair.

The Item's `error` decides: `ITEM_LOGIN_REQUIRED` is `login_required`; no error is `healthy`
(update mode has just repaired the login, renewed the consent or added the accounts). Any
other error says nothing about health: None, the stored health stays.
"""

from collections.abc import Mapping
from typing import Any


def health_from_item(doc: Mapping[str, Any]) -> str | None:
    item = doc.get("item")
    if not isinstance(item, Mapping):
        return None
    error = item.get("error")
    if error is None:
        return "healthy"
    code = error.get("error_code") if isinstance(error, Mapping) else None
    return "login_required" if code == "ITEM_LOGIN_REQUIRED" else None


def is_item_answer(doc: Mapping[str, Any]) -> bool:
    item = doc.get("item")
    return isinstance(item, Mapping) and isinstance(item.get("item_id"), str)
