"""The warm floor: one raw kept-alive `requests.Session().post` to the same stand-in.

Not a handler: run by child.py like one, so it is timed exactly like the variants. `raw_post`
uses a default `requests.Session()` (the definition of the floor); `tight_post` one with
`trust_env=False` (no per-request proxy/netrc look-ups), the fastest a requests-based handler
can go; `urllib3_post` the same POST on urllib3 directly (what requests itself costs per call).
The results show all three; the overhead targets use `raw_post`.
"""

import json
import os
from typing import Any

import requests
import urllib3

URL = os.environ["PLAID_BASE_URL"] + "/link/token/create"
BODY = json.dumps(
    {
        "client_name": "Link Token Demo",
        "language": "en",
        "country_codes": ["US"],
        "user": {"client_user_id": "user-0001"},
        "products": ["transactions"],
    },
    separators=(",", ":"),
).encode()
HEADERS = {
    "Content-Type": "application/json",
    "PLAID-CLIENT-ID": os.environ["BENCH_PLAID_CLIENT_ID"],
    "PLAID-SECRET": os.environ["BENCH_PLAID_SECRET"],
}

raw_session = requests.Session()
tight_session = requests.Session()
tight_session.trust_env = False
tight_session.verify = os.environ["REQUESTS_CA_BUNDLE"]


pool = urllib3.PoolManager(ca_certs=os.environ["REQUESTS_CA_BUNDLE"])


def raw_post(event: Any, context: Any) -> dict[str, Any]:
    response = raw_session.post(URL, data=BODY, headers=HEADERS, timeout=(2, 6))
    return {"statusCode": response.status_code, "body": response.content.decode()}


def tight_post(event: Any, context: Any) -> dict[str, Any]:
    response = tight_session.post(URL, data=BODY, headers=HEADERS, timeout=(2, 6))
    return {"statusCode": response.status_code, "body": response.content.decode()}


def urllib3_post(event: Any, context: Any) -> dict[str, Any]:
    response = pool.request(
        "POST", URL, body=BODY, headers=HEADERS, timeout=urllib3.Timeout(connect=2, read=6)
    )
    return {"statusCode": response.status, "body": response.data.decode()}
