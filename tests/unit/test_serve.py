"""infra/gateway/serve.py's function pools, without starting a worker: one pool per function of
the routes, each with its own Handler, CodeUri and Timeout (tests/e2e/test_serve.py runs them)."""

from __future__ import annotations

import pytest

from infra.gateway.apigw_routes import RouteTable
from infra.gateway.cfn_template import function_routes, load_template, parse_template
from infra.gateway.serve import function_pools
from infra.invoke.local_env import ROOT

TEMPLATE = """
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  Slow:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: handler/
      Handler: slow_app.lambda_handler
      Timeout: 45
      Events:
        Create: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: /things}}
  Quick:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: other/
      Handler: pkg.quick.handle
      Timeout: 3
      Events:
        List: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: GET, Path: /things}}
        Drop: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: DELETE, Path: "/things/{id}"}}
"""


def test_each_function_gets_one_pool_of_its_own_handler_folder_and_timeout() -> None:
    template = parse_template(TEMPLATE)
    pools = function_pools(template, RouteTable(function_routes(template)), size=3)
    assert list(pools) == ["Slow", "Quick"], "one pool per function, not per route"
    slow, quick = pools["Slow"], pools["Quick"]
    assert (slow.handler, slow.timeout_s, slow.size, slow.name) == (
        "slow_app.lambda_handler",
        45,
        3,
        "Slow",
    )
    assert slow.handler_dir == str(ROOT / "handler")
    assert (quick.handler, quick.timeout_s, quick.handler_dir) == (
        "pkg.quick.handle",
        3,
        str(ROOT / "other"),
    )


def test_a_code_uri_that_is_not_a_local_folder_is_refused() -> None:
    template = parse_template(
        TEMPLATE.replace("CodeUri: other/", "CodeUri: {Bucket: b, Key: k.zip}")
    )
    with pytest.raises(ValueError, match="Quick: CodeUri"):
        function_pools(template, RouteTable(function_routes(template)), size=1)


def test_the_templates_three_functions_get_their_handlers_and_timeouts() -> None:
    template = load_template()
    pools = function_pools(template, RouteTable(function_routes(template)), size=1)
    resources = template["Resources"]
    assert set(pools) == {"LinkTokenFunction", "ItemExchangeFunction", "ItemsFunction"}
    for name, pool in pools.items():
        props = resources[name]["Properties"]
        assert pool.handler == props["Handler"]
        assert pool.timeout_s == int(props["Timeout"])
        assert pool.handler_dir == str(ROOT / props["CodeUri"])
