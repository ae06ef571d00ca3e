"""The HTTP contract: real responses of the real handler checked against docs/openapi.yaml.

Every response below comes from `app.lambda_handler` (moto Secrets Manager, the loopback Plaid
stand-in scripted into each failure) and is validated, with a Draft 2020-12 validator, against
the schema the document gives for its status and Content-Type; its headers are checked against
the headers the document lists for that status. The request-body schema is checked in both
directions: bodies generated from its enums are accepted by the handler, bodies it rejects are
answered 400. The last tests mutate a copy of the document to show the checks catch drift.
"""

from __future__ import annotations

import copy
import json
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from infra.doubles.lambda_runtime import LambdaContext
from infra.doubles.plaid_standin import Scripted, plaid_error
from linktoken.config import load_config
from linktoken.plaid_values import LANGUAGES, LINK_PRODUCTS, PLATFORMS
from linktoken.problems import PROBLEM_TYPE_BASE, PROBLEM_TYPES, Problem
from tests.conftest import ROOT, SECRET_ID, body_of, make_event, secret_json

DOC_PATH = ROOT / "docs" / "openapi.yaml"
DOC: dict[str, Any] = yaml.safe_load(DOC_PATH.read_text())
DOC_URI = "urn:plaid-link-token-service:openapi"
OPERATION = ("paths", "/link-token", "post")
PROBLEM_JSON = "application/problem+json"


# --- reading the document --------------------------------------------------------------------


