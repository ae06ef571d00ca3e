"""plaidhooks.signature: a webhook Plaid did not sign, or that changed on the way, is refused,
each attack at its own check; one Plaid did sign passes. Tokens come from
infra/doubles/webhook_signer.py (signed as Plaid signs) and its forgers."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any

import jwt
import pytest

from infra.doubles.webhook_signer import (
    SigningKey,
    hmac_with_public_key,
    unsigned,
    with_header,
)
from plaidhooks.signature import Rejected, verify

BODY = json.dumps(
    {"webhook_type": "ITEM", "webhook_code": "ERROR", "item_id": "item-1", "environment": "sandbox"}
).encode()
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.new(kid="kid-1", created_at=NOW - 86_400)


def keys_of(*known: SigningKey) -> Any:
    table = {k.kid: k.jwk() for k in known}
    looked_up: list[str] = []

    def key_for(kid: str) -> Mapping[str, Any] | None:
        looked_up.append(kid)
        return table.get(kid)

    key_for.looked_up = looked_up  # type: ignore[attr-defined]
    return key_for


def reason(token: str | None, body: bytes, key_for: Any, now: float = NOW) -> str:
    with pytest.raises(Rejected) as caught:
        verify(token, body, key_for, now)
    return caught.value.reason


def test_a_webhook_plaid_signed_passes_with_its_signing_time(key: SigningKey) -> None:
    token = key.sign(BODY, iat=NOW - 10)
    verified = verify(token, BODY, keys_of(key), NOW)
    assert (verified.kid, verified.signed_at) == ("kid-1", NOW - 10)


def test_no_header_and_garbage_are_refused_before_any_key_lookup(key: SigningKey) -> None:
    key_for = keys_of(key)
    assert reason(None, BODY, key_for) == "missing_header"
    assert reason("", BODY, key_for) == "missing_header"
    assert reason("not-a-jwt", BODY, key_for) == "malformed"
    assert reason("a.b.c", BODY, key_for) == "malformed"
    assert reason("x" * 5000, BODY, key_for) == "malformed"
    assert key_for.looked_up == []


def test_a_tampered_body_is_refused_by_the_body_hash(key: SigningKey) -> None:
    token = key.sign(BODY, iat=NOW)
    tampered = BODY.replace(b"ERROR", b"LOGIN_REPAIRED")
    assert reason(token, tampered, keys_of(key)) == "body_hash"
    # The same JSON re-serialised (what hashing the parsed object would accept) is refused too.
    reserialised = json.dumps(json.loads(BODY), indent=1).encode()
    assert reason(token, reserialised, keys_of(key)) == "body_hash"


def test_alg_none_is_refused_without_a_key_lookup(key: SigningKey) -> None:
    key_for = keys_of(key)
    for alg in ("none", "None", "NONE"):
        assert reason(unsigned(BODY, key.kid, alg), BODY, key_for) == "wrong_algorithm"
    assert key_for.looked_up == []


def test_hmac_signed_with_the_public_key_as_secret_is_refused(key: SigningKey) -> None:
    key_for = keys_of(key)
    for alg in ("HS256", "HS384", "HS512"):
        assert reason(hmac_with_public_key(BODY, key, alg), BODY, key_for) == "wrong_algorithm"
    assert key_for.looked_up == []


def test_other_asymmetric_algorithms_are_refused(key: SigningKey) -> None:
    token = key.sign(BODY, iat=NOW)
    for alg in ("ES384", "ES512", "RS256", "PS256", "EdDSA", "es256"):
        assert reason(with_header(token, alg=alg), BODY, keys_of(key)) == "wrong_algorithm"


def test_a_signature_by_another_key_under_a_known_kid_is_refused(key: SigningKey) -> None:
    impostor = SigningKey.new(kid=key.kid)
    assert reason(impostor.sign(BODY, iat=NOW), BODY, keys_of(key)) == "bad_signature"


def test_a_changed_claim_breaks_the_signature(key: SigningKey) -> None:
    token = key.sign(BODY, iat=NOW - 1000)
    head, _, signature = token.split(".")
    fresh = base64.urlsafe_b64encode(
        json.dumps({"iat": NOW, "request_body_sha256": "0" * 64}).encode()
    ).rstrip(b"=")
    assert reason(f"{head}.{fresh.decode()}.{signature}", BODY, keys_of(key)) == "bad_signature"


def test_a_swapped_kid_names_a_key_that_does_not_verify(key: SigningKey) -> None:
    other = SigningKey.new(kid="kid-2")
    token = with_header(key.sign(BODY, iat=NOW), kid=other.kid)
    assert reason(token, BODY, keys_of(key, other)) == "bad_signature"


def test_an_unknown_kid_is_refused(key: SigningKey) -> None:
    token = SigningKey.new(kid="kid-unknown").sign(BODY, iat=NOW)
    assert reason(token, BODY, keys_of(key)) == "unknown_key"


def test_an_expired_key_is_refused_once_its_expiry_has_passed() -> None:
    rotated = SigningKey.new(kid="kid-old", created_at=NOW - 10_000)
    token = rotated.sign(BODY, iat=NOW)
    rotated.expired_at = NOW - 1
    assert reason(token, BODY, keys_of(rotated)) == "expired_key"
    rotated.expired_at = NOW + 3600  # announced, not yet passed
    assert verify(token, BODY, keys_of(rotated), NOW).kid == "kid-old"


def test_a_stale_iat_is_refused_and_five_minutes_is_the_edge(key: SigningKey) -> None:
    assert reason(key.sign(BODY, iat=NOW - 301), BODY, keys_of(key)) == "stale"
    assert verify(key.sign(BODY, iat=NOW - 300), BODY, keys_of(key), NOW).signed_at == NOW - 300
    assert reason(key.sign(BODY, iat=NOW + 120), BODY, keys_of(key)) == "stale"


def test_an_iat_that_is_not_a_whole_number_is_refused(key: SigningKey) -> None:
    for iat in ("1800000000", 1_800_000_000.5, None, True):
        claims = {"iat": iat, "request_body_sha256": "x"}
        if iat is None:
            claims.pop("iat")
        token = key.sign(BODY, claims=claims)
        assert reason(token, BODY, keys_of(key)) == "stale"


def test_a_replay_within_five_minutes_verifies_and_later_is_stale(key: SigningKey) -> None:
    """A replayed webhook passes the signature check while fresh: the queue's de-duplication
    and the processor's ordering make applying it again harmless (tests of the processor);
    after five minutes it is refused here."""
    token = key.sign(BODY, iat=NOW)
    assert verify(token, BODY, keys_of(key), NOW + 60).signed_at == NOW
    assert reason(token, BODY, keys_of(key), now=NOW + 301) == "stale"


def test_pyjwt_signs_the_way_plaid_documents(key: SigningKey) -> None:
    """The signer's tokens have Plaid's header: what the receiver is tested against."""
    token = key.sign(BODY, iat=int(time.time()))
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "kid-1", "typ": "JWT"}
