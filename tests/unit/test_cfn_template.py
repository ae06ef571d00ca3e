"""infra/gateway/cfn_template.py's readers of the functions: their routes and timeouts, on
small templates written here (tests/unit/test_template_items.py reads the real one)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.gateway.cfn_template import (
    LINK_TOKEN_FUNCTION,
    FunctionRoute,
    function_routes,
    function_timeout_seconds,
    parse_template,
)

TEMPLATE = """
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  LinkTokenFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.lambda_handler
      Timeout: 20
      Events:
        Create:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: post, Path: /link-token}
  ItemsFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: items_app.lambda_handler
      Timeout: "25"
      Events:
        List:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: /items}
        Nightly:
          Type: Schedule
          Properties: {Schedule: rate(1 day)}
        Remove:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: DELETE, Path: "/items/{item_id}"}
  Quiet:
    Type: AWS::Serverless::Function
    Properties: {Handler: quiet.handler, Timeout: 3}
  Table:
    Type: AWS::DynamoDB::Table
"""


def template(text: str = TEMPLATE) -> dict[str, Any]:
    return parse_template(text)


def test_routes_are_every_functions_http_api_events_in_template_order() -> None:
    assert function_routes(template()) == [
        FunctionRoute("POST", "/link-token", "LinkTokenFunction", "app.lambda_handler", 20),
        FunctionRoute("GET", "/items", "ItemsFunction", "items_app.lambda_handler", 25),
        FunctionRoute(
            "DELETE", "/items/{item_id}", "ItemsFunction", "items_app.lambda_handler", 25
        ),
    ]


def test_a_route_key_is_api_gateways() -> None:
    (_, _, remove) = function_routes(template())
    assert remove.route_key == "DELETE /items/{item_id}"


def test_a_route_two_events_claim_is_refused() -> None:
    twice = TEMPLATE.replace("Method: GET, Path: /items}", "Method: POST, Path: /link-token}")
    with pytest.raises(ValueError, match=r"POST /link-token"):
        function_routes(template(twice))


def test_a_template_without_functions_has_no_routes() -> None:
    assert function_routes(template("Resources: {}")) == []


def test_timeouts_are_read_per_function_the_link_token_one_by_default() -> None:
    assert LINK_TOKEN_FUNCTION == "LinkTokenFunction"
    assert function_timeout_seconds(template()) == 20
    assert function_timeout_seconds(template(), "ItemsFunction") == 25
    # Not "the first function": the link-token one, wherever it sits.
    reordered = template()
    reordered["Resources"] = dict(reversed(list(reordered["Resources"].items())))
    assert function_timeout_seconds(reordered) == 20


@pytest.mark.parametrize("name", ["Nope", "Table"])
def test_a_timeout_of_something_that_is_not_a_function_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        function_timeout_seconds(template(), name)


def test_the_local_tables_are_created_as_the_stack_creates_the_items_table() -> None:
    from infra.gateway.cfn_template import load_template, table_definition

    assert table_definition(load_template()) == {
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
