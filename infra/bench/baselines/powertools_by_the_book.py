"""BENCHMARK FIXTURE, NOT THE PRODUCT: baseline (3), the by-the-book Powertools handler.

What the Powertools documentation leads to: `APIGatewayHttpResolver` with a
`@app.post("/link-token")` route, Logger/Tracer/Metrics with their decorators (Tracer with its
defaults, so every supported library is patched), `parameters.get_secret(..., transform="json")`
with the default cache, and one module-level `requests.Session` (keep-alive). Observability
comparable to the product's; no request validation. Never deploy it.
"""

import os

import requests
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()
session = requests.Session()

PLAID_URL = os.environ.get("PLAID_BASE_URL", "https://sandbox.plaid.com") + "/link/token/create"


@app.post("/link-token")
@tracer.capture_method(capture_response=False)
def create_link_token() -> dict[str, str]:
    keys = parameters.get_secret(os.environ["PLAID_SECRET_ID"], transform="json")
    sub = app.current_event.request_context.authorizer.jwt_claim["sub"]
    response = session.post(
        PLAID_URL,
        json={
            "client_name": os.environ.get("PLAID_CLIENT_NAME", "My App"),
            "user": {"client_user_id": sub},
            "products": os.environ.get("PLAID_PRODUCTS", "transactions").split(","),
            "country_codes": ["US"],
            "language": "en",
        },
        headers={"PLAID-CLIENT-ID": keys["client_id"], "PLAID-SECRET": keys["secret"]},
        timeout=(2, 6),
    )
    response.raise_for_status()
    body = response.json()
    metrics.add_metric(name="LinkTokenCreated", unit=MetricUnit.Count, value=1)
    logger.info("link token created", extra={"plaid_request_id": body.get("request_id")})
    return {"link_token": body["link_token"], "expiration": body["expiration"]}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event, context):  # type: ignore[no-untyped-def]
    return app.resolve(event, context)
