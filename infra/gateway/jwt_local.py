"""The JWT authorizer, played locally: the token's claims, its signature checked only against
a per-run key when the server is reachable beyond loopback.

The deployed API's JWT authorizer verifies the signature, `iss`, `aud` and `exp`, then hands
the function the claims as strings under `requestContext.authorizer.jwt.claims`. Locally there
is no identity provider, so on loopback any well-formed token is accepted (`exp`/`nbf` still
apply), and its claims are passed on the way API Gateway passes them. Bound beyond loopback,
`make serve` passes a random per-run `key`: then only tokens signed with it (HS256, such as
`dev_token(key=...)`, which the banner prints) are accepted.

A missing or unreadable token gets what the authorizer answers: 401 {"message":"Unauthorized"}
with a `www-authenticate` Bearer challenge; the function is never called.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

DEV_SUB = "local-dev-user"
DEV_ISSUER = "https://local.invalid/make-serve"
DEV_AUDIENCE = "local-app"


@dataclass(frozen=True)
class Refusal:
    """Why the authorizer said 401, and the challenge it sends."""

    reason: str
    www_authenticate: str


def _b64url_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def _b64url(doc: dict[str, Any]) -> str:
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def claim_string(value: Any) -> str:
    """A claim as API Gateway passes it: strings as they are, numbers and lists as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + " ".join(claim_string(item) for item in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def authorize(  # noqa: PLR0911 - one return per reason to refuse
    authorization: str | None, now: float | None = None, key: bytes | None = None
) -> dict[str, str] | Refusal:
    """The claims to put in the event, or the reason to answer 401. With `key`, the token
    must be signed with it (HS256)."""
    if authorization is None or not authorization.strip():
        return Refusal("missing Authorization header", "Bearer")
    token = authorization.strip()
    if token[:7].lower() == "bearer ":  # the authorizer accepts the token with or without it
        token = token[7:].strip()
    parts = token.split(".")
    if len(parts) != 3:
        return _invalid("the token is not a JWT (header.payload.signature)")
    try:
        header, payload = _b64url_json(parts[0]), _b64url_json(parts[1])
    except (ValueError, binascii.Error, UnicodeError):
        return _invalid("the token's header or payload is not base64url JSON")
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return _invalid("the token's header or payload is not a JSON object")
    if key is not None and not _signed_with(key, parts, header):
        return _invalid("the token is not signed with this run's key: use the banner's token")
    now = time.time() if now is None else now
    expires, not_before = payload.get("exp"), payload.get("nbf")
    if isinstance(expires, int | float) and expires <= now:
        return _invalid("the token has expired")
    if isinstance(not_before, int | float) and not_before > now:
        return _invalid("the token is not valid yet")
    return {str(key): claim_string(value) for key, value in payload.items()}


def _signature(key: bytes, signing_input: str) -> str:
    digest = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _signed_with(key: bytes, parts: list[str], header: dict[str, Any]) -> bool:
    if header.get("alg") != "HS256":  # never "none", never another algorithm
        return False
    try:
        expected = _signature(key, f"{parts[0]}.{parts[1]}")
        return hmac.compare_digest(expected.encode(), parts[2].encode("ascii"))
    except UnicodeError:
        return False


def _invalid(reason: str) -> Refusal:
    return Refusal(reason, f'Bearer error="invalid_token", error_description="{reason}"')


def dev_token(
    sub: str = DEV_SUB,
    lifetime_s: int = 24 * 3600,
    now: float | None = None,
    key: bytes | None = None,
) -> str:
    """A development JWT only the local authorizer accepts: unsigned (alg none), or signed
    HS256 with `key`."""
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": sub,
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "iat": issued,
        "exp": issued + lifetime_s,
    }
    if key is None:
        return f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(claims)}.unsigned"
    signing_input = f"{_b64url({'alg': 'HS256', 'typ': 'JWT'})}.{_b64url(claims)}"
    return f"{signing_input}.{_signature(key, signing_input)}"
