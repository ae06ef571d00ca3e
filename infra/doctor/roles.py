"""Which of the service's three functions a deployed one is, told by its `Handler`: what it
serves, the log lines its failed requests write, and whether it needs the Items table and key.

The log lines' names are the endpoints' own (`plaiditems.endpoint`'s routes); the link-token
function's `link_token_failed` is written by `linktoken.endpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from plaiditems.endpoint import EXCHANGE, LIST, REMOVE


@dataclass(frozen=True, slots=True)
class Role:
    handler: str
    title: str
    # The `message` of the log line each failed request writes.
    failures: tuple[str, ...]
    # True: nothing works without ITEMS_TABLE and ITEMS_KEY_ID; False: update mode only.
    needs_items: bool
    # What the function asks KMS to do with the Items key.
    kms_operation: str


LINK_TOKEN: Final = Role(
    "app.lambda_handler",
    "the link-token function (POST /link-token; update mode with an item_id)",
    ("link_token_failed",),
    needs_items=False,
    kms_operation="Decrypt",
)
ITEM_EXCHANGE: Final = Role(
    "exchange_app.lambda_handler",
    "the Items exchange function (POST /items)",
    (EXCHANGE.failed,),
    needs_items=True,
    kms_operation="Encrypt",
)
ITEMS: Final = Role(
    "items_app.lambda_handler",
    "the Items function (GET /items, DELETE /items/{item_id})",
    (LIST.failed, REMOVE.failed),
    needs_items=True,
    kms_operation="Decrypt",
)
ROLES: Final = (LINK_TOKEN, ITEM_EXCHANGE, ITEMS)


def role_of(handler: str | None) -> Role | None:
    """The role of a function with this `Handler`, None for a handler the service has not."""
    return next((role for role in ROLES if role.handler == handler), None)
