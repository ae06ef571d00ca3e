"""What the Plaid client tests send: fake keys and a minimal `/link/token/create` body."""

from __future__ import annotations

from linktoken.secret_store import PlaidCredentials
from tests.conftest import CLIENT_ID, SECRET

CREDENTIALS = PlaidCredentials(client_id=CLIENT_ID, secret=SECRET)
BODY = {
    "client_name": "Acme",
    "language": "en",
    "country_codes": ["US"],
    "user": {"client_user_id": "user-0001"},
    "products": ["transactions"],
}
