"""The Items flow's test world: moto's server (Secrets Manager, DynamoDB, KMS), the Plaid
stand-in, and the real handlers built on them (exchange_app's, items_app's and app's
containers), with one call per route. Built in infra/doubles/items_world.py, which
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
]
