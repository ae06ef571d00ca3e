"""Plaid's webhook verification keys, cached per `kid`, without letting a flood of made-up
`kid`s become a flood of calls to Plaid.

- A known key is kept and looked up again after `RECHECK_SECONDS`, so that its `expired_at`
  (set by Plaid when it rotates the key) is learned; a failed re-check keeps the cached key.
- A `kid` Plaid does not know is remembered as unknown for `UNKNOWN_SECONDS` (at most
  `MAX_UNKNOWN` of them, oldest dropped first).
- At most `LOOKUPS_PER_MINUTE` lookups reach Plaid per container (a token bucket): past it, an
  uncached `kid` raises `KeyUnavailable` (answered 503, so Plaid retries a real webhook later)
  instead of calling Plaid.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

RECHECK_SECONDS: Final = 3600.0
UNKNOWN_SECONDS: Final = 300.0
MAX_UNKNOWN: Final = 256
MAX_KNOWN: Final = 64  # Plaid rotates rarely: a handful of live keys at most
LOOKUPS_PER_MINUTE: Final = 5


class KeyUnavailable(Exception):
    """The key could not be looked up now (Plaid unreachable, or the lookup budget spent)."""


# kid -> Plaid's JWK, None when Plaid answered that it knows no such key; raises
# KeyUnavailable when there is no answer.
Fetch = Callable[[str], Mapping[str, Any] | None]


@dataclass(slots=True)
class _Known:
    jwk: Mapping[str, Any]
    checked_at: float


class KeyCache:
    """`key_for(kid)` for `signature.verify`; thread-safe (one container serves one request at a
    time, but a test or a local server may share it)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._tokens = float(LOOKUPS_PER_MINUTE)
        self._filled_at = clock()
        self._lock = threading.Lock()
        self.lookups = 0  # calls made to Plaid, for tests and the log line

    def key_for(self, kid: str, fetch: Fetch) -> Mapping[str, Any] | None:
        now = self._clock()
        with self._lock:
            known = self._known.get(kid)
            if known is not None and now - known.checked_at < RECHECK_SECONDS:
                return known.jwk
            seen_unknown = self._unknown.get(kid)
            if seen_unknown is not None and now - seen_unknown < UNKNOWN_SECONDS:
                return None
            if not self._take_token(now):
                if known is not None:
                    return known.jwk  # due a re-check, but the budget is spent: keep it
                raise KeyUnavailable("webhook key lookups are rate limited in this container")
            self.lookups += 1
        try:
            jwk = fetch(kid)
        except KeyUnavailable:
            if known is not None:
                return known.jwk  # a failed re-check keeps the key
            raise
        with self._lock:
            if jwk is None:
                self._known.pop(kid, None)
                self._unknown[kid] = now
                self._unknown.move_to_end(kid)
                while len(self._unknown) > MAX_UNKNOWN:
                    self._unknown.popitem(last=False)
            else:
                self._unknown.pop(kid, None)
                self._known[kid] = _Known(jwk, now)
                self._known.move_to_end(kid)
                while len(self._known) > MAX_KNOWN:
                    self._known.popitem(last=False)
        return jwk

    def _take_token(self, now: float) -> bool:
        refill = (now - self._filled_at) * LOOKUPS_PER_MINUTE / 60.0
        self._tokens = min(float(LOOKUPS_PER_MINUTE), self._tokens + refill)
        self._filled_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
