"""make serve's API Gateway side (LocalApiServer.answer, no socket served) on the template's own
routes: the webhook route has no authorizer (Auth: {Authorizer: NONE}), so it is invoked with
no Authorization at all, any Authorization is ignored, and its event carries no authorizer
claims; every other route is still behind the JWT authorizer."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.gateway.apigw_cors import Cors
from infra.gateway.apigw_event import IncomingRequest
from infra.gateway.apigw_routes import RouteTable
from infra.gateway.cfn_template import (
    access_log_format,
    function_routes,
    http_api_cors,
    load_template,
)
from infra.gateway.lambda_workers import Invoked
from infra.gateway.serve import LocalApiServer

TEMPLATE = load_template()
ROUTES = RouteTable(function_routes(TEMPLATE))


class RecordingPool:
    """A function's pool that records each event and answers 200."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> Invoked:
        self.events.append(event)
        return Invoked({"statusCode": 200, "body": '{"received":true}'}, 1.0)


def api_server(jwt_key: bytes | None) -> LocalApiServer:
    """`jwt_key` None: on loopback (claims passed on unchecked); a key: beyond it."""
    pools = {name: RecordingPool() for name in ROUTES.functions()}
    return LocalApiServer(
        ("127.0.0.1", 0),
        ROUTES,
        pools,  # type: ignore[arg-type]
        Cors(http_api_cors(TEMPLATE), ()),
        access_log_format(TEMPLATE),
        web_root=None,
        standin_in_use=False,
        jwt_key=jwt_key,
    )


@pytest.fixture(params=[None, b"k" * 32], ids=["loopback", "beyond-loopback"])
def server(request: pytest.FixtureRequest) -> Iterator[LocalApiServer]:
    api = api_server(request.param)
    try:
        yield api
    finally:
        api.server_close()


def post(path: str, *headers: tuple[str, str]) -> IncomingRequest:
    return IncomingRequest(
        method="POST",
        raw_path=path,
        raw_query="",
        headers=[("Host", "127.0.0.1:3000"), ("Content-Type", "application/json"), *headers],
        body=b'{"webhook_type":"ITEM"}',
        source_ip="127.0.0.1",
    )


def events_of(server: LocalApiServer, function: str) -> list[dict[str, Any]]:
    pool: RecordingPool = server.pools[function]  # type: ignore[assignment]
    return pool.events


def unsigned_jwt(claims: dict[str, Any]) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}."


def test_a_webhook_needs_no_authorization_and_its_event_has_no_claims(
    server: LocalApiServer,
) -> None:
    response, log = server.answer(post("/webhooks/plaid", ("Plaid-Verification", "eyJ.x.y")))

    assert response.status == 200
    (event,) = events_of(server, "WebhookReceiverFunction")
    assert event["routeKey"] == "POST /webhooks/plaid"
    assert "authorizer" not in event["requestContext"]
    assert event["headers"]["plaid-verification"] == "eyJ.x.y"
    assert event["body"] == '{"webhook_type":"ITEM"}'
    assert "authorizer.error" not in log


@pytest.mark.parametrize("authorization", ["Bearer not-a-jwt", "Basic dTpw"])
def test_a_webhooks_authorization_header_is_ignored_not_refused(
    server: LocalApiServer, authorization: str
) -> None:
    response, _ = server.answer(post("/webhooks/plaid", ("Authorization", authorization)))

    assert response.status == 200
    (event,) = events_of(server, "WebhookReceiverFunction")
    assert "authorizer" not in event["requestContext"], "no claims, even of a readable token"
    assert event["headers"]["authorization"] == authorization, "passed on as any header"


def test_a_readable_token_on_the_webhook_route_is_not_turned_into_claims(
    server: LocalApiServer,
) -> None:
    token = unsigned_jwt({"sub": "someone", "exp": 4102444800})
    server.answer(post("/webhooks/plaid", ("Authorization", f"Bearer {token}")))

    (event,) = events_of(server, "WebhookReceiverFunction")
    assert "authorizer" not in event["requestContext"]


@pytest.mark.parametrize(
    ("path", "function"),
    [
        ("/items", "ItemExchangeFunction"),
        ("/link-token", "LinkTokenFunction"),
        ("/items/abc/refresh", "ItemsFunction"),
    ],
)
def test_every_other_route_is_still_behind_the_authorizer(
    server: LocalApiServer, path: str, function: str
) -> None:
    response, log = server.answer(post(path))

    assert response.status == 401
    assert json.loads(response.body) == {"message": "Unauthorized"}
    assert events_of(server, function) == [], "the function must not have been called"
    assert log["error.message"] == "Unauthorized"


def test_the_refresh_route_gets_its_user_and_its_item() -> None:
    server = api_server(None)  # on loopback: an unsigned token's claims pass
    token = unsigned_jwt({"sub": "user-7", "exp": 4102444800})
    try:
        response, _ = server.answer(
            post("/items/it%2D1/refresh", ("Authorization", f"Bearer {token}"))
        )
    finally:
        server.server_close()

    assert response.status == 200
    (event,) = events_of(server, "ItemsFunction")
    assert event["routeKey"] == "POST /items/{item_id}/refresh"
    assert event["pathParameters"] == {"item_id": "it-1"}
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] == "user-7"
