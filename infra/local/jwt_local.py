"""The JWT authorizer, played locally: the token's claims WITHOUT checking its signature.

The deployed API's JWT authorizer verifies the signature, `iss`, `aud` and `exp`, then hands
the function the claims as strings under `requestContext.authorizer.jwt.claims`. Locally there
is no identity provider, so any well-formed token is accepted (`exp`/`nbf` still apply), and
its claims are passed on the way API Gateway passes them. Local use only, and said so at start.

A missing or unreadable token gets what the authorizer answers: 401 {"message":"Unauthorized"}
with a `www-authenticate` Bearer challenge; the function is never called.
"""

from __future__ import annotations

import base64
import binascii
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
    authorization: str | None, now: float | None = None
) -> dict[str, str] | Refusal:
    """The claims to put in the event, or the reason to answer 401."""
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
    now = time.time() if now is None else now
    expires, not_before = payload.get("exp"), payload.get("nbf")
    if isinstance(expires, int | float) and expires <= now:
        return _invalid("the token has expired")
    if isinstance(not_before, int | float) and not_before > now:
        return _invalid("the token is not valid yet")
    return {str(key): claim_string(value) for key, value in payload.items()}


def _invalid(reason: str) -> Refusal:
    return Refusal(reason, f'Bearer error="invalid_token", error_description="{reason}"')


def dev_token(sub: str = DEV_SUB, lifetime_s: int = 24 * 3600, now: float | None = None) -> str:
    """An unsigned development JWT (alg none): only the local authorizer accepts it."""
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": sub,
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "iat": issued,
        "exp": issued + lifetime_s,
    }
    return f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(claims)}.unsigned"
