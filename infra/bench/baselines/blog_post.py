"""BENCHMARK FIXTURE, NOT THE PRODUCT: baseline (1), the common blog-post link-token handler.

The shape most tutorials show: a boto3 client at module level, the Plaid secret read from
Secrets Manager on every call, a bare `requests.post` per call (a new TCP + TLS connection every
time), credentials in the JSON body, a generic error. No logs, traces, metrics or validation.
It exists only so `make bench` can measure the product against it; never deploy it.
"""

import json
import os

import boto3
import requests

secrets = boto3.client("secretsmanager")
PLAID_URL = os.environ.get("PLAID_BASE_URL", "https://sandbox.plaid.com") + "/link/token/create"


def lambda_handler(event, context):  # type: ignore[no-untyped-def]
    try:
        value = secrets.get_secret_value(SecretId=os.environ["PLAID_SECRET_ID"])
        keys = json.loads(value["SecretString"])
        user_id = event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
        response = requests.post(
            PLAID_URL,
            json={
                "client_id": keys["client_id"],
                "secret": keys["secret"],
                "client_name": os.environ.get("PLAID_CLIENT_NAME", "My App"),
                "user": {"client_user_id": user_id},
                "products": os.environ.get("PLAID_PRODUCTS", "transactions").split(","),
                "country_codes": ["US"],
                "language": "en",
            },
            timeout=10,
        )
        link_token = response.json()["link_token"]
    except Exception:
        return {"statusCode": 500, "body": json.dumps({"error": "Unable to fetch link_token"})}
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"link_token": link_token}),
    }
