"""template.yaml as plain data, and the API settings local tools must serve exactly as deployed.

CloudFormation's short-form tags (!Ref, !If, !Split, ...) become their long form
({"Ref": ...}), so any YAML reader of the template sees the same structure cfn-lint does.

    template = load_template(ROOT / "template.yaml")
    cors = http_api_cors(template)          # methods, headers, expose headers, max age
    log_format = access_log_format(template)
    routes = function_routes(template)      # (method, path) -> function, Handler, Timeout
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]  # no stubs in the lock

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc, unused-ignore]
    """A YAML loader that understands CloudFormation's short-form tags (!Ref, !Sub, ...)."""


def _cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type, unused-ignore]
    key = (
        "Ref"
        if tag_suffix == "Ref"
        else ("Condition" if tag_suffix == "Condition" else f"Fn::{tag_suffix}")
    )
    return {key: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """template.yaml as plain data; short-form tags become their long form ({"Ref": ...})."""
    return parse_template(path.read_text())


def parse_template(text: str) -> dict[str, Any]:
    """A template's text as plain data, as `load_template` reads a file."""
    template: dict[str, Any] = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return template


def _http_api(template: dict[str, Any]) -> dict[str, Any]:
    """The template's one AWS::Serverless::HttpApi: its properties."""
    apis = [
        res.get("Properties", {})
        for res in template["Resources"].values()
        if res.get("Type") == "AWS::Serverless::HttpApi"
    ]
    if len(apis) != 1:
        raise ValueError(f"expected one AWS::Serverless::HttpApi, found {len(apis)}")
    props: dict[str, Any] = apis[0]
    return props


@dataclass(frozen=True)
class CorsSettings:
    """The HTTP API's CORS configuration, apart from the origins (a deploy parameter)."""

    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age: int
    allow_credentials: bool


def http_api_cors(template: dict[str, Any]) -> CorsSettings:
    """The CORS configuration the API gets when origins are configured (the `!If` true branch)."""
    config = _http_api(template)["CorsConfiguration"]
    if isinstance(config, dict) and "Fn::If" in config:
        config = config["Fn::If"][1]
    return CorsSettings(
        allow_methods=tuple(config.get("AllowMethods", ())),
        allow_headers=tuple(header.lower() for header in config.get("AllowHeaders", ())),
        expose_headers=tuple(header.lower() for header in config.get("ExposeHeaders", ())),
        max_age=int(config.get("MaxAge", 0)),
        allow_credentials=bool(config.get("AllowCredentials", False)),
    )


def access_log_format(template: dict[str, Any]) -> str:
    """The stage's access-log format, with `$context.*` variables for API Gateway to fill."""
    return str(_http_api(template)["AccessLogSettings"]["Format"])


# The function behind POST /link-token, which the single-function tools (smoke test,
# conformance, bench) are about.
LINK_TOKEN_FUNCTION = "LinkTokenFunction"  # noqa: S105 - a logical id, not a credential


def _function(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """The properties of the AWS::Serverless::Function named `logical_id`."""
    resource = template["Resources"].get(logical_id)
    if not resource or resource.get("Type") != "AWS::Serverless::Function":
        raise ValueError(f"no AWS::Serverless::Function {logical_id} in the template")
    props: dict[str, Any] = resource.get("Properties", {})
    return props


def function_timeout_seconds(
    template: dict[str, Any], logical_id: str = LINK_TOKEN_FUNCTION
) -> int:
    """A function's timeout (the link-token function's unless named): after it, Lambda stops
    the invocation and API Gateway says 500."""
    return int(_function(template, logical_id)["Timeout"])


@dataclass(frozen=True)
class FunctionRoute:
    """One HttpApi route of the template and the function that serves it."""

    method: str  # as API Gateway matches it: "POST", "GET", "DELETE"
    path: str  # with its path parameters: "/items/{item_id}"
    function: str  # the function's logical id
    handler: str  # its Handler: "module.function", relative to its CodeUri
    timeout_seconds: int

    @property
    def route_key(self) -> str:
        """API Gateway's routeKey (payload 2.0): "DELETE /items/{item_id}"."""
        return f"{self.method} {self.path}"


def function_routes(template: dict[str, Any]) -> list[FunctionRoute]:
    """Every function's HttpApi events, in template order: the routes the API serves.

    Raises ValueError for a route two events claim, or a function without a literal Timeout
    and Handler (a local server must know both).
    """
    routes: list[FunctionRoute] = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        for event in (props.get("Events") or {}).values():
            if event.get("Type") != "HttpApi":
                continue
            spec = event.get("Properties", {})
            routes.append(
                FunctionRoute(
                    method=str(spec["Method"]).upper(),
                    path=str(spec["Path"]),
                    function=logical_id,
                    handler=str(props["Handler"]),
                    timeout_seconds=int(props["Timeout"]),
                )
            )
    keys = [route.route_key for route in routes]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"routes served by more than one event: {repeated}")
    return routes


def table_definition(template: dict[str, Any], logical_id: str = "ItemsTable") -> dict[str, Any]:
    """A DynamoDB table's keys and billing as the stack creates it (`CreateTable`'s
    KeySchema, AttributeDefinitions and BillingMode), for the local tables that play it."""
    props = template["Resources"][logical_id]["Properties"]
    return {key: props[key] for key in ("KeySchema", "AttributeDefinitions", "BillingMode")}
