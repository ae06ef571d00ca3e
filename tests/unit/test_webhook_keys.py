"""plaidhooks.verification_keys: one lookup per kid, rotation learned, and a flood of unknown
kids does not become a flood of calls to Plaid."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import pytest

from plaidhooks.verification_keys import KeyCache, KeyUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Plaid:
    """Plaid's /webhook_verification_key/get as far as the cache sees it."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {"k1": {"kid": "k1", "expired_at": None}}
        self.calls: list[str] = []
        self.down = False

    def fetch(self, kid: str) -> Mapping[str, Any] | None:
        self.calls.append(kid)
        if self.down:
            raise KeyUnavailable("Plaid unreachable")
        return self.keys.get(kid)


def test_a_known_kid_is_looked_up_once_then_served_from_the_cache() -> None:
    clock, plaid = Clock(), Plaid()
    cache = KeyCache(clock)
    for _ in range(20):
        assert cache.key_for("k1", plaid.fetch) == {"kid": "k1", "expired_at": None}
    assert plaid.calls == ["k1"]


def test_after_an_hour_the_key_is_checked_again_and_its_expiry_learned() -> None:
    clock, plaid = Clock(), Plaid()
    cache = KeyCache(clock)
    cache.key_for("k1", plaid.fetch)
    plaid.keys["k1"] = {"kid": "k1", "expired_at": 1500}
    clock.now += 3599
    assert cache.key_for("k1", plaid.fetch)["expired_at"] is None  # type: ignore[index]
    clock.now += 2
    assert cache.key_for("k1", plaid.fetch)["expired_at"] == 1500  # type: ignore[index]
    assert plaid.calls == ["k1", "k1"]


def test_a_failed_recheck_keeps_the_cached_key() -> None:
    clock, plaid = Clock(), Plaid()
    cache = KeyCache(clock)
    cache.key_for("k1", plaid.fetch)
    clock.now += 4000
    plaid.down = True
    assert cache.key_for("k1", plaid.fetch) == {"kid": "k1", "expired_at": None}


def test_an_unknown_kid_is_remembered_for_five_minutes() -> None:
    clock, plaid = Clock(), Plaid()
    cache = KeyCache(clock)
    for _ in range(10):
        assert cache.key_for("nope", plaid.fetch) is None
    assert plaid.calls == ["nope"]
    clock.now += 301
    assert cache.key_for("nope", plaid.fetch) is None
    assert plaid.calls == ["nope", "nope"]


def test_a_flood_of_unknown_kids_reaches_plaid_at_most_five_times_a_minute() -> None:
    clock, plaid = Clock(), Plaid()
    cache = KeyCache(clock)
    refused = 0
    for n in range(1000):
        try:
            assert cache.key_for(f"flood-{n}", plaid.fetch) is None
        except KeyUnavailable:
            refused += 1
    assert len(plaid.calls) == 5
    assert refused == 995
    clock.now += 60  # the bucket refills at five a minute
    for n in range(1000, 1010):
        if n < 1005:
            assert cache.key_for(f"flood-{n}", plaid.fetch) is None
        else:
            with pytest.raises(KeyUnavailable):
                cache.key_for(f"flood-{n}", plaid.fetch)
    assert len(plaid.calls) == 10


def test_the_known_key_still_verifies_during_a_flood() -> None:
    clock, plaid = Clock(), Plaid()
    cache = KeyCache(clock)
    cache.key_for("k1", plaid.fetch)
    for n in range(100):
        with contextlib.suppress(KeyUnavailable):
            cache.key_for(f"flood-{n}", plaid.fetch)
    assert cache.key_for("k1", plaid.fetch) == {"kid": "k1", "expired_at": None}


def test_plaid_unreachable_for_a_new_kid_is_unavailable_not_unknown() -> None:
    clock, plaid = Clock(), Plaid()
    plaid.down = True
    cache = KeyCache(clock)
    with pytest.raises(KeyUnavailable):
        cache.key_for("k1", plaid.fetch)
    plaid.down = False
    assert cache.key_for("k1", plaid.fetch) is not None  # not remembered as unknown
