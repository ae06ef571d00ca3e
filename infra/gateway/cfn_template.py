"""template.yaml as plain data, and the API settings local tools must serve exactly as deployed.

CloudFormation's short-form tags (!Ref, !If, !Split, ...) become their long form
({"Ref": ...}), so any YAML reader of the template sees the same structure cfn-lint does.

    template = load_template(ROOT / "template.yaml")
    cors = http_api_cors(template)          # methods, headers, expose headers, max age
    log_format = access_log_format(template)
    routes = function_routes(template)      # (method, path) -> function, Handler, Timeout, auth
    functions = invoked_functions(template) # every function a route or a queue invokes
    sources = sqs_event_sources(template)   # queue -> function, BatchSize, partial failures
    queue = queue_definition(template, "WebhookQueue")   # CreateQueue's attributes
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
    # API Gateway runs the JWT authorizer first (the API's DefaultAuthorizer); False for a
    # route whose event says `Auth: {Authorizer: NONE}` (or an API without a default).
    authorized: bool = True

    @property
    def route_key(self) -> str:
        """API Gateway's routeKey (payload 2.0): "DELETE /items/{item_id}"."""
        return f"{self.method} {self.path}"


def _api_default_authorizers(template: dict[str, Any]) -> dict[str, str | None]:
    """Each HttpApi's DefaultAuthorizer (None without one), by logical id."""
    defaults: dict[str, str | None] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::HttpApi":
            auth = (resource.get("Properties") or {}).get("Auth") or {}
            default = auth.get("DefaultAuthorizer")
            defaults[logical_id] = str(default) if default else None
    return defaults


def _route_is_authorized(spec: dict[str, Any], defaults: dict[str, str | None]) -> bool:
    """SAM's rule: the event's Auth.Authorizer if it names one ("NONE": none), else the
    DefaultAuthorizer of the API its ApiId refers to (SAM's implicit API has none)."""
    named = (spec.get("Auth") or {}).get("Authorizer")
    if named is not None:
        return str(named) != "NONE"
    api = spec.get("ApiId")
    api_id = api.get("Ref") if isinstance(api, dict) else None
    return defaults.get(str(api_id)) is not None


def function_routes(template: dict[str, Any]) -> list[FunctionRoute]:
    """Every function's HttpApi events, in template order: the routes the API serves.

    Raises ValueError for a route two events claim, or a function without a literal Timeout
    and Handler (a local server must know both).
    """
    defaults = _api_default_authorizers(template)
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
                    authorized=_route_is_authorized(spec, defaults),
                )
            )
    keys = [route.route_key for route in routes]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"routes served by more than one event: {repeated}")
    return routes


@dataclass(frozen=True)
class LambdaFunction:
    """A function as a local runner starts it: its Handler in its CodeUri, its Timeout."""

    function: str  # the logical id
    handler: str
    timeout_seconds: int
    code_uri: str


# The event types local tools play: API Gateway's routes and the SQS event source mapping.
PLAYED_EVENT_TYPES = frozenset({"HttpApi", "SQS"})


def invoked_functions(template: dict[str, Any]) -> list[LambdaFunction]:
    """Every function an HttpApi route or an SQS queue invokes, in template order.

    Raises ValueError for a CodeUri that is not a local folder (an S3 location)."""
    functions = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        events = (props.get("Events") or {}).values()
        if not any(event.get("Type") in PLAYED_EVENT_TYPES for event in events):
            continue
        code_uri = props.get("CodeUri", "handler/")
        if not isinstance(code_uri, str):
            raise ValueError(f"{logical_id}: CodeUri {code_uri!r} is not a local folder")
        functions.append(
            LambdaFunction(logical_id, str(props["Handler"]), int(props["Timeout"]), code_uri)
        )
    return functions


@dataclass(frozen=True)
class SqsEventSource:
    """An SQS event of a function: Lambda's event source mapping polls `queue` (a logical id)
    and invokes `function` with batches of up to `batch_size` messages."""

    function: str
    queue: str
    batch_size: int
    # FunctionResponseTypes [ReportBatchItemFailures]: the answer's batchItemFailures are
    # left in the queue, the rest deleted; without it a successful answer deletes the batch.
    report_batch_item_failures: bool


