"""The Items flow's test world: moto's server (Secrets Manager, DynamoDB, KMS, SQS), the Plaid
stand-in, and the real handlers built on them (exchange_app's, items_app's and app's
containers, and the webhook receiver's and processor's), with one call per route and a drain
of the webhook queue into the processor. Built in infra/doubles/items_world.py, which
`make soak-items` uses too: one copy of the set-up."""

from infra.doubles.items_world import (
    ACCOUNTS,
    CLIENT_ID,
    HMAC_KEY,
    INSTITUTION,
    SECRET,
    World,
    body_of,
    event,
    exchange_body,
    exchange_context,
    items_backends,
    items_world,
    webhook_event,
)

__all__ = [
    "ACCOUNTS",
    "CLIENT_ID",
    "HMAC_KEY",
    "INSTITUTION",
    "SECRET",
    "World",
    "body_of",
    "event",
    "exchange_body",
    "exchange_context",
    "items_backends",
    "items_world",
    "webhook_event",
]
