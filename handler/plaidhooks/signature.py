"""The `Plaid-Verification` check, as Plaid documents it and nothing looser.

The header is a JWT: its algorithm must be ES256 (decided before any key is looked up, so
`none`, HMAC and every other algorithm are refused without a lookup), its `kid` names a key
from `/webhook_verification_key/get` that has not expired, its signature verifies with that
key, its `iat` is at most five minutes old, and its `request_body_sha256` equals the SHA-256 of
the raw body bytes (compared in constant time). Each failure is a `Rejected` with its reason.
"""

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ALGORITHM: Final = "ES256"
MAX_AGE_SECONDS: Final = 300
# A webhook signed a little in the future: the two clocks disagree; more than this is refused.
CLOCK_SKEW_SECONDS: Final = 60
MAX_TOKEN_CHARS: Final = 2048
MAX_KID_CHARS: Final = 128

# The reasons a webhook is refused: the log field and the metric's dimension.
REASONS: Final = (
    "missing_header",
    "malformed",
    "wrong_algorithm",
    "unknown_key",
    "expired_key",
    "bad_signature",
    "stale",
    "body_hash",
)


class Rejected(Exception):
    """The webhook is not Plaid's as sent: `reason` is one of REASONS."""

    def __init__(self, reason: str, kid: str | None = None) -> None:
        assert reason in REASONS  # nosec B101 - a programming error, not input
        super().__init__(reason)
        self.reason = reason
        self.kid = kid


@dataclass(frozen=True, slots=True)
class Verified:
    kid: str
    signed_at: int  # the JWT's iat: when Plaid signed this delivery


# kid -> the JWK Plaid gives for it, or None when Plaid knows no such key.
KeyLookup = Callable[[str], Mapping[str, Any] | None]


def verify(token: str | None, body: bytes, key_for: KeyLookup, now: float) -> Verified:
    """Check one webhook; raise `Rejected` at the first failing step. `key_for` may raise
    its own exception when the key cannot be looked up (that is not a rejection)."""
    if not token:
        raise Rejected("missing_header")
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise Rejected("malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Rejected("malformed") from None
    if header.get("alg") != ALGORITHM:
        raise Rejected("wrong_algorithm")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS:
        raise Rejected("malformed")
    jwk = key_for(kid)
    if jwk is None:
        raise Rejected("unknown_key", kid)
    expired_at = jwk.get("expired_at")
    if expired_at is not None and (not isinstance(expired_at, int) or expired_at <= now):
        raise Rejected("expired_key", kid)
    claims = _signed_claims(token, jwk, kid)
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise Rejected("stale", kid)
    if now - iat > MAX_AGE_SECONDS or iat - now > CLOCK_SKEW_SECONDS:
        raise Rejected("stale", kid)
    claimed = claims.get("request_body_sha256")
    actual = hashlib.sha256(body).hexdigest()
    if not isinstance(claimed, str) or not hmac.compare_digest(
        claimed.encode("utf-8", "replace"), actual.encode()
    ):
        raise Rejected("body_hash", kid)
    return Verified(kid, iat)


def _signed_claims(token: str, jwk: Mapping[str, Any], kid: str) -> dict[str, Any]:
    """The claims, once the signature verifies with this P-256 key and ES256 only. Time claims
    are checked by the caller (iat against five minutes), none by PyJWT."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise Rejected("bad_signature", kid)
    try:
        key = ECAlgorithm.from_jwk(json.dumps(dict(jwk)))
        if isinstance(key, ec.EllipticCurvePrivateKey):  # a JWK with "d": use its public half
            key = key.public_key()
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        raise Rejected("bad_signature", kid) from None
    return claims
