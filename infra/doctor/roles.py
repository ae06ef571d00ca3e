"""Which of the service's five functions a deployed one is, told by its `Handler`: what it
serves, the log lines its failed requests write, what it cannot work without, and what it uses
(the Items table, the key; every one reads the Plaid secret).

The Items log lines' names are the endpoints' own (`plaiditems.endpoint`'s routes); the
link-token function's `link_token_failed` is written by `linktoken.endpoint`, the webhook
functions' by `plaidhooks.receiver_endpoint` and `plaidhooks.processor_endpoint`
(tests/integration/test_doctor_webhooks.py runs them into the lines doctor reads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from plaiditems.endpoint import EXCHANGE, LIST, REFRESH, REMOVE

# What a function's init says of an environment it refuses (its configuration_invalid line).
InitError = Callable[[Mapping[str, str]], str | None]

ITEMS_PAIR: Final = frozenset({"ITEMS_TABLE", "ITEMS_KEY_ID"})
WEBHOOK_REJECTED: Final = "webhook_rejected"
WEBHOOK_RECEIVE_FAILED: Final = "webhook_receive_failed"
WEBHOOK_APPLIED: Final = "webhook_applied"
WEBHOOK_FAILED: Final = "webhook_failed"


def _items_init(environ: Mapping[str, str]) -> str | None:
    from plaiditems.container import build_items_container

    return build_items_container(environ).config_error


def _receiver_init(environ: Mapping[str, str]) -> str | None:
    from plaidhooks.receiver_container import build_receiver_container

    return build_receiver_container(environ).config_error


def _processor_init(environ: Mapping[str, str]) -> str | None:
    from plaidhooks.processor_container import build_processor_container

    return build_processor_container(environ).config_error


@dataclass(frozen=True, slots=True)
class Role:
    handler: str
    title: str
    # The `message` of the log line each failed request writes.
    failures: tuple[str, ...]
    # Variables the setting rules accept unset but without which the function answers every
    # request 500 MISCONFIGURED; `init_error` says it in the function's words. Called only
    # when one is unset and every rule passed: each init refuses before it builds a client.
    requires: frozenset[str] = frozenset()
    init_error: InitError | None = None
    # What it does then.
    misconfigured: str = "answers every request 500 MISCONFIGURED"
    # The link-token function: the Items table and key serve update mode only.
    items_for_update_mode: bool = False
    uses_table: bool = False
    # What the function asks KMS to do with the Items key; None: it never uses the key.
    kms_operation: str | None = None


LINK_TOKEN: Final = Role(
    "app.lambda_handler",
    "the link-token function (POST /link-token; update mode with an item_id)",
    ("link_token_failed",),
    items_for_update_mode=True,
    uses_table=True,
    kms_operation="Decrypt",
)
ITEM_EXCHANGE: Final = Role(
    "exchange_app.lambda_handler",
    "the Items exchange function (POST /items)",
    (EXCHANGE.failed,),
    requires=ITEMS_PAIR,
    init_error=_items_init,
    uses_table=True,
    kms_operation="Encrypt",
)
ITEMS: Final = Role(
    "items_app.lambda_handler",
    "the Items function (GET /items, DELETE /items/{item_id}, POST /items/{item_id}/refresh)",
    (LIST.failed, REMOVE.failed, REFRESH.failed),
    requires=ITEMS_PAIR,
    init_error=_items_init,
    uses_table=True,
    kms_operation="Decrypt",
)
WEBHOOK_RECEIVER: Final = Role(
    "webhook_app.lambda_handler",
    "the webhook receiver (POST /webhooks/plaid)",
    (WEBHOOK_RECEIVE_FAILED,),
    requires=frozenset({"WEBHOOK_QUEUE_URL"}),
    init_error=_receiver_init,
    misconfigured="answers every webhook 500 MISCONFIGURED (Plaid retries, then gives up)",
)
WEBHOOK_PROCESSOR: Final = Role(
    "webhook_worker_app.lambda_handler",
    "the webhook processor (the webhook queue's consumer)",
    (WEBHOOK_FAILED,),
    requires=ITEMS_PAIR,
    init_error=_processor_init,
    misconfigured="fails every webhook (back to the queue, after five tries to its dead-letter "
    "queue)",
    uses_table=True,
    kms_operation="Decrypt",
)
ROLES: Final = (LINK_TOKEN, ITEM_EXCHANGE, ITEMS, WEBHOOK_RECEIVER, WEBHOOK_PROCESSOR)


def role_of(handler: str | None) -> Role | None:
    """The role of a function with this `Handler`, None for a handler the service has not."""
    return next((role for role in ROLES if role.handler == handler), None)
