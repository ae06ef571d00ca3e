"""The `client_user_id` the service sends Plaid for a JWT `sub` (`linktoken.identity`), with fakes:
the `sub` itself without an HMAC key, a stable HMAC of it with one.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from linktoken.secret_store import PlaidCredentials
from tests.conftest import (
    CLIENT_ID,
    HMAC_KEY,
    SECRET,
)
from tests.helpers_service import KEYS, FakePlaid, FakeSecrets, create, service, token

# --- client_user_id ---------------------------------------------------------------------------


HMAC_KEYS = PlaidCredentials(CLIENT_ID, SECRET, user_id_hmac_key=HMAC_KEY.encode())


def sent_user_ids(credentials: PlaidCredentials, *subs: str) -> list[str]:
    plaid = FakePlaid(*(token() for _ in subs))
    svc = service(FakeSecrets(credentials), plaid)
    for sub in subs:
        create(svc, sub)
    return [body["user"]["client_user_id"] for body, _ in plaid.calls]


def test_client_user_id_is_the_sub_without_an_hmac_key() -> None:
    assert sent_user_ids(KEYS, "user-0001") == ["user-0001"]


def test_client_user_id_is_a_stable_hmac_of_the_sub_with_a_key() -> None:
    sub = "ada.lovelace@example.com"

    first, again, other = sent_user_ids(HMAC_KEYS, sub, sub, "grace.hopper@example.com")

    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert first == again
    assert first != other
    assert first == hmac.new(HMAC_KEY.encode(), sub.encode(), hashlib.sha256).hexdigest()


def test_hmac_depends_on_the_key() -> None:
    other_key = PlaidCredentials(CLIENT_ID, SECRET, user_id_hmac_key=b"another-key-of-16+ chars")
    assert sent_user_ids(HMAC_KEYS, "u1") != sent_user_ids(other_key, "u1")


# --- owner_key --------------------------------------------------------------------------------


def test_the_owner_key_is_keyed_stable_and_unlike_the_other_pseudonyms() -> None:
    from linktoken.identity import client_user_id, owner_key, user_ref

    key = HMAC_KEY.encode()
    expected = hmac.new(key, b"owner:ada@example.com", hashlib.sha256).hexdigest()
    assert owner_key("ada@example.com", key) == expected
    assert owner_key("ada@example.com", b"another key 0123456") != expected
    assert expected not in {
        client_user_id("ada@example.com", key),
        user_ref("ada@example.com", key),
    }