def _logical_id_of_arn(value: Any) -> str:
    """`!GetAtt Queue.Arn` as the long form has it: the queue's logical id."""
    get_att = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    if not (isinstance(get_att, list) and len(get_att) == 2 and get_att[1] == "Arn"):
        raise ValueError(f"an SQS event's Queue {value!r} is not !GetAtt <queue>.Arn")
    return str(get_att[0])


def sqs_event_sources(template: dict[str, Any]) -> list[SqsEventSource]:
    """Every function's SQS events, in template order (BatchSize 10 when absent, as SAM)."""
    sources = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") != "SQS":
                continue
            spec = event.get("Properties", {})
            sources.append(
                SqsEventSource(
                    function=logical_id,
                    queue=_logical_id_of_arn(spec.get("Queue")),
                    batch_size=int(spec.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (spec.get("FunctionResponseTypes") or ()),
                )
            )
    return sources


# AWS::SQS::Queue properties that are CreateQueue attributes of the same name.
_QUEUE_ATTRIBUTES = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "SqsManagedSseEnabled",
)


@dataclass(frozen=True)
class QueueDefinition:
    """A queue as the stack creates it: CreateQueue's attributes (strings, as SQS takes them,
    without RedrivePolicy) and its redrive policy: the dead-letter queue's logical id and
    maxReceiveCount (None, None without one)."""

    attributes: dict[str, str]
    dead_letter_queue: str | None
    max_receive_count: int | None


def _attribute_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    raise ValueError(f"queue property {name}: {value!r} is not a literal value")


def queue_definition(template: dict[str, Any], logical_id: str) -> QueueDefinition:
    """The AWS::SQS::Queue `logical_id`'s attributes and redrive policy (QueueName, Tags and
    anything else are the local run's own). ValueError for an attribute that is not literal."""
    resource = template["Resources"].get(logical_id)
    if not resource or resource.get("Type") != "AWS::SQS::Queue":
        raise ValueError(f"no AWS::SQS::Queue {logical_id} in the template")
    props = resource.get("Properties", {})
    attributes = {
        name: _attribute_text(name, props[name]) for name in _QUEUE_ATTRIBUTES if name in props
    }
    redrive = props.get("RedrivePolicy")
    if not redrive:
        return QueueDefinition(attributes, None, None)
    return QueueDefinition(
        attributes,
        _logical_id_of_arn(redrive.get("deadLetterTargetArn")),
        int(redrive["maxReceiveCount"]),
    )


def queue_url_variables(template: dict[str, Any]) -> dict[str, str]:
    """The environment variable the functions are told each queue's URL in (`WEBHOOK_QUEUE_URL:
    !Ref WebhookQueue`), by the queue's logical id, in template order."""
    queues = {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::SQS::Queue"
    }
    found: dict[str, str] = {}
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        environment = (resource.get("Properties", {}).get("Environment") or {}).get("Variables")
        for name, value in (environment or {}).items():
            ref = value.get("Ref") if isinstance(value, dict) else None
            if ref in queues:
                found.setdefault(str(ref), str(name))
    return found


# What CreateTable takes of an AWS::DynamoDB::Table's properties, as the stack passes them:
# the keys, the billing and the secondary indexes (a local Query on an index needs it).
_TABLE_PROPERTIES = (
    "KeySchema",
    "AttributeDefinitions",
    "BillingMode",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
)
_INDEX_FIELDS = frozenset(
    {"IndexName", "KeySchema", "Projection", "ProvisionedThroughput", "OnDemandThroughput"}
)


def table_definition(template: dict[str, Any], logical_id: str = "ItemsTable") -> dict[str, Any]:
    """A DynamoDB table as the stack creates it (`CreateTable`'s KeySchema,
    AttributeDefinitions, BillingMode and secondary indexes), for the local tables that play
    it."""
    props = template["Resources"][logical_id]["Properties"]
    definition = {key: props[key] for key in _TABLE_PROPERTIES if key in props}
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if key in definition:  # CloudFormation's index-only settings are no CreateTable field
            definition[key] = [
                {name: value for name, value in index.items() if name in _INDEX_FIELDS}
                for index in definition[key]
            ]
    return definition
