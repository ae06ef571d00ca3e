"""Logs, EMF metrics, trace annotations and the SnapStart hook, through the real handler."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from infra.doubles.lambda_runtime import LambdaContext
from infra.doubles.plaid_standin import Scripted, plaid_error
from linktoken import observability as obs
from linktoken.problems import PROBLEM_TYPES
from tests.conftest import SECRET_ID, body_of, make_event
from tests.helpers_app import cold_started_app

SUB = "user-0001"
USER_REF = hashlib.sha256(SUB.encode()).hexdigest()[:16]
SERVICE = "plaid-link-token"
NAMESPACE = "PlaidLinkToken"


@pytest.fixture
def first_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next invocation a cold start again, for Logger and Metrics."""
    monkeypatch.setattr("aws_lambda_powertools.logging.logger.is_cold_start", True)
    monkeypatch.setattr("aws_lambda_powertools.metrics.provider.cold_start.is_cold_start", True)


@pytest.fixture
def warm_container(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next invocation a warm one, whatever ran before in this process."""
    monkeypatch.setattr("aws_lambda_powertools.logging.logger.is_cold_start", False)
    monkeypatch.setattr("aws_lambda_powertools.metrics.provider.cold_start.is_cold_start", False)


# Named apart from `from __future__ import annotations`; tests ask for it as `annotations`.
@pytest.fixture(name="annotations")
def annotations_fixture(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    recorded: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        obs.tracer, "put_annotation", lambda key, value: recorded.append((key, value))
    )
    return recorded


def summary_lines(output: Any) -> list[dict[str, Any]]:
    return [
        line
        for line in output.logs()
        if line.get("message") in {"link_token_created", "link_token_failed"}
    ]


def directive(doc: dict[str, Any]) -> dict[str, Any]:
    [only] = doc["_aws"]["CloudWatchMetrics"]
    directive: dict[str, Any] = only
    return directive


def unit_of(doc: dict[str, Any], name: str) -> str:
    unit: str = next(m["Unit"] for m in directive(doc)["Metrics"] if m["Name"] == name)
    return unit


# --- log lines --------------------------------------------------------------------------------


def test_success_line(invoke: Any, plaid: Any, output: Any, first_invocation: None) -> None:
    event = make_event({"platform": "ios", "products": ["auth"]}, sub=SUB)

    body = body_of(invoke(event))

    [line] = summary_lines(output)
    assert line["message"] == "link_token_created"
    assert line["level"] == "INFO"
    assert line["service"] == SERVICE
    assert line["correlation_id"] == event["requestContext"]["requestId"]
    assert line["cold_start"] is True
    assert line["user_ref"] == USER_REF
    assert (line["status"], line["attempts"], line["platform"], line["products"]) == (
        200,
        1,
        "ios",
        ["auth"],
    )
    assert line["plaid_request_id"] == body["plaid_request_id"]
    assert line["link_token"] == "link-sandbox-****" + body["link_token"][-4:]
    assert line["expiration"] == body["expiration"]
    assert line["plaid_latency_ms"] > 0
    assert "error_code" not in line


def test_plaid_failure_line(invoke: Any, plaid: Any, output: Any, warm_container: None) -> None:
    answer = plaid_error(400, "INVALID_INPUT", "INVALID_PRODUCT", "client not enabled for auth")
    plaid.script(answer)
    event = make_event({}, sub=SUB)

    invoke(event)

    [line] = summary_lines(output)
    assert line["message"] == "link_token_failed"
    assert line["level"] == "ERROR"
    assert line["correlation_id"] == event["requestContext"]["requestId"]
    assert line["service"] == SERVICE
    assert line["cold_start"] is False
    assert line["user_ref"] == USER_REF
    assert (line["error_code"], line["status"], line["attempts"]) == ("UPSTREAM_REJECTED", 502, 1)
    assert "PLAID_PRODUCTS" in line["cause"]
    assert line["plaid_status"] == 400
    assert line["plaid_error_type"] == "INVALID_INPUT"
    assert line["plaid_error_code"] == "INVALID_PRODUCT"
    assert line["plaid_error_message"] == "client not enabled for auth"
    assert line["plaid_request_id"] == answer.body["request_id"]
    assert line["plaid_latency_ms"] >= 0


ANY = object()  # not pinned: the input fails before the body is read


def test_a_missing_use_case_is_the_cause_doctor_names(invoke: Any, plaid: Any, output: Any) -> None:
    """Plaid says a Link use case is missing only in its message: the line names that cause
    (the same words `make doctor --live` prints), with Plaid's own fields as sent."""
    plaid.script(
        plaid_error(400, "INVALID_REQUEST", "INVALID_FIELD", "no Link use case is configured")
    )

    assert invoke(make_event({}))["statusCode"] == 502

    [line] = summary_lines(output)
    assert line["cause"] == (
        "Plaid wants a Link use case (Data Transparency Messaging) that is not set up in the "
        "Dashboard for these countries and language"
    )
    assert (line["plaid_error_code"], line["plaid_error_message"]) == (
        "INVALID_FIELD",
        "no Link use case is configured",
    )


@pytest.mark.parametrize(
    ("event", "code", "user_ref"),
    [
        (make_event(raw_body="{bad", sub=SUB), "INVALID_REQUEST", ANY),
        (make_event({}, sub=None), "UNAUTHENTICATED", None),
        (make_event({}, sub=SUB, content_type="text/xml"), "UNSUPPORTED_MEDIA_TYPE", ANY),
        (make_event({"platform": "tv"}, sub=SUB), "INVALID_REQUEST", USER_REF),
        (make_event({"products": ["auth", "assets"]}, sub=SUB), "INVALID_REQUEST", USER_REF),
    ],
)
def test_client_error_lines_are_warnings_without_plaid_fields(
    invoke: Any, output: Any, event: dict[str, Any], code: str, user_ref: Any
) -> None:
    invoke.container.service.secrets.get()  # a warm container: whether there is a key is known
    invoke(event)

    [line] = summary_lines(output)
    assert (line["level"], line["error_code"]) == ("WARNING", code)
    assert line["status"] == PROBLEM_TYPES[code].status
    assert line["correlation_id"] == event["requestContext"]["requestId"]
    assert line["cause"]
    if user_ref is not ANY:
        assert line.get("user_ref") == user_ref
    assert SUB not in json.dumps(line)
    assert not [key for key in line if key.startswith("plaid_") or key == "attempts"]


def test_exactly_one_summary_line_per_request(invoke: Any, plaid: Any, output: Any) -> None:
    requests = [
        # (what Plaid answers first, the event, the status)
        ([plaid_error(503, "API_ERROR", "PLANNED_MAINTENANCE", "m")], make_event({}), 200),
        ([Scripted(200, b"<html>not json</html>")], make_event({}), 502),
        ([plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR", "x")] * 3, make_event({}), 503),
        ([], make_event(raw_body="{bad"), 400),
        ([], make_event({}, sub=None), 401),
        ([], make_event({"language": "fr"}), 200),
        ([], make_event({}, content_type="text/plain"), 415),
    ]

    for answers, event, status in requests:
        plaid.script(*answers)
        assert invoke(event)["statusCode"] == status

    lines = summary_lines(output)
    assert [line["correlation_id"] for line in lines] == [
        event["requestContext"]["requestId"] for _, event, _ in requests
    ]
    assert len(plaid.requests) == 2 + 1 + 3 + 1  # retries add attempts, not lines
    # Nothing else is logged per request: one line is the whole story.
    assert len(output.logs()) == len(requests)


CANARIES = ("hdr-canary-41c7", "agent-canary-93d2", "claim-canary-0b6e", "body-canary-7a51")


def canary_event(sub: str | None = SUB) -> dict[str, Any]:
    event = make_event(raw_body=json.dumps({"platform": "web"}) + " " * 3 + "\n", sub=sub)
    event["headers"]["authorization"] = "Bearer eyJ." + CANARIES[0]
    event["headers"]["user-agent"] = CANARIES[1]
    event["requestContext"]["http"]["userAgent"] = CANARIES[1]
    if sub is not None:
        event["requestContext"]["authorizer"]["jwt"]["claims"]["email"] = CANARIES[2]
    event["rawQueryString"] = "utm=" + CANARIES[3]
    return event


def assert_event_not_logged(output: Any, event: dict[str, Any]) -> None:
    text = output.read()
    for canary in CANARIES:
        assert canary not in text
    assert event["body"] not in text
    assert "routeKey" not in text and "requestContext" not in text


def test_event_is_not_logged(invoke: Any, plaid: Any, output: Any) -> None:
    plaid.script(plaid_error(400, "INVALID_REQUEST", "INVALID_FIELD", "redirect_uri"))
    events = [canary_event(), canary_event(), canary_event(sub=None)]

    assert [invoke(event)["statusCode"] for event in events] == [502, 200, 401]

    for event in events:
        assert_event_not_logged(output, event)


def test_event_is_not_logged_even_when_powertools_is_told_to(output: Any) -> None:
    event = canary_event(sub=None)  # 401: answered without any upstream call
    with cold_started_app({"POWERTOOLS_LOGGER_LOG_EVENT": "true"}) as app:
        response = app.lambda_handler(event, LambdaContext())

    assert response["statusCode"] == 401
    assert_event_not_logged(output, event)


# --- INTERNAL_ERROR ---------------------------------------------------------------------------


def test_unexpected_exception_is_500_with_trace_in_the_log_only(
    invoke: Any, plaid: Any, output: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any) -> Any:
        raise RuntimeError("kaboom-5c2e in the request builder")

    monkeypatch.setattr("linktoken.service.build_link_token_request", broken)
    event = make_event({}, sub=SUB)

    response = invoke(event)

    assert response["statusCode"] == 500
    assert response["headers"]["Content-Type"] == "application/problem+json"
    body = body_of(response)
    assert set(body) == {"type", "title", "status", "detail", "code", "retryable", "request_id"}
    assert (body["code"], body["retryable"]) == ("INTERNAL_ERROR", False)
    assert body["request_id"] == event["requestContext"]["requestId"]
    for leak in ("kaboom", "RuntimeError", "Traceback", "service.py", "build_link_token"):
        assert leak not in response["body"]
    assert plaid.requests == []

    [line] = summary_lines(output)
    assert (line["level"], line["error_code"], line["status"]) == ("ERROR", "INTERNAL_ERROR", 500)
    assert line["correlation_id"] == event["requestContext"]["requestId"]
    assert line["user_ref"] == USER_REF
    assert line["exception_name"] == "RuntimeError"
    assert "Traceback" in line["exception"]
    assert "kaboom-5c2e" in line["exception"]
    [failed] = output.metrics()["LinkTokenFailed"]
    assert failed["ErrorCode"] == "INTERNAL_ERROR"


# --- EMF metrics ------------------------------------------------------------------------------


def test_success_metrics(invoke: Any, output: Any) -> None:
    invoke(make_event({}))

    metrics = output.metrics()
    assert {"LinkTokenCreated", "PlaidLatency", "PlaidRetries", "SecretsFetched"} <= set(metrics)
    assert "LinkTokenFailed" not in metrics
    docs = [doc for found in metrics.values() for doc in found]
    for doc in docs:
        assert directive(doc)["Namespace"] == NAMESPACE
        assert all("service" in dimensions for dimensions in directive(doc)["Dimensions"])
        assert doc["service"] == SERVICE
    [created], [latency], [retries], [fetched] = (
        metrics[name] for name in ("LinkTokenCreated", "PlaidLatency", "PlaidRetries", "SecretsFetched")
    )  # fmt: skip
    assert (created["LinkTokenCreated"], retries["PlaidRetries"], fetched["SecretsFetched"]) == (
        [1.0],
        [0.0],
        [1.0],
    )
    assert unit_of(created, "LinkTokenCreated") == "Count"
    assert unit_of(latency, "PlaidLatency") == "Milliseconds"
    assert latency["PlaidLatency"][0] > 0


def test_failure_metrics_carry_the_error_code_only_on_link_token_failed(
    invoke: Any, plaid: Any, output: Any
) -> None:
    plaid.script(*[plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR", "oops")] * 3)

    invoke(make_event({}))

    metrics = output.metrics()
    assert "LinkTokenCreated" not in metrics
    [failed] = metrics["LinkTokenFailed"]
    assert directive(failed)["Dimensions"] == [["service", "ErrorCode"]]
    assert (failed["ErrorCode"], failed["LinkTokenFailed"]) == ("UPSTREAM_UNAVAILABLE", [1.0])
    assert unit_of(failed, "LinkTokenFailed") == "Count"
    [latency] = metrics["PlaidLatency"]
    assert "ErrorCode" not in latency
    assert all("ErrorCode" not in dims for dims in directive(latency)["Dimensions"])
    assert unit_of(latency, "PlaidLatency") == "Milliseconds"
    assert metrics["PlaidRetries"][0]["PlaidRetries"] == [2.0]


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (make_event(raw_body="{bad"), "INVALID_REQUEST"),
        (make_event({}, sub=None), "UNAUTHENTICATED"),
        (make_event(raw_body=json.dumps({"x": "a" * 17_000})), "PAYLOAD_TOO_LARGE"),
    ],
)
def test_failures_before_plaid_have_no_plaid_metrics(
    invoke: Any, output: Any, event: dict[str, Any], code: str
) -> None:
    invoke(event)

    metrics = output.metrics()
    assert [doc["ErrorCode"] for doc in metrics["LinkTokenFailed"]] == [code]
    assert "PlaidLatency" not in metrics
    assert "PlaidRetries" not in metrics
    assert metrics["SecretsFetched"][0]["SecretsFetched"] == [0.0]


def test_cold_start_metric_only_on_the_first_invocation(
    invoke: Any, output: Any, first_invocation: None
) -> None:
    invoke(make_event({}))
    first = output.metrics().get("ColdStart", [])
    invoke(make_event({}))
    invoke(make_event({}, sub=None))

    assert len(first) == 1
    assert len(output.metrics()["ColdStart"]) == 1
    [cold] = first
    assert directive(cold)["Namespace"] == NAMESPACE
    assert cold["ColdStart"] == [1.0]
    assert cold["function_name"] == LambdaContext().function_name
    assert [line["cold_start"] for line in summary_lines(output)] == [True, False, False]


# --- trace annotations ------------------------------------------------------------------------


def boom(*_args: Any) -> Any:
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("setup", "event", "outcome"),
    [
        (None, make_event({}), "OK"),
        ("reject", make_event({}), "UPSTREAM_REJECTED"),
        (None, make_event({}, sub=None), "UNAUTHENTICATED"),
        ("bug", make_event({}), "INTERNAL_ERROR"),
    ],
)
def test_trace_annotations_name_the_environment_and_outcome(
    invoke: Any,
    plaid: Any,
    annotations: list[tuple[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    setup: str | None,
    event: dict[str, Any],
    outcome: str,
) -> None:
    if setup == "reject":
        plaid.script(plaid_error(400, "INVALID_INPUT", "INVALID_PRODUCT", "no"))
    elif setup == "bug":
        monkeypatch.setattr("linktoken.service.build_link_token_request", boom)

    invoke(event)

    assert annotations == [("plaid_env", "sandbox"), ("outcome", outcome)]


def test_trace_annotations_when_misconfigured(
    annotations: list[tuple[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import app
    from linktoken.container import build_container

    bad = build_container({"PLAID_SECRET_ID": SECRET_ID, "PLAID_CLIENT_NAME": "x" * 31})
    monkeypatch.setattr(app, "CONTAINER", bad)

    response = app.lambda_handler(make_event({}), LambdaContext())

    assert response["statusCode"] == 500
    assert annotations == [("plaid_env", "unknown"), ("outcome", "MISCONFIGURED")]


# --- SnapStart --------------------------------------------------------------------------------


def test_init_leaves_the_collector_on_with_init_objects_frozen() -> None:
    # app.py turns the collector off for init; forgetting to turn it back on would leak
    # every reference cycle for the container's life.
    import gc

    import app

    assert app.CONTAINER is not None
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


def test_snapstart_restore_hook_is_the_container_reset() -> None:
    from snapshot_restore_py import get_after_restore

    import app

    hooks = [func for func, _args, _kwargs in get_after_restore()]

    assert app.CONTAINER.reset in hooks
    assert [hook for hook in hooks if getattr(hook, "__self__", None) is app.CONTAINER] == [
        app.CONTAINER.reset
    ]


def test_restore_hook_makes_the_next_request_reread_the_secret_and_reconnect(
    aws: Any, plaid: Any, service_env: dict[str, str]
) -> None:
    from snapshot_restore_py import get_after_restore

    env: dict[str, str | None] = {**service_env, "AWS_ENDPOINT_URL_SECRETS_MANAGER": None}
    with cold_started_app(env) as app:
        service = app.CONTAINER.service
        assert [
            app.lambda_handler(make_event({}), LambdaContext())["statusCode"] for _ in "ab"
        ] == [
            200,
            200,
        ]
        assert (service.secrets.reads, plaid.connections) == (1, 1)

        for func, args, kwargs in get_after_restore():  # what Lambda does after a restore
            func(*args, **kwargs)

        assert app.lambda_handler(make_event({}), LambdaContext())["statusCode"] == 200
        assert (service.secrets.reads, plaid.connections) == (2, 2)


def test_user_ref_is_keyed_when_the_secret_has_an_hmac_key(
    invoke: Any, aws: Any, output: Any
) -> None:
    import hmac

    from tests.conftest import HMAC_KEY, SECRET_ID, secret_json

    aws.put_secret_value(SecretId=SECRET_ID, SecretString=secret_json(user_id_hmac_key=HMAC_KEY))
    invoke(make_event({}, sub=SUB))  # reads the secret: the key is known from here on
    invoke(make_event({"platform": "tv"}, sub=SUB))

    keyed = hmac.new(HMAC_KEY.encode(), b"user_ref:" + SUB.encode(), "sha256").hexdigest()[:16]
    refs = [line["user_ref"] for line in summary_lines(output)]
    assert refs == [keyed, keyed]
    assert USER_REF not in json.dumps(output.logs())  # no unkeyed hash a list of subs reverses
    client_user_id = hmac.new(HMAC_KEY.encode(), SUB.encode(), "sha256").hexdigest()
    assert keyed not in client_user_id  # a pseudonym of its own, not a piece of Plaid's id


def test_before_any_secret_read_a_line_has_no_user_ref(invoke: Any, output: Any) -> None:
    invoke(make_event({"platform": "tv"}, sub=SUB))  # cold: the secret was never read

    [line] = summary_lines(output)
    assert "user_ref" not in line


@pytest.mark.parametrize(
    ("answer", "regression"),
    [
        (plaid_error(400, "INVALID_INPUT", "INVALID_PRODUCT", "not enabled"), True),
        (plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR", "oops"), False),
        (plaid_error(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", "slow down"), False),
    ],
    ids=["rejected", "plaid-down", "rate-limited"],
)
def test_release_regressions_are_counted_per_function_version(
    invoke: Any, plaid: Any, output: Any, answer: Any, regression: bool
) -> None:
    from linktoken.observability import FUNCTION_NAME, FUNCTION_VERSION

    plaid.script(*[answer] * 3)
    invoke(make_event({}))

    found = output.metrics().get("ReleaseRegression", [])
    if not regression:
        assert found == []  # Plaid's own state never rolls back a release
        return
    [doc] = found
    assert directive(doc)["Dimensions"] == [["service", "FunctionName", "FunctionVersion"]]
    assert (doc["FunctionName"], doc["FunctionVersion"], doc["ReleaseRegression"]) == (
        FUNCTION_NAME,
        FUNCTION_VERSION,
        [1.0],
    )


def exceptions_caught_by_the_logging_stack(action: Any) -> list[str]:
    """Every exception that Powertools or the service catches while `action()` runs: where
    it was caught, and its type."""
    import sys
    from types import CodeType

    monitoring = sys.monitoring
    tool = next(t for t in range(6) if monitoring.get_tool(t) is None)
    caught: list[str] = []

    def handled(code: CodeType, _offset: int, exception: BaseException) -> None:
        if "aws_lambda_powertools" in code.co_filename or "linktoken" in code.co_filename:
            caught.append(f"{type(exception).__name__} caught in {code.co_name}")

    monitoring.use_tool_id(tool, "exceptions-per-log-line")
    try:
        monitoring.register_callback(tool, monitoring.events.EXCEPTION_HANDLED, handled)
        monitoring.set_events(tool, monitoring.events.EXCEPTION_HANDLED)
        action()
    finally:
        monitoring.set_events(tool, 0)
        monitoring.register_callback(tool, monitoring.events.EXCEPTION_HANDLED, None)
        monitoring.free_tool_id(tool)
    return caught


def test_a_log_line_raises_no_exception_and_keeps_its_message_as_written(output: Any) -> None:
    # Powertools hands every plain message to the deserializer and catches what it raises;
    # a raise per line is wasted work, and the message must still go out exactly as written
    # (a JSON-looking message too: it stays a string, never becomes an object).
    messages = ["link_token_created", '{"looks": "like JSON"}', "[1, 2]"]

    def log_them() -> None:
        for message in messages:
            obs.logger.info(message)

    assert exceptions_caught_by_the_logging_stack(log_them) == []
    lines = output.logs()[-3:]
    assert [line["message"] for line in lines] == messages
    assert [line["level"] for line in lines] == ["INFO"] * 3
