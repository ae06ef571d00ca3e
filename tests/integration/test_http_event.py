"""`linktoken.http_event` where a token must be created: through the real `app.lambda_handler`,
with moto's Secrets Manager and the loopback Plaid stand-in.
"""

from __future__ import annotations

from typing import Any

from linktoken.http_event import MAX_BODY_BYTES
from tests.conftest import make_event


def padded(size: int, head: str = '{"platform": "web"') -> str:
    """Valid JSON (when `head` is) of exactly `size` UTF-8 bytes: whitespace before the brace."""
    return head + " " * (size - len(head.encode()) - 1) + "}"


# --- base64 bodies ----------------------------------------------------------------------------


def test_base64_size_limit_applies_to_the_decoded_body(invoke: Any) -> None:
    at_limit = make_event(raw_body=padded(MAX_BODY_BYTES), base64_body=True)
    over_limit = make_event(raw_body=padded(MAX_BODY_BYTES + 1), base64_body=True)
    assert len(at_limit["body"]) > MAX_BODY_BYTES  # the encoded form is over 16 KiB

    assert invoke(at_limit)["statusCode"] == 200
    assert invoke(over_limit)["statusCode"] == 413


# --- content types ----------------------------------------------------------------------------


def test_empty_body_with_a_foreign_content_type_creates_a_token(invoke: Any) -> None:
    assert invoke(make_event(content_type="text/plain"))["statusCode"] == 200
