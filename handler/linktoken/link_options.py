"""The app's optional request body: what an app may choose, checked against configuration."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from linktoken.config import Config
from linktoken.plaid_values import LANGUAGES, PLATFORMS
from linktoken.problems import Problem

_FIELDS = frozenset({"platform", "products", "language", "item_id"})
_ITEM_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """What this particular Link session asks for."""

    platform: str
    products: tuple[str, ...]
    language: str
    # Update mode: the caller's Item to repair or extend (no products: Plaid keeps the Item's).
    item_id: str | None = None
    # The stack's own receiver on the domain the request came to (PLAID_WEBHOOK_URL wins).
    stack_webhook: str | None = None


def parse_link_options(body: Mapping[str, Any] | None, config: Config) -> LinkOptions:
    """Validate the decoded JSON body (None for an empty body) against the configuration.

    Example:
        >>> from linktoken.config import load_config
        >>> cfg = load_config({"PLAID_SECRET_ID": "s", "PLAID_CLIENT_NAME": "Acme",
        ...                    "PLAID_PRODUCTS": "auth,transactions"})
        >>> parse_link_options({"products": ["auth"], "language": "fr"}, cfg)
        LinkOptions(platform='web', products=('auth',), language='fr')
    """
    if body is None:
        body = {}
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _invalid(f"Unknown field(s) {unknown}; accepted: {sorted(_FIELDS)}.")

    platform = body.get("platform", "web")
    if not isinstance(platform, str) or platform not in PLATFORMS:
        raise _invalid(f"'platform' must be one of {sorted(PLATFORMS)}.")
    if platform == "android" and config.android_package_name is None:
        raise _invalid("'platform' android is not available: no Android package is configured.")

    # An explicit null is refused too: an app that meant update mode but lost its item_id must
    # not silently get a new Item's token (and link the bank a second time).
    item_id = body.get("item_id")
    if "item_id" in body:
        if not isinstance(item_id, str) or not _ITEM_ID.fullmatch(item_id):
            raise _invalid("'item_id' must be an item_id from POST /items or GET /items.")
        if "products" in body:
            raise _invalid(
                "'products' cannot be chosen in update mode ('item_id'): Plaid keeps the Item's."
            )

    products = body.get("products", list(config.products))
    if (
        not isinstance(products, list)
        or not products
        or not all(isinstance(p, str) for p in products)
    ):
        raise _invalid("'products' must be a non-empty array of strings.")
    not_offered = sorted(set(products) - set(config.products))
    if not_offered:
        raise _invalid(
            f"'products' {not_offered} are not offered; choose from {list(config.products)}."
        )

    language = body.get("language", config.language)
    if not isinstance(language, str) or language not in LANGUAGES:
        raise _invalid(f"'language' must be one of {sorted(LANGUAGES)}.")

    return LinkOptions(
        platform=platform,
        products=() if item_id else tuple(dict.fromkeys(products)),
        language=language,
        item_id=item_id,
    )


def _invalid(detail: str) -> Problem:
    return Problem("INVALID_REQUEST", detail)
