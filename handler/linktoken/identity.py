"""Who the user is, as Plaid and the logs see them; the raw JWT `sub` goes to neither log."""

import hashlib
import hmac

MAX_SUB_LENGTH = 255


def client_user_id(sub: str, hmac_key: bytes | None) -> str:
    """Plaid's `client_user_id`: the `sub` claim itself, or its HMAC-SHA256 (hex) with a key.

    The HMAC form lets an identity provider put an email address in `sub` without sending
    personal data to Plaid, while the same user still maps to the same id every time.

    Example:
        >>> client_user_id("user-123", None)
        'user-123'
        >>> len(client_user_id("ada@example.com", b"0123456789abcdef"))
        64
    """
    if hmac_key is None:
        return sub
    return hmac.new(hmac_key, sub.encode(), hashlib.sha256).hexdigest()


def user_ref(sub: str, hmac_key: bytes | None) -> str:
    """A short, stable pseudonym for log lines, so one user's requests can be found.

    With the secret's `user_id_hmac_key` it is keyed (HMAC-SHA256 of "user_ref:" + sub, a
    different value from `client_user_id`): no list of candidate subjects can reverse it
    without the key. Without a key it is a plain SHA-256, which a list of likely subjects
    (emails) can reverse: configure a key where `sub` is personal data. Operators compute it
    with `infra/scripts/user-ref.py`.

    Example:
        >>> user_ref("user-123", None)
        'fcdec6df4d44dbc6'
        >>> len(user_ref("user-123", b"0123456789abcdef"))
        16
    """
    if hmac_key is None:
        return hashlib.sha256(sub.encode()).hexdigest()[:16]
    return hmac.new(hmac_key, b"user_ref:" + sub.encode(), hashlib.sha256).hexdigest()[:16]


def owner_key(sub: str, hmac_key: bytes) -> str:
    """Whose an Item is, as the Items table stores it: HMAC-SHA256 (hex) of "owner:" + sub.

    Keyed, so a copy of the table names nobody without the secret's key; a third value, apart
    from `client_user_id` and `user_ref`, so none of the three can be matched to another.

    Example:
        >>> key = b"0123456789abcdef"
        >>> owner_key("user-123", key) == owner_key("user-123", key)
        True
        >>> owner_key("user-123", key) != client_user_id("user-123", key)
        True
    """
    return hmac.new(hmac_key, b"owner:" + sub.encode(), hashlib.sha256).hexdigest()


def keyed_digest(purpose: str, value: str, hmac_key: bytes) -> str:
    """HMAC-SHA256 (hex) of purpose + ":" + value: a table key that reveals nothing of a
    value (a public token) to whoever reads the table without the secret's key."""
    return hmac.new(hmac_key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()