def pointer(*parts: str) -> str:
    """A JSON pointer (RFC 6901) to a node of the document."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def deref(doc: dict[str, Any], value: Any) -> Any:
    """Follow local `$ref`s (`#/components/...`) until a real node."""
    while isinstance(value, dict) and "$ref" in value:
        target = value["$ref"]
        assert target.startswith("#/"), f"only local $refs are expected, not {target}"
        value = doc
        for part in target[2:].split("/"):
            value = value[part.replace("~1", "/").replace("~0", "~")]
    return value


def node(doc: dict[str, Any], *parts: str) -> Any:
    """The node at `parts` (each step through `$ref`s)."""
    current: Any = doc
    for part in parts:
        current = deref(doc, current)[part]
    return deref(doc, current)


def validator(json_pointer: str, doc: dict[str, Any] = DOC) -> Draft202012Validator:
    """A Draft 2020-12 validator for the schema at `json_pointer`, its `$ref`s resolved
    through a registry holding the whole document (so `#/components/schemas/...` works)."""
    registry: Registry[Any] = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(doc))
    return Draft202012Validator(
        {"$ref": f"{DOC_URI}#{json_pointer}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def errors_of(instance: Any, json_pointer: str, doc: dict[str, Any] = DOC) -> list[str]:
    found = validator(json_pointer, doc).iter_errors(instance)
    return sorted(f"{list(e.absolute_path)}: {e.message}" for e in found)


def responses(doc: dict[str, Any] = DOC) -> dict[str, Any]:
    result: dict[str, Any] = node(doc, *OPERATION, "responses")
    return result


def response_schema(status: str, media_type: str) -> str:
    return pointer(*OPERATION, "responses", status, "content", media_type, "schema")


def schema_pointer(name: str) -> str:
    return pointer("components", "schemas", name)


def enum_at(*parts: str) -> list[Any]:
    """The enum of a request-body property, through `$ref`s, `items` and `allOf`."""
    schema = node(DOC, "components", "schemas", "LinkTokenRequest", "properties", *parts)
    while "enum" not in schema:
        inner = schema.get("items") or (schema.get("allOf") or [None])[0]
        assert inner is not None, f"no enum under {parts}"
        schema = deref(DOC, inner)
    return list(schema["enum"])


def function_statuses(doc: dict[str, Any] = DOC) -> set[int]:
    """Statuses the document says the function can answer (200 and every problem)."""
    return {
        int(status)
        for status, documented in responses(doc).items()
        if status == "200" or PROBLEM_JSON in documented.get("content", {})
    }


# --- checking one real response ----------------------------------------------------------------


def assert_conforms(response: dict[str, Any], doc: dict[str, Any] = DOC) -> dict[str, Any]:
    """Check a handler response against the document; return its decoded body."""
    status = str(response["statusCode"])
    documented = responses(doc).get(status)
    assert documented is not None, f"status {status} is not documented"
    headers = {name.lower(): value for name, value in response["headers"].items()}
    content_type = headers.get("content-type")
    assert content_type in documented["content"], (
        f"{status}: Content-Type {content_type!r} is not documented "
        f"(documented: {sorted(documented['content'])})"
    )
    # What the function answers is always one media type per kind of answer.
    assert content_type == ("application/json" if status == "200" else PROBLEM_JSON)
    assert response["isBase64Encoded"] is False
    body: dict[str, Any] = json.loads(response["body"])

    problems = errors_of(body, response_schema(status, content_type), doc)
    assert not problems, f"{status} {content_type} body does not match the document: {problems}"
    if status != "200":  # the Problem branch of a oneOf, never API Gateway's shape
        assert not errors_of(body, schema_pointer("Problem"), doc)

    documented_headers = {
        name.lower(): node(doc, *OPERATION, "responses", status, "headers", name)
        for name in documented.get("headers", {})
    }
    for name, value in headers.items():
        if name == "content-type":
            continue
        assert name in documented_headers, f"{status}: header {name!r} is not documented"
        header_schema = documented_headers[name]["schema"]
        assert Draft202012Validator(header_schema).is_valid(value), (
            f"{status}: header {name}: {value!r} does not match {header_schema}"
        )
    for name, header in documented_headers.items():
        if header.get("required"):
            assert name in headers, f"{status}: required header {name!r} missing"
    assert headers["cache-control"] == "no-store"
    if status == "429":
        assert headers["retry-after"].isdigit()
        assert int(headers["retry-after"]) >= 1
    return body


# --- real responses, one scenario per way of reaching each status ------------------------------


@dataclass
class Harness:
    invoke: Any
    plaid: Any
    aws: Any
    monkeypatch: pytest.MonkeyPatch
    service_env: dict[str, str]


@dataclass(frozen=True)
class Scenario:
    status: int
    code: str | None  # None for 200
    run: Callable[[Harness], dict[str, Any]]


def _scripted(*answers: Scripted, body: Any = None) -> Callable[[Harness], dict[str, Any]]:
    def run(h: Harness) -> dict[str, Any]:
        h.plaid.script(*answers)
        response: dict[str, Any] = h.invoke(make_event(body))
        return response

    return run


def _event(**kwargs: Any) -> Callable[[Harness], dict[str, Any]]:
    def run(h: Harness) -> dict[str, Any]:
        response: dict[str, Any] = h.invoke(make_event(**kwargs))
        return response

    return run


def _raw_event(event: Any) -> Callable[[Harness], dict[str, Any]]:
    def run(h: Harness) -> dict[str, Any]:
        response: dict[str, Any] = h.invoke(copy.deepcopy(event))
        return response

    return run


def _secret_deleted(h: Harness) -> dict[str, Any]:
    h.aws.delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    response: dict[str, Any] = h.invoke(make_event({}))
    return response


def _secret_without_plaid_secret(h: Harness) -> dict[str, Any]:
    h.aws.put_secret_value(SecretId=SECRET_ID, SecretString=secret_json(secret=""))
    response: dict[str, Any] = h.invoke(make_event({}))
    return response


def _config_invalid(h: Harness) -> dict[str, Any]:
    import app
    from linktoken.container import build_container

    container = build_container({**h.service_env, "PLAID_ENV": "development"})
    assert container.service is None
    h.monkeypatch.setattr(app, "CONTAINER", container)
    response: dict[str, Any] = h.invoke(make_event({}))
    return response


def _unexpected_exception(h: Harness) -> dict[str, Any]:
    def broken(refresh: bool = False) -> Any:
        raise RuntimeError("a bug with a detail that must stay in the log")

    h.monkeypatch.setattr(h.invoke.container.service.secrets, "get", broken)
    response: dict[str, Any] = h.invoke(make_event({}))
    assert "must stay in the log" not in response["body"]
    assert "Traceback" not in response["body"]
    return response


def _keys_for_another_environment(h: Harness) -> dict[str, Any]:
    h.plaid.secret = "keys-for-another-environment"
    response: dict[str, Any] = h.invoke(make_event({}))
    assert body_of(response)["plaid_error_code"] == "INVALID_API_KEYS"
    return response


def _secrets_manager_unreachable(h: Harness) -> dict[str, Any]:
    import botocore.session
    from botocore.config import Config

    from linktoken.secret_store import SecretStore

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def client() -> Any:
        return botocore.session.get_session().create_client(
            "secretsmanager",
            endpoint_url=f"http://127.0.0.1:{port}",
            config=Config(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 1}),
        )

    h.invoke.container.service.secrets = SecretStore(SECRET_ID, 300, client_factory=client)
    response: dict[str, Any] = h.invoke(make_event({}))
    return response


def _slow_plaid(h: Harness) -> dict[str, Any]:
    h.plaid.script(Scripted(delay=1.5))
    response: dict[str, Any] = h.invoke(make_event({}), LambdaContext(remaining_ms=1_200))
    return response


def _no_time_left(h: Harness) -> dict[str, Any]:
    response: dict[str, Any] = h.invoke(make_event({}), LambdaContext(remaining_ms=300))
    assert h.plaid.requests == []
    return response


_NOT_AN_HTTP_API_EVENT = {
    "resource": "/link-token",
    "httpMethod": "POST",
    "requestContext": {"requestId": "rest-api-req"},
    "body": "{}",
}
_GET_EVENT = make_event()
_GET_EVENT["requestContext"]["http"]["method"] = "GET"

SCENARIOS: dict[str, Scenario] = {
    "200 no body": Scenario(200, None, _event()),
    "200 every option": Scenario(
        200, None, _event(body={"platform": "ios", "products": ["auth"], "language": "fr"})
    ),
    "200 android": Scenario(200, None, _event(body={"platform": "android"})),
    "200 base64 body, no content type": Scenario(
        200, None, _event(body={"language": "de"}, base64_body=True, content_type=None)
    ),
    "200 json with charset": Scenario(
        200, None, _event(body={}, content_type="application/json; charset=utf-8")
    ),
    "200 after a retried maintenance answer": Scenario(
        200, None, _scripted(plaid_error(503, "API_ERROR", "PLANNED_MAINTENANCE", "maintenance"))
    ),
    "200 plaid sent no request_id": Scenario(
        200,
        None,
        _scripted(
            Scripted(200, {"link_token": "link-sandbox-x1", "expiration": "2026-11-25T18:00:00Z"})
        ),
    ),
    "400 malformed json": Scenario(400, "INVALID_REQUEST", _event(raw_body="{not json")),
    "400 unknown field": Scenario(
        400, "INVALID_REQUEST", _event(body={"client_user_id": "someone-else"})
    ),
    "400 product not configured": Scenario(
        400, "INVALID_REQUEST", _event(body={"products": ["assets"]})
    ),
    "400 not an http api event": Scenario(
        400, "INVALID_REQUEST", _raw_event(_NOT_AN_HTTP_API_EVENT)
    ),
    "400 GET": Scenario(400, "INVALID_REQUEST", _raw_event(_GET_EVENT)),
    "401 no sub": Scenario(401, "UNAUTHENTICATED", _event(body={}, sub=None)),
    "413 body over 16 KiB": Scenario(
        413, "PAYLOAD_TOO_LARGE", _event(raw_body=json.dumps({"x": "a" * 17_000}))
    ),
    "413 base64 body over 16 KiB": Scenario(
        413,
        "PAYLOAD_TOO_LARGE",
        _event(raw_body=json.dumps({"x": "a" * 17_000}), base64_body=True),
    ),
    "415 text/plain": Scenario(
        415, "UNSUPPORTED_MEDIA_TYPE", _event(body={}, content_type="text/plain")
    ),
    "415 unknown charset": Scenario(
        415, "UNSUPPORTED_MEDIA_TYPE", _event(body={}, content_type="application/json; charset=x")
    ),
    "429 rate limited after retries": Scenario(
        429,
        "RATE_LIMITED",
        _scripted(*[plaid_error(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", "slow down")] * 3),
    ),
    "429 long Retry-After passed on": Scenario(
        429,
        "RATE_LIMITED",
        _scripted(
            plaid_error(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", "later", **{"Retry-After": "30"})
        ),
    ),
    "500 secret deleted": Scenario(500, "MISCONFIGURED", _secret_deleted),
    "500 secret field empty": Scenario(500, "MISCONFIGURED", _secret_without_plaid_secret),
    "500 invalid configuration": Scenario(500, "MISCONFIGURED", _config_invalid),
    "500 unexpected exception": Scenario(500, "INTERNAL_ERROR", _unexpected_exception),
    "502 keys for another environment": Scenario(
        502, "UPSTREAM_REJECTED", _keys_for_another_environment
    ),
    "502 product not enabled": Scenario(
        502,
        "UPSTREAM_REJECTED",
        _scripted(plaid_error(400, "INVALID_INPUT", "INVALID_PRODUCT", "client not enabled")),
    ),
    "502 unparseable answer": Scenario(
        502, "UPSTREAM_REJECTED", _scripted(Scripted(200, b"<html>proxy</html>"))
    ),
    "503 plaid internal errors": Scenario(
        503,
        "UPSTREAM_UNAVAILABLE",
        _scripted(*[plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR", "oops")] * 3),
    ),
    "503 connection dropped": Scenario(
        503, "UPSTREAM_UNAVAILABLE", _scripted(*[Scripted(close=True)] * 3)
    ),
    "503 secrets manager unreachable": Scenario(
        503, "UPSTREAM_UNAVAILABLE", _secrets_manager_unreachable
    ),
    "504 plaid too slow": Scenario(504, "UPSTREAM_TIMEOUT", _slow_plaid),
    "504 no time left": Scenario(504, "UPSTREAM_TIMEOUT", _no_time_left),
}


@pytest.fixture
def harness(
    invoke: Any,
    plaid: Any,
    aws: Any,
    monkeypatch: pytest.MonkeyPatch,
    service_env: dict[str, str],
) -> Iterator[Harness]:
    yield Harness(invoke, plaid, aws, monkeypatch, service_env)


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_real_response_matches_the_document(name: str, harness: Harness, output: Any) -> None:
    scenario = SCENARIOS[name]

    response = scenario.run(harness)

    assert response["statusCode"] == scenario.status, response["body"]
    body = assert_conforms(response)
    if scenario.code is None:
        assert datetime.fromisoformat(body["expiration"]).tzinfo is not None
        [line] = output.logs("link_token_created")
        assert line["correlation_id"] == body["request_id"]
    else:
        assert body["code"] == scenario.code
        [line] = output.logs("link_token_failed")
        assert line["error_code"] == scenario.code
        assert line.get("correlation_id") == body["request_id"]
        # "when Plaid was called, plaid_request_id": whatever id the log has, the app has too
        assert body.get("plaid_request_id") == line.get("plaid_request_id")
        assert body.get("plaid_error_code") == line.get("plaid_error_code")


def test_every_status_and_code_has_a_real_response() -> None:
    covered_statuses = {s.status for s in SCENARIOS.values()}
    covered_codes = {s.code for s in SCENARIOS.values()} - {None}

    assert covered_statuses == function_statuses()
    assert covered_codes == set(PROBLEM_TYPES)


# --- the document against the code's own tables -------------------------------------------------


def test_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate

    assert DOC["openapi"].startswith("3.1.")
    validate(DOC)
    for name in DOC["components"]["schemas"]:
        Draft202012Validator.check_schema(DOC["components"]["schemas"][name])
    assert node(DOC, "components", "securitySchemes", "jwt")["bearerFormat"] == "JWT"
    assert DOC["security"] == [{"jwt": []}]


def test_enums_are_the_plaid_values() -> None:
    assert set(enum_at("platform")) == PLATFORMS
    assert set(enum_at("products")) == LINK_PRODUCTS
    assert set(enum_at("language")) == LANGUAGES
    assert all(isinstance(value, str) for value in enum_at("language"))  # YAML's `no` trap
    assert set(node(DOC, "components", "schemas", "ProblemCode")["enum"]) == set(PROBLEM_TYPES)


@pytest.mark.parametrize("code", sorted(PROBLEM_TYPES))
def test_each_code_is_documented_under_its_status_only(code: str) -> None:
    """Bodies built by problems.py itself (with and without Plaid's fields) are valid under
    their own status and under no other."""
    kind = PROBLEM_TYPES[code]
    bodies = [
        Problem(code, "detail").body("req-1"),
        Problem(code, "detail", plaid_request_id="abc", plaid_error_code="X").body("req-1"),
    ]
    for status in sorted(function_statuses() - {200}):
        for body in bodies:
            valid = not errors_of(body, response_schema(str(status), PROBLEM_JSON))
            assert valid is (status == kind.status), (code, status, body)
    assert bodies[0]["type"] == PROBLEM_TYPE_BASE + code.lower().replace("_", "-")


def test_every_function_status_is_documented_with_cache_control() -> None:
    for status in sorted(function_statuses()):
        documented = responses()[str(status)]
        header = node(DOC, *OPERATION, "responses", str(status), "headers", "Cache-Control")
        assert header["schema"]["const"] == "no-store"
        # Required where only the function answers; API Gateway's own answers lack it.
        assert header["required"] is (len(documented["content"]) == 1), status
    retry_after = node(DOC, *OPERATION, "responses", "429", "headers", "Retry-After")
    assert Draft202012Validator(retry_after["schema"]).is_valid("2")
    assert not Draft202012Validator(retry_after["schema"]).is_valid("soon")


def test_api_gateway_answers_are_documented_beside_ours() -> None:
    gateway = {
        "401": {"Unauthorized"},
        "403": {"Forbidden"},
        "404": {"Not Found"},
        "429": {"Too Many Requests"},
        "500": {"Internal Server Error"},
        "503": {"Service Unavailable"},
        "504": {"Endpoint request timed out", "Service Unavailable"},
    }
    for status, messages in gateway.items():
        schema = response_schema(status, "application/json")
        for message in messages:
            assert not errors_of({"message": message}, schema), (status, message)
            # API Gateway's body is never mistaken for one of our problems, and vice versa
            assert errors_of({"message": message}, schema_pointer("Problem"))
        assert errors_of({"message": "something else"}, schema)
        assert "API Gateway" in responses()[status]["description"]
    for status in ("403", "404"):
        assert set(responses()[status]["content"]) == {"application/json"}


def test_every_example_in_the_document_is_valid() -> None:
    checked = 0
    for status, documented in responses().items():
        for media_type, content in documented.get("content", {}).items():
            examples = [content["example"]] if "example" in content else []
            examples += [e["value"] for e in content.get("examples", {}).values()]
            for example in examples:
                assert not errors_of(example, response_schema(status, media_type)), status
                checked += 1
    body = node(DOC, *OPERATION, "requestBody", "content", "application/json")
    for example in body["examples"].values():
        assert not errors_of(example["value"], schema_pointer("LinkTokenRequest"))
        checked += 1
    assert checked >= 10


def test_errors_md_table_is_the_code_table() -> None:
    text = (ROOT / "docs" / "errors.md").read_text()
    rows = re.findall(r"^\| (\d{3}) \| `([A-Z_]+)` \| (yes|no) \|", text, flags=re.MULTILINE)
    table = {code: (int(status), retryable == "yes") for status, code, retryable in rows}
    assert table == {code: (k.status, k.retryable) for code, k in PROBLEM_TYPES.items()}


# --- the request-body schema against the handler ------------------------------------------------


def _valid_bodies() -> list[dict[str, Any]]:
    """Bodies generated from the request schema's enums (every value of every enum)."""
    products = enum_at("products")
    bodies: list[dict[str, Any]] = [{}]
    bodies += [{"platform": p} for p in enum_at("platform")]
    bodies += [{"language": lang} for lang in enum_at("language")]
    bodies += [{"products": [p]} for p in products]
    bodies += [
        {"products": products},
        {"products": ["auth", "auth"]},  # duplicates are collapsed, not refused
        {"platform": "android", "products": ["auth", "transactions"], "language": "fr"},
    ]
    return bodies


def test_bodies_valid_under_the_schema_get_200(invoke: Any, service_env: dict[str, str]) -> None:
    # Offer every documented product, so "valid for the schema" means "valid for the service".
    products = ",".join(enum_at("products"))
    service = invoke.container.service
    service.config = load_config({**service_env, "PLAID_PRODUCTS": products})

    for body in _valid_bodies():
        assert not errors_of(body, schema_pointer("LinkTokenRequest")), body
        response = invoke(make_event(body))
        assert response["statusCode"] == 200, (body, response["body"])
        assert_conforms(response)


INVALID_BODIES = [
    pytest.param({"platform": "web", "user_id": "x"}, id="unknown field"),
    pytest.param({"products": []}, id="empty products"),
    pytest.param({"products": "auth"}, id="products not an array"),
    pytest.param({"products": [1]}, id="product not a string"),
    pytest.param({"products": ["auth", None]}, id="product null"),
    pytest.param({"products": ["balance"]}, id="unknown product"),
    pytest.param({"platform": "windows"}, id="unknown platform"),
    pytest.param({"platform": None}, id="platform null"),
    pytest.param({"platform": ["web"]}, id="platform array"),
    pytest.param({"platform": {"os": "web"}}, id="platform object"),
    pytest.param({"language": "xx"}, id="unknown language"),
    pytest.param({"language": "EN"}, id="language upper-case"),
    pytest.param({"language": ["en"]}, id="language array"),
    pytest.param(["auth"], id="array body"),
    pytest.param("web", id="string body"),
]


@pytest.mark.parametrize("body", INVALID_BODIES)
def test_bodies_the_schema_rejects_get_400(invoke: Any, body: Any) -> None:
    assert errors_of(body, schema_pointer("LinkTokenRequest"))

    response = invoke(make_event(body))

    assert response["statusCode"] == 400
    assert assert_conforms(response)["code"] == "INVALID_REQUEST"


def test_configuration_narrows_the_schema_as_documented(
    invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schema-valid but refused by this deployment: a product not in PLAID_PRODUCTS, android
    without a package name. The document says so in the field descriptions."""
    props = node(DOC, "components", "schemas", "LinkTokenRequest")["properties"]
    assert "PLAID_PRODUCTS" in props["products"]["description"]
    assert "400" in props["platform"]["description"]
    config = invoke.container.service.config
    monkeypatch.setattr(
        invoke.container.service, "config", replace(config, android_package_name=None)
    )

    for body in ({"products": ["assets"]}, {"platform": "android"}):
        assert not errors_of(body, schema_pointer("LinkTokenRequest"))
        response = invoke(make_event(body))
        assert response["statusCode"] == 400
        assert_conforms(response)


# --- edge cases that once contradicted the contract (kept as regression tests) ----------------


def test_null_body_is_invalid(invoke: Any) -> None:
    assert errors_of(None, schema_pointer("LinkTokenRequest"))

    response = invoke(make_event(raw_body="null"))

    assert response["statusCode"] == 400


def test_unencodable_sub_is_unauthenticated(invoke: Any) -> None:
    response = invoke(make_event({}, sub="user-\ud800"))

    assert response["statusCode"] == 401
    assert assert_conforms(response)["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("charset", ["rot13", "base64"])
def test_non_text_charset_is_unsupported_media_type(invoke: Any, charset: str) -> None:
    response = invoke(make_event({}, content_type=f"application/json; charset={charset}"))

    assert response["statusCode"] == 415
    assert assert_conforms(response)["code"] == "UNSUPPORTED_MEDIA_TYPE"


# --- the checks above catch drift ----------------------------------------------------------------


def test_a_response_field_missing_from_the_document_fails_the_check(invoke: Any) -> None:
    response = invoke(make_event({}))
    assert_conforms(response)  # the real document: fine

    drifted = copy.deepcopy(DOC)
    schema = drifted["components"]["schemas"]["LinkTokenResponse"]
    del schema["properties"]["plaid_request_id"]
    schema["required"].remove("plaid_request_id")

    with pytest.raises(AssertionError, match="plaid_request_id"):
        assert_conforms(response, drifted)


def test_a_problem_field_or_code_missing_from_the_document_fails_the_check(invoke: Any) -> None:
    response = invoke(make_event({}, content_type="text/plain"))
    assert_conforms(response)

    without_field = copy.deepcopy(DOC)
    del without_field["components"]["schemas"]["Problem"]["properties"]["retryable"]
    with pytest.raises(AssertionError, match="retryable"):
        assert_conforms(response, without_field)

    without_code = copy.deepcopy(DOC)
    without_code["components"]["schemas"]["ProblemCode"]["enum"].remove("UNSUPPORTED_MEDIA_TYPE")
    with pytest.raises(AssertionError, match="UNSUPPORTED_MEDIA_TYPE"):
        assert_conforms(response, without_code)


def test_an_undocumented_status_or_header_fails_the_check(invoke: Any, plaid: Any) -> None:
    plaid.script(plaid_error(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", "x", **{"Retry-After": "9"}))
    response = invoke(make_event({}))
    assert_conforms(response)

    no_retry_after = copy.deepcopy(DOC)
    del responses(no_retry_after)["429"]["headers"]["Retry-After"]
    with pytest.raises(AssertionError, match="retry-after"):
        assert_conforms(response, no_retry_after)

    no_429 = copy.deepcopy(DOC)
    del responses(no_429)["429"]
    with pytest.raises(AssertionError, match="429 is not documented"):
        assert_conforms(response, no_429)
