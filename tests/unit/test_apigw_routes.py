"""infra/gateway/apigw_routes.py: which route (and so which function) API Gateway selects for a
request, and the path parameters it passes; on routes written here, and on template.yaml's."""

from __future__ import annotations

import pytest

from infra.gateway.apigw_routes import RouteTable
from infra.gateway.cfn_template import FunctionRoute, function_routes, load_template


def route(method: str, path: str, function: str = "F") -> FunctionRoute:
    return FunctionRoute(method, path, function, f"{function.lower()}.lambda_handler", 20)


ROUTES = [
    route("POST", "/link-token", "LinkToken"),
    route("POST", "/items", "Exchange"),
    route("GET", "/items", "Items"),
    route("DELETE", "/items/{item_id}", "Items"),
]


def selected(method: str, path: str, routes: list[FunctionRoute] = ROUTES) -> str | None:
    match = RouteTable(routes).match(method, path)
    return match.route.route_key if match else None


@pytest.mark.parametrize(
    ("method", "path", "route_key", "function"),
    [
        ("POST", "/link-token", "POST /link-token", "LinkToken"),
        ("POST", "/items", "POST /items", "Exchange"),
        ("GET", "/items", "GET /items", "Items"),
        ("DELETE", "/items/abc", "DELETE /items/{item_id}", "Items"),
    ],
)
def test_each_method_and_path_selects_its_route_and_function(
    method: str, path: str, route_key: str, function: str
) -> None:
    match = RouteTable(ROUTES).match(method, path)
    assert match is not None
    assert (match.route.route_key, match.route.function) == (route_key, function)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/items"),  # a path that exists, a method it has no route for: 404, not 405
        ("DELETE", "/items"),
        ("GET", "/items/abc"),
        ("GET", "/link-token"),
        ("HEAD", "/items"),  # no GET fallback for HEAD in an HTTP API
        ("post", "/items"),  # methods are case-sensitive
        ("POST", "/Items"),  # so are paths
        ("POST", "/items/"),  # no trailing-slash folding
        ("DELETE", "/items/"),  # a path variable takes a non-empty segment
        ("DELETE", "/items//"),
        ("DELETE", "/items/a/b"),  # ... and one segment only
        ("POST", "/other"),
        ("POST", ""),
        ("POST", "items"),
    ],
)
def test_anything_else_selects_no_route(method: str, path: str) -> None:
    assert selected(method, path) is None


def test_path_parameters_are_decoded_within_their_own_segment() -> None:
    table = RouteTable(ROUTES)
    plain = table.match("DELETE", "/items/eVBnVMp7zdTJ")
    assert plain is not None and plain.path_parameters == {"item_id": "eVBnVMp7zdTJ"}
    encoded = table.match("DELETE", "/items/a%2Fb%20c")
    assert encoded is not None and encoded.path_parameters == {"item_id": "a/b c"}
    routed = table.match("GET", "/items")
    assert routed is not None and routed.path_parameters == {}


def test_a_literal_segment_wins_over_a_variable_whatever_the_order() -> None:
    routes = [route("GET", "/items/{item_id}", "One"), route("GET", "/items/health", "Health")]
    for ordered in (routes, routes[::-1]):
        match = RouteTable(ordered).match("GET", "/items/health")
        assert match is not None and match.route.function == "Health"
        other = RouteTable(ordered).match("GET", "/items/x")
        assert other is not None and other.route.function == "One"


def test_a_greedy_variable_takes_the_rest_of_the_path_and_loses_to_a_plain_one() -> None:
    routes = [route("GET", "/files/{proxy+}", "Greedy"), route("GET", "/files/{name}", "Plain")]
    table = RouteTable(routes)
    deep = table.match("GET", "/files/a/b%2Fc")
    assert deep is not None and deep.route.function == "Greedy"
    assert deep.path_parameters == {"proxy": "a/b/c"}
    one = table.match("GET", "/files/a")
    assert one is not None and one.route.function == "Plain"
    assert table.match("GET", "/files") is None
    assert table.match("GET", "/files/a//b") is None


def test_any_takes_the_methods_its_path_has_no_route_for() -> None:
    routes = [route("ANY", "/things", "Any"), route("GET", "/things", "Get")]
    assert selected("GET", "/things", routes) == "GET /things"
    assert selected("PATCH", "/things", routes) == "ANY /things"
    assert selected("PATCH", "/other", routes) is None


@pytest.mark.parametrize(
    "path", ["$default", "items", "/items/{a}/{rest+}/x", "/items/{", "/a//b", "/x{id}"]
)
def test_route_paths_api_gateway_would_refuse_or_that_are_not_played_are_refused(
    path: str,
) -> None:
    with pytest.raises(ValueError, match="route path"):
        RouteTable([route("GET", path)])


def test_a_route_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        RouteTable([route("GET", "/a", "One"), route("GET", "/a", "Two")])


def test_functions_and_route_keys_are_the_tables() -> None:
    table = RouteTable(ROUTES)
    assert table.functions() == ["LinkToken", "Exchange", "Items"]
    found = table.route_for_key("DELETE /items/{item_id}")
    assert found is not None and found.function == "Items"
    assert table.route_for_key("PUT /items") is None


def test_the_templates_routes_reach_the_designed_functions() -> None:
    table = RouteTable(function_routes(load_template()))
    expected = {  # (function, handler, behind the JWT authorizer)
        ("POST", "/link-token"): ("LinkTokenFunction", "app.lambda_handler", True),
        ("POST", "/items"): ("ItemExchangeFunction", "exchange_app.lambda_handler", True),
        ("GET", "/items"): ("ItemsFunction", "items_app.lambda_handler", True),
        ("DELETE", "/items/x"): ("ItemsFunction", "items_app.lambda_handler", True),
        ("POST", "/items/x/refresh"): ("ItemsFunction", "items_app.lambda_handler", True),
        # Plaid cannot present the app's JWT: its signature is checked by the function.
        ("POST", "/webhooks/plaid"): (
            "WebhookReceiverFunction",
            "webhook_app.lambda_handler",
            False,
        ),
    }
    matched = set()
    for (method, path), designed in expected.items():
        match = table.match(method, path)
        assert match is not None, (method, path)
        route = match.route
        assert (route.function, route.handler, route.authorized) == designed, (method, path)
        matched.add(route.route_key)
    assert matched == {route.route_key for route in table.routes}, "a route not designed here"
    assert table.match("PUT", "/items") is None
    assert table.match("GET", "/webhooks/plaid") is None
    assert table.match("POST", "/items/x/refresh/again") is None
