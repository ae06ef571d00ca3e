"""infra/gateway/apigw_event.py for the Items routes: the payload 2.0 event of a routed request
(its route's key, the request's own path, the path parameters) is what the Items handlers read,
and a 204 result is a response without a body (tests/unit/test_serve_units.py has the rest)."""

from __future__ import annotations

import json

import pytest

from infra.gateway.apigw_event import IncomingRequest, allows_body, build_event, to_http_response
from infra.gateway.apigw_routes import RouteTable
from infra.gateway.cfn_template import function_routes, load_template
from linktoken.http_event import method_of, parse_event, path_parameter

ROUTES = RouteTable(function_routes(load_template()))


def request(method: str, path: str, body: bytes = b"", query: str = "") -> IncomingRequest:
    headers = [("Host", "127.0.0.1:3000")]
    if body:
        headers.append(("Content-Type", "application/json"))
    return IncomingRequest(method, path, query, headers, body, "127.0.0.1")


def routed_event(incoming: IncomingRequest, sub: str = "user-7") -> dict[str, object]:
    match = ROUTES.match(incoming.method, incoming.raw_path)
    assert match is not None
    return build_event(incoming, {"sub": sub}, match.route.route_key, match.path_parameters)


def test_a_delete_carries_its_routes_key_its_own_path_and_the_item_id() -> None:
    event = routed_event(request("DELETE", "/items/eVBnVMp7zdTJ"))
    context = event["requestContext"]
    assert isinstance(context, dict)
    assert event["routeKey"] == context["routeKey"] == "DELETE /items/{item_id}"
    assert event["rawPath"] == context["http"]["path"] == "/items/eVBnVMp7zdTJ"
    assert context["http"]["method"] == "DELETE"
    assert event["pathParameters"] == {"item_id": "eVBnVMp7zdTJ"}
    # What items_app reads of it.
    assert method_of(event) == "DELETE"
    assert path_parameter(event, "item_id") == "eVBnVMp7zdTJ"
    assert parse_event(event, "DELETE").sub == "user-7"


def test_an_encoded_item_id_arrives_decoded_and_the_raw_path_as_sent() -> None:
    event = routed_event(request("DELETE", "/items/a%20b"))
    assert event["pathParameters"] == {"item_id": "a b"}
    assert event["rawPath"] == "/items/a%20b"


@pytest.mark.parametrize(
    ("method", "path", "route_key"),
    [("GET", "/items", "GET /items"), ("POST", "/items", "POST /items")],
)
def test_a_route_without_variables_has_no_path_parameters(
    method: str, path: str, route_key: str
) -> None:
    body = b'{"public_token":"public-sandbox-1"}' if method == "POST" else b""
    event = routed_event(request(method, path, body, query="cursor=2"))
    assert event["routeKey"] == route_key
    assert "pathParameters" not in event, "absent keys are left out, not null"
    assert event["queryStringParameters"] == {"cursor": "2"}


def test_a_list_is_what_the_handler_parses_as_a_get_without_a_body() -> None:
    event = routed_event(request("GET", "/items"))
    parsed = parse_event(event, "GET")
    assert (parsed.sub, parsed.body) == ("user-7", None)
    assert "body" not in event


def test_without_a_route_key_the_route_is_the_requests_method_and_path() -> None:
    event = build_event(request("POST", "/link-token", b"{}"), {"sub": "u"})
    assert event["routeKey"] == "POST /link-token"
    assert "pathParameters" not in event


def test_a_204_result_is_a_response_with_no_body() -> None:
    result = {"statusCode": 204, "headers": {"Cache-Control": "no-store"}, "body": ""}
    response = to_http_response(result)
    assert (response.status, response.body) == (204, b"")
    assert response.header("content-type") is None, "no body, so no content type is added"
    assert response.header("cache-control") == "no-store"
    # A body the function should not have given a 204 cannot travel either.
    stray = to_http_response({"statusCode": 204, "body": json.dumps({"x": 1})})
    assert (stray.body, stray.header("content-type")) == (b"", None)


@pytest.mark.parametrize(
    ("status", "allowed"),
    [(100, False), (199, False), (200, True), (201, True), (204, False), (304, False), (404, True)],
)
def test_only_statuses_http_lets_carry_a_body_carry_one(status: int, allowed: bool) -> None:
    assert allows_body(status) is allowed
