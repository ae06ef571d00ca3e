"""The pieces `make serve` is made of, without a server: the payload 2.0 event built from an
HTTP request, the response made of the function's result, the local JWT authorizer, and the
access-log rendering, each against what API Gateway does."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from infra.gateway import access_log, jwt_local
from infra.gateway.apigw_event import (
    BadLambdaResponse,
    IncomingRequest,
    build_event,
    to_http_response,
)
from infra.gateway.cfn_template import access_log_format, http_api_cors, load_template
from linktoken.http_event import parse_event, request_id_of

ROOT = Path(__file__).resolve().parents[2]


def request(**overrides: object) -> IncomingRequest:
    fields: dict[str, object] = {
        "method": "POST",
        "raw_path": "/link-token",
        "raw_query": "",
        "headers": [("Host", "127.0.0.1:3000"), ("Content-Type", "application/json")],
        "body": b'{"platform":"ios"}',
        "source_ip": "127.0.0.1",
    }
    fields.update(overrides)
    return IncomingRequest(**fields)  # type: ignore[arg-type]


def test_event_is_what_the_handler_parses_with_the_claims_as_its_user() -> None:
    event = build_event(request(), {"sub": "user-9"})
    parsed = parse_event(event)
    assert (parsed.sub, parsed.body) == ("user-9", {"platform": "ios"})
    assert request_id_of(event) == event["requestContext"]["requestId"]
    context = event["requestContext"]
    assert event["routeKey"] == context["routeKey"] == "POST /link-token"
    assert context["stage"] == "$default"
    assert context["domainName"] == "127.0.0.1", "a domain name, without the port"
    assert context["http"]["method"] == "POST"
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["time"])
    assert isinstance(context["timeEpoch"], int)
    assert event["isBase64Encoded"] is False


def test_headers_lowercased_repeated_joined_cookies_and_query_split_out() -> None:
    event = build_event(
        request(
            headers=[
                ("X-Thing", "a"),
                ("x-thing", "b"),
                ("Cookie", "s=1; t=2"),
                ("Content-Type", "application/json"),
            ],
            raw_query="a=1&a=2&b=%20x",
        ),
        {},
    )
    assert event["headers"]["x-thing"] == "a,b"
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert event["headers"]["x-amzn-trace-id"].startswith("Root=1-")
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["rawQueryString"] == "a=1&a=2&b=%20x"
    assert event["queryStringParameters"] == {"a": "1,2", "b": " x"}


def test_bodies_that_are_not_text_arrive_base64_encoded_and_empty_ones_not_at_all() -> None:
    binary = build_event(request(headers=[], body=b"\x00\xffjson"), {})
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x00\xffjson"
    assert "body" not in build_event(request(body=b""), {})
    assert "queryStringParameters" not in build_event(request(), {})


def test_function_result_becomes_the_response() -> None:
    response = to_http_response(
        {
            "statusCode": 201,
            "headers": {"X-A": "1"},
            "cookies": ["a=1", "b=2"],
            "body": base64.b64encode(b"\x01\x02").decode(),
            "isBase64Encoded": True,
        }
    )
    assert response.status == 201
    assert response.body == b"\x01\x02"
    assert [v for k, v in response.headers if k == "set-cookie"] == ["a=1", "b=2"]
    assert response.header("x-a") == "1"
    inferred = to_http_response({"hello": "world"})
    assert (inferred.status, json.loads(inferred.body)) == (200, {"hello": "world"})
    with pytest.raises(BadLambdaResponse):
        to_http_response({"statusCode": "200"})


def test_authorizer_passes_claims_as_strings_and_refuses_what_it_cannot_read() -> None:
    token = jwt_local.dev_token(sub="dev-1", now=1_000)
    claims = jwt_local.authorize(f"Bearer {token}", now=1_001)
    assert isinstance(claims, dict)
    assert claims["sub"] == "dev-1"
    assert claims["exp"] == str(1_000 + 24 * 3600), "API Gateway passes claims as strings"
    expired = jwt_local.authorize(f"Bearer {token}", now=1_000 + 24 * 3600)
    assert isinstance(expired, jwt_local.Refusal)
    assert 'error="invalid_token"' in expired.www_authenticate
    missing = jwt_local.authorize(None)
    assert isinstance(missing, jwt_local.Refusal)
    assert missing.www_authenticate == "Bearer"
    assert jwt_local.claim_string(["a", "b"]) == "[a b]"


def test_access_log_line_is_json_with_the_templates_keys_and_dashes_for_the_unknown() -> None:
    log_format = access_log_format(load_template(ROOT / "template.yaml"))
    line = access_log.render(
        log_format, {"requestId": 'quo"te', "status": 404, "responseLatency": 3}
    )
    doc = json.loads(line)
    assert doc["requestId"] == 'quo"te'
    assert doc["status"] == 404
    assert doc["routeKey"] == "-"
    assert set(doc) == set(json.loads(re.sub(r"\$context\.[A-Za-z.]+", "1", log_format)))


def test_cors_settings_are_read_from_the_template() -> None:
    cors = http_api_cors(load_template(ROOT / "template.yaml"))
    assert cors.allow_methods == ("GET", "POST", "DELETE", "OPTIONS")
    assert cors.allow_headers == ("authorization", "content-type")
    assert cors.expose_headers == ("retry-after", "location")
    assert cors.max_age == 600
    assert cors.allow_credentials is False


def test_with_a_run_key_only_tokens_signed_with_it_pass() -> None:
    key, other_key = b"k" * 32, b"o" * 32
    signed = jwt_local.dev_token(sub="phone-1", now=1_000, key=key)
    header = json.loads(base64.urlsafe_b64decode(signed.split(".")[0] + "=="))
    assert header["alg"] == "HS256"
    claims = jwt_local.authorize(f"Bearer {signed}", now=1_001, key=key)
    assert isinstance(claims, dict) and claims["sub"] == "phone-1"
    unsigned = jwt_local.dev_token(sub="phone-1", now=1_000)
    forged = jwt_local.dev_token(sub="phone-1", now=1_000, key=other_key)
    head, payload, signature = signed.split(".")
    alg_none = ".".join((unsigned.split(".")[0], payload, signature))
    for refused in (unsigned, forged, alg_none, f"{head}.{payload}.", f"{head}.{payload}.é"):
        verdict = jwt_local.authorize(f"Bearer {refused}", now=1_001, key=key)
        assert isinstance(verdict, jwt_local.Refusal), refused
        assert "this run's key" in verdict.reason
    assert isinstance(jwt_local.authorize(f"Bearer {unsigned}", now=1_001), dict), "loopback"


def test_real_keys_are_the_developers_keys_or_secret_store_never_the_standins() -> None:
    from infra.invoke.local_env import may_hold_real_keys

    assert may_hold_real_keys({"PLAID_CLIENT_ID": "id", "PLAID_SECRET": "s"})
    assert may_hold_real_keys({"AWS_PROFILE": "dev", "PLAID_SECRET_ID": "plaid/keys"})
    assert may_hold_real_keys({"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:4566"})
    assert not may_hold_real_keys({})
    assert not may_hold_real_keys({"PLAID_BASE_URL": "http://127.0.0.1:9"})
    assert not may_hold_real_keys({"PLAID_CLIENT_ID": "id"})
