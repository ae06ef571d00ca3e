"""Signs webhooks the way Plaid does, with a P-256 key of its own: NOT Plaid's key.

Plaid puts a JWT in the `Plaid-Verification` header of every webhook: header
`{"alg": "ES256", "kid": ..., "typ": "JWT"}`, claims `{"iat": ..., "request_body_sha256": ...}`
(the hex SHA-256 of the raw body bytes), and serves the public key as a JWK from
`/webhook_verification_key/get`. The Plaid stand-in signs with a `SigningKey` from here; the
attack tests use the forgers below for what an attacker would send instead.

    key = SigningKey.new()
    headers = {"Plaid-Verification": key.sign(body)}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

HEADER = "Plaid-Verification"


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _coordinate(value: int) -> str:
    return _b64url(value.to_bytes(32, "big"))


@dataclass
class SigningKey:
    """One verification key: `expired_at` set (Unix time) once it is rotated out."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    created_at: int
    expired_at: int | None = None

    @classmethod
    def new(cls, kid: str | None = None, created_at: int | None = None) -> SigningKey:
        return cls(
            kid=kid or str(uuid.uuid4()),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            created_at=int(time.time()) if created_at is None else created_at,
        )

    def jwk(self) -> dict[str, Any]:
        """The key as `/webhook_verification_key/get` gives it (`key`)."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "alg": "ES256",
            "crv": "P-256",
            "kid": self.kid,
            "kty": "EC",
            "use": "sig",
            "x": _coordinate(numbers.x),
            "y": _coordinate(numbers.y),
            "created_at": self.created_at,
            "expired_at": self.expired_at,
        }

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(
        self, body: bytes, iat: int | None = None, claims: dict[str, Any] | None = None
    ) -> str:
        """The `Plaid-Verification` value for `body`, signed now (or at `iat`). `claims`
        replaces the claims entirely (a test's own)."""
        payload = claims or {
            "iat": int(time.time()) if iat is None else iat,
            "request_body_sha256": body_sha256(body),
        }
        return jwt.encode(payload, self.private_key, algorithm="ES256", headers={"kid": self.kid})


# ------------------------------------------------------------------ forgers --------------
def _compact(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> tuple[str, str]:
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    return signing_input, signing_input + "." + _b64url(signature)


def claims_for(body: bytes, iat: int | None = None) -> dict[str, Any]:
    return {
        "iat": int(time.time()) if iat is None else iat,
        "request_body_sha256": body_sha256(body),
    }


def unsigned(body: bytes, kid: str, alg: str = "none") -> str:
    """A token with `alg: none` (or any name given) and no signature."""
    _, token = _compact({"alg": alg, "kid": kid, "typ": "JWT"}, claims_for(body), b"")
    return token


def hmac_with_public_key(body: bytes, key: SigningKey, alg: str = "HS256") -> str:
    """The algorithm-confusion forgery: HMAC over the token with the public key (as PEM, and
    as Plaid's JWK JSON would be read) as the shared secret."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    signing_input, _ = _compact(header, claims_for(body), b"")
    signature = hmac.new(key.public_pem(), signing_input.encode(), digest).digest()
    return signing_input + "." + _b64url(signature)


def with_header(token: str, **changes: Any) -> str:
    """The same signature under a changed header (a swapped `kid` or `alg`)."""
    head, claims, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    header.update(changes)
    return ".".join(
        (_b64url(json.dumps(header, separators=(",", ":")).encode()), claims, signature)
    )
