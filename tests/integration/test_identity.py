"""The raw JWT `sub` through the real handler (moto, the loopback stand-in): never sent to
Plaid, never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from linktoken.identity import user_ref
from tests.conftest import (
    HMAC_KEY,
    body_of,
    make_event,
    secret_json,
)

# --- client_user_id ---------------------------------------------------------------------------


def test_raw_sub_is_neither_sent_to_plaid_nor_logged(
    invoke: Any, plaid: Any, aws: Any, output: Any
) -> None:
    aws.put_secret_value(
        SecretId="plaid-link-token/test", SecretString=secret_json(user_id_hmac_key=HMAC_KEY)
    )
    sub = "ada.lovelace@example.com"

    response = invoke(make_event({}, sub=sub))

    assert response["statusCode"] == 200
    [request] = plaid.requests
    sent = json.loads(request["body"])["user"]["client_user_id"]
    assert sent == hmac.new(HMAC_KEY.encode(), sub.encode(), hashlib.sha256).hexdigest()
    assert sub.encode() not in request["body"]
    assert sub not in json.dumps(request["headers"])
    assert sub not in output.read()
    assert sub not in json.dumps(body_of(response))
    [line] = output.logs("link_token_created")
    assert line["user_ref"] == user_ref(sub, HMAC_KEY.encode())  # keyed: no list reverses it
    assert line["user_ref"] != hashlib.sha256(sub.encode()).hexdigest()[:16]
