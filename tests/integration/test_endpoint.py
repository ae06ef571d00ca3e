"""The handler end to end: real app.lambda_handler, moto Secrets Manager, loopback Plaid."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.doubles.lambda_runtime import LambdaContext
from infra.doubles.plaid_standin import Scripted, plaid_error
from tests.conftest import CLIENT_ID, SECRET, body_of, make_event


def test_success_returns_token_and_correlation_ids(invoke: Any, plaid: Any, output: Any) -> None:
    event = make_event({"platform": "web"})
    response = invoke(event)

    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["headers"]["Cache-Control"] == "no-store"
    body = body_of(response)
    assert body["link_token"].startswith("link-sandbox-")
    assert body["request_id"] == event["requestContext"]["requestId"]
    sent = json.loads(plaid.requests[0]["body"])
    assert body["plaid_request_id"] and len(body["plaid_request_id"]) == 15
    assert sent == {
        "client_name": "Test App",
        "language": "en",
        "country_codes": ["US"],
        "user": {"client_user_id": "user-0001"},
        "products": ["transactions", "auth"],
        "redirect_uri": "https://app.example.com/oauth",
    }
    headers = plaid.requests[0]["headers"]
    assert headers["PLAID-CLIENT-ID"] == CLIENT_ID
    assert headers["PLAID-SECRET"] == SECRET
    assert headers["Plaid-Version"] == "2020-09-14"
    assert headers["User-Agent"].startswith("plaid-link-token-service/")

    [line] = output.logs("link_token_created")
    assert line["correlation_id"] == event["requestContext"]["requestId"]
    assert line["plaid_request_id"] == body["plaid_request_id"]
    assert body["link_token"] not in output.text  # only the masked form is logged
    assert line["link_token"].endswith(body["link_token"][-4:])
    assert "user-0001" not in output.text  # the raw sub is never logged


def test_android_sends_package_name_and_no_redirect(invoke: Any, plaid: Any) -> None:
    response = invoke(make_event({"platform": "android", "products": ["auth"], "language": "fr"}))

    assert response["statusCode"] == 200
    sent = json.loads(plaid.requests[0]["body"])
    assert sent["android_package_name"] == "com.example.app"
    assert "redirect_uri" not in sent
    assert sent["products"] == ["auth"]
    assert sent["language"] == "fr"


@pytest.mark.parametrize(
    ("event_kwargs", "status", "code"),
    [
        ({"raw_body": "{not json"}, 400, "INVALID_REQUEST"),
        ({"body": {"platform": "web", "user_id": "x"}}, 400, "INVALID_REQUEST"),
        ({"body": {"products": ["balance"]}}, 400, "INVALID_REQUEST"),
        ({"body": {"products": []}}, 400, "INVALID_REQUEST"),
        ({"body": {"language": "xx"}}, 400, "INVALID_REQUEST"),
        ({"body": {"platform": "windows"}}, 400, "INVALID_REQUEST"),
        ({"body": [1, 2]}, 400, "INVALID_REQUEST"),
        ({"body": {}, "sub": None}, 401, "UNAUTHENTICATED"),
        ({"body": {}, "sub": "   "}, 401, "UNAUTHENTICATED"),
        ({"raw_body": json.dumps({"x": "a" * 17_000})}, 413, "PAYLOAD_TOO_LARGE"),
        ({"body": {}, "content_type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ],
)
def test_bad_requests_get_problems_and_plaid_is_not_called(
    invoke: Any, plaid: Any, event_kwargs: dict[str, Any], status: int, code: str
) -> None:
    response = invoke(make_event(**event_kwargs))

    assert response["statusCode"] == status
    assert response["headers"]["Content-Type"] == "application/problem+json"
    body = body_of(response)
    assert (body["status"], body["code"], body["retryable"]) == (status, code, False)
    assert body["type"].endswith(code.lower().replace("_", "-"))
    assert plaid.requests == []


@pytest.mark.parametrize(
    ("answers", "status", "code", "attempts"),
    [
        ([plaid_error(400, "INVALID_INPUT", "INVALID_PRODUCT", "product x")], 502, "UPSTREAM_REJECTED", 1),
        ([plaid_error(400, "INVALID_REQUEST", "INVALID_FIELD", "redirect_uri")], 502, "UPSTREAM_REJECTED", 1),
        ([plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR", "oops")] * 3, 503, "UPSTREAM_UNAVAILABLE", 3),
        ([plaid_error(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", "slow")] * 3, 429, "RATE_LIMITED", 3),
        ([Scripted(200, b"<html>proxy</html>")], 502, "UPSTREAM_REJECTED", 1),
    ],
)  # fmt: skip
def test_plaid_failures_map_to_documented_problems(
    invoke: Any,
    plaid: Any,
    output: Any,
    answers: list[Scripted],
    status: int,
    code: str,
    attempts: int,
) -> None:
    plaid.script(*answers)
    response = invoke(make_event({}))

    body = body_of(response)
    assert (response["statusCode"], body["code"]) == (status, code)
    assert len(plaid.requests) == attempts
    [line] = output.logs("link_token_failed")
    assert line["error_code"] == code
    assert line["attempts"] == attempts
    if isinstance(answers[-1].body, dict):
        assert line["plaid_request_id"] == answers[-1].body["request_id"]
        assert body["plaid_request_id"] == answers[-1].body["request_id"]
        assert line["plaid_error_message"] == answers[-1].body["error_message"]
        assert answers[-1].body["error_message"] not in response["body"]
    if code == "RATE_LIMITED":
        assert response["headers"]["Retry-After"].isdigit()


def test_transient_failure_then_success_is_retried(invoke: Any, plaid: Any, output: Any) -> None:
    plaid.script(plaid_error(503, "API_ERROR", "PLANNED_MAINTENANCE", "maintenance"))

    response = invoke(make_event({}))

    assert response["statusCode"] == 200
    assert len(plaid.requests) == 2
    [line] = output.logs("link_token_created")
    assert line["attempts"] == 2
    assert output.metrics()["PlaidRetries"][0]["PlaidRetries"] == [1.0]


def test_secret_read_once_across_invocations(invoke: Any, plaid: Any, output: Any) -> None:
    for _ in range(5):
        assert invoke(make_event({}))["statusCode"] == 200

    assert invoke.container.service.secrets.reads == 1
    fetched = [doc["SecretsFetched"] for doc in output.metrics()["SecretsFetched"]]
    assert fetched == [[1.0], [0.0], [0.0], [0.0], [0.0]]
    assert plaid.connections == 1  # one kept-alive connection for all five


def test_rotated_secret_is_reread_once(invoke: Any, plaid: Any, aws: Any) -> None:
    assert invoke(make_event({}))["statusCode"] == 200
    # The operator rotates the keys at Plaid and in Secrets Manager; our cache is stale.
    plaid.secret = "rotated-secret-value-1"
    aws.put_secret_value(
        SecretId="plaid-link-token/test",
        SecretString=json.dumps({"client_id": CLIENT_ID, "secret": "rotated-secret-value-1"}),
    )

    response = invoke(make_event({}))

    assert response["statusCode"] == 200
    assert invoke.container.service.secrets.reads == 2
    assert plaid.requests[-1]["headers"]["PLAID-SECRET"] == "rotated-secret-value-1"


def test_wrong_keys_give_502_after_one_refresh(invoke: Any, plaid: Any, output: Any) -> None:
    plaid.secret = "keys-for-another-environment"

    response = invoke(make_event({}))

    assert response["statusCode"] == 502
    assert body_of(response)["plaid_error_code"] == "INVALID_API_KEYS"
    assert invoke.container.service.secrets.reads == 2  # one forced fresh read
    assert len(plaid.requests) == 1  # same keys after refresh: no pointless second call
    [line] = output.logs("link_token_failed")
    assert "another Plaid environment" in line["cause"]


def test_slow_plaid_gives_504_within_the_budget(invoke: Any, plaid: Any) -> None:
    # A warm container: the 1.2 s below are Plaid's alone, not shared with a cold secret
    # read that a loaded machine can stretch past the budget.
    assert invoke(make_event({}))["statusCode"] == 200
    plaid.script(Scripted(delay=1.5))
    # 1.2 s left: the first attempt's read timeout is clamped, and no retry fits.
    response = invoke(make_event({}), LambdaContext(remaining_ms=1_200))

    assert response["statusCode"] == 504
    assert body_of(response)["retryable"] is True
    assert len(plaid.requests) == 2  # the warm-up's, and one attempt


def test_missing_secret_is_misconfigured(invoke: Any, aws: Any, output: Any) -> None:
    aws.delete_secret(SecretId="plaid-link-token/test", ForceDeleteWithoutRecovery=True)

    response = invoke(make_event({}))

    assert response["statusCode"] == 500
    assert body_of(response)["code"] == "MISCONFIGURED"
    [line] = output.logs("link_token_failed")
    assert "ResourceNotFoundException" in line["cause"]
