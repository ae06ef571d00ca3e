"""BENCHMARK FIXTURE, NOT THE PRODUCT: baseline (2), Plaid's official SDK (`plaid-python`).

Wired the way Plaid's quickstart (python/server.py) wires it: `plaid.Configuration` with the
keys and `plaidVersion` in `api_key`, one `ApiClient` and `PlaidApi` at module level, request
models (`LinkTokenCreateRequest`, `Products`, `CountryCode`) built per call and
`response.to_dict()` returned. The keys come from Secrets Manager, read once at module level
(the quickstart reads them from the environment once). No logs, traces or metrics.
`PLAID_BASE_URL` points the SDK's host at the benchmark's stand-in. Never deploy it.
"""

import json
import os

import boto3
import plaid
from plaid.api import plaid_api
from plaid.model.country_code import CountryCode
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.products import Products

_keys = json.loads(
    boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["PLAID_SECRET_ID"])[
        "SecretString"
    ]
)

configuration = plaid.Configuration(
    host=os.environ.get("PLAID_BASE_URL", plaid.Environment.Sandbox),
    api_key={
        "clientId": _keys["client_id"],
        "secret": _keys["secret"],
        "plaidVersion": "2020-09-14",
    },
)
api_client = plaid.ApiClient(configuration)
client = plaid_api.PlaidApi(api_client)

PRODUCTS = [Products(p) for p in os.environ.get("PLAID_PRODUCTS", "transactions").split(",")]
COUNTRY_CODES = os.environ.get("PLAID_COUNTRY_CODES", "US").split(",")


def lambda_handler(event, context):  # type: ignore[no-untyped-def]
    user_id = event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
    request = LinkTokenCreateRequest(
        products=PRODUCTS,
        client_name=os.environ.get("PLAID_CLIENT_NAME", "My App"),
        country_codes=[CountryCode(code) for code in COUNTRY_CODES],
        language="en",
        user=LinkTokenCreateRequestUser(client_user_id=user_id),
    )
    try:
        response = client.link_token_create(request)
    except plaid.ApiException as exc:
        return {"statusCode": 500, "body": json.dumps({"error": json.loads(exc.body)})}
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(response.to_dict(), default=str),
    }
