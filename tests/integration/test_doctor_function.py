"""`make doctor --function/--stack`: a deployed function's configuration and its recent
`link_token_failed` lines, read from moto (Lambda, CloudWatch Logs, CloudFormation)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from botocore.stub import Stubber

from infra.doctor.deployed import (
    Unreadable,
    failure_events,
    failure_findings,
    fix_for,
    parse_since,
    read_function,
    summarise,
)
from linktoken.plaid_errors import BY_ERROR_CODE
from tests.conftest import SECRET_ID
from tests.helpers_doctor import (
    client,
    create_function,
    finding,
    good_secret,
    moto,
    moto_url,
    put_secret,
    run_doctor,
)

__all__ = ["moto", "moto_url"]  # fixtures

NAME = "plaid-link-token-prod"
LOG_GROUP = f"/aws/lambda/{NAME}"
FUNCTION_ENV = {
    "PLAID_SECRET_ID": SECRET_ID,
    "PLAID_CLIENT_NAME": "Acme",
    "PLAID_ENV": "production",
    "PLAID_PRODUCTS": "transactions,auth",
}
NOW_MS = int(time.time() * 1000)
MINUTE_MS = 60_000

KEYS_CAUSE = (
    "Plaid rejected client_id/secret: keys from another Plaid environment than PLAID_ENV, a "
    "rotated or mistyped secret (a fresh read returned the same keys)"
)


def failed_line(
    error_code: str,
    status: int,
    cause: str,
    plaid_error_code: str | None = None,
    plaid_error_type: str | None = None,
    plaid_status: int | None = None,
) -> dict[str, Any]:
    """A `link_token_failed` line as docs/errors.md shows the function writes it."""
    line: dict[str, Any] = {
        "level": "ERROR",
        "location": "_failed:114",
        "message": "link_token_failed",
        "timestamp": "not relied on",
        "service": "plaid-link-token",
        "cold_start": False,
        "function_name": NAME,
        "correlation_id": "req-" + uuid.uuid4().hex[:12],
        "user_ref": "8b5f2503d0b78917",
        "platform": "web",
        "error_code": error_code,
        "status": status,
        "cause": cause,
    }
    if plaid_error_code:
        line.update(
            plaid_status=plaid_status or 400,
            plaid_error_type=plaid_error_type or "INVALID_INPUT",
            plaid_error_code=plaid_error_code,
            plaid_error_message="as Plaid sent it",
            plaid_request_id=uuid.uuid4().hex[:15],
        )
    return line


def put_lines(lines: list[tuple[int, Any]], group: str = LOG_GROUP) -> None:
    """(minutes ago, line) pairs into the log group; a str line is written as it is."""
    logs = client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="2026/11/30/[$LATEST]abc")
    events = [
        {
            "timestamp": NOW_MS - minutes * MINUTE_MS,
            "message": line if isinstance(line, str) else json.dumps(line),
        }
        for minutes, line in sorted(lines, key=lambda pair: -pair[0])
    ]
    logs.put_log_events(
        logGroupName=group, logStreamName="2026/11/30/[$LATEST]abc", logEvents=events
    )


@pytest.fixture
def deployed(moto: str) -> dict[str, Any]:
    """A function with a good configuration and secret, and a day of mixed log lines."""
    put_secret(good_secret())
    create_function(NAME, FUNCTION_ENV)
    keys = [failed_line("UPSTREAM_REJECTED", 502, KEYS_CAUSE, "INVALID_API_KEYS") for _ in "abc"]
    product = failed_line(
        "UPSTREAM_REJECTED",
        502,
        "a requested product is not enabled",
        "INVALID_PRODUCT",
    )
    empty = [
        failed_line(
            "MISCONFIGURED", 500, f"secret '{SECRET_ID}': field 'secret' is missing or empty"
        )
        for _ in "ab"
    ]
    outage = failed_line("UPSTREAM_UNAVAILABLE", 503, "could not connect to Plaid")
    too_old = failed_line("UPSTREAM_REJECTED", 502, "old", "INVALID_FIELD")
    created = {"message": "link_token_created", "correlation_id": "req-ok"}
    put_lines(
        [
            (300, keys[0]),
            (120, keys[1]),
            (5, keys[2]),
            (60, product),
            (50, empty[0]),
            (40, empty[1]),
            (30, outage),
            (20, created),
            (10, "START RequestId: 1 Version: $LATEST"),
            (26 * 60, too_old),  # outside the default 24 h
        ]
    )
    return {"keys": keys, "product": product, "empty": empty, "outage": outage}


def test_recent_failures_are_counted_by_cause_with_their_fixes(deployed: dict[str, Any]) -> None:
    code, text, doc = run_doctor("--function", NAME)

    assert code == 1
    rows = {(r["error_code"], r["plaid_error_code"]): r for r in doc["failures"]}
    assert {key: row["count"] for key, row in rows.items()} == {
        ("UPSTREAM_REJECTED", "INVALID_API_KEYS"): 3,
        ("MISCONFIGURED", None): 2,
        ("UPSTREAM_REJECTED", "INVALID_PRODUCT"): 1,
        ("UPSTREAM_UNAVAILABLE", None): 1,
    }
    keys = rows["UPSTREAM_REJECTED", "INVALID_API_KEYS"]
    newest = deployed["keys"][2]  # 5 minutes ago
    assert keys["request_id"] == newest["correlation_id"]
    assert keys["plaid_request_id"] == newest["plaid_request_id"]
    assert keys["fix"] == BY_ERROR_CODE["INVALID_API_KEYS"].fix
    assert keys["cause"] == KEYS_CAUSE
    assert (
        rows["UPSTREAM_REJECTED", "INVALID_PRODUCT"]["fix"] == BY_ERROR_CODE["INVALID_PRODUCT"].fix
    )
    assert doc["failures"][0]["count"] == 3  # most frequent first

    checks = {f["check"]: f for f in doc["findings"] if f["group"] == "recent failures"}
    assert checks["UPSTREAM_REJECTED/INVALID_API_KEYS"]["status"] == "problem"
    assert checks["MISCONFIGURED"]["status"] == "problem"
    assert checks["UPSTREAM_UNAVAILABLE"]["status"] == "warn"  # not the configuration
    assert "3 in the last 24h" in checks["UPSTREAM_REJECTED/INVALID_API_KEYS"]["detail"]
    assert newest["correlation_id"] in text
    assert f"deployed function {NAME} (log group {LOG_GROUP})" in text


def test_since_widens_the_window(deployed: dict[str, Any]) -> None:
    _code, _text, doc = run_doctor("--function", NAME, "--since", "2d")
    codes = {r["plaid_error_code"] for r in doc["failures"]}
    assert "INVALID_FIELD" in codes

    _code, _text, doc = run_doctor("--function", NAME, "--since", "90m")
    assert sum(r["count"] for r in doc["failures"]) == 5  # 120 and 300 minutes ago left out


def test_the_functions_configuration_is_checked_not_the_local_one(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_secret(good_secret())
    create_function(NAME, {**FUNCTION_ENV, "PLAID_ENV": "development"})
    put_lines([(1, failed_line("MISCONFIGURED", 500, "configuration: PLAID_ENV=development"))])
    monkeypatch.setenv("PLAID_ENV", "sandbox")  # the local environment is fine

    code, _text, doc = run_doctor("--function", NAME)

    assert code == 1
    assert finding(doc, "PLAID_ENV")["status"] == "problem"
    assert finding(doc, "PLAID_PRODUCTS")["detail"] == "transactions,auth"  # the function's
    assert finding(doc, "readable")["status"] == "ok"  # the secret it points to


def test_a_function_without_log_group_is_said_not_a_crash(moto: str) -> None:
    put_secret(good_secret())
    create_function(NAME, FUNCTION_ENV)

    code, _text, doc = run_doctor("--function", NAME)

    assert code == 0  # nothing wrong was found; what could not be read is said
    logs = finding(doc, LOG_GROUP)
    assert logs["status"] == "skip"
    assert "ResourceNotFoundException" in logs["detail"]
    assert "never ran" in logs["fix"]


def test_a_quiet_function_passes(moto: str) -> None:
    put_secret(good_secret())
    create_function(NAME, FUNCTION_ENV)
    put_lines([(3, {"message": "link_token_created"})])

    code, _text, doc = run_doctor("--function", NAME)

    assert code == 0
    assert finding(doc, LOG_GROUP)["status"] == "ok"
    assert doc["failures"] == []


def test_a_missing_function_is_said(moto: str) -> None:
    code, _text, doc = run_doctor("--function", "no-such-function")

    assert code == 1
    found = finding(doc, "configuration")
    assert found["status"] == "problem"
    assert "ResourceNotFoundException" in found["detail"]


def test_stack_output_names_the_function(deployed: dict[str, Any]) -> None:
    """moto's CloudFormation creates the stack; its FunctionName output names our function."""
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"FunctionName": {"Value": NAME}},
    }
    client("cloudformation").create_stack(StackName="link", TemplateBody=json.dumps(template))

    code, _text, doc = run_doctor("--stack", "link")

    assert code == 1
    assert doc["title"].startswith(f"deployed function {NAME}")
    assert sum(r["count"] for r in doc["failures"]) == 7


def test_stack_without_output_falls_back_to_its_function_resource(moto: str) -> None:
    iam = client("iam")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    template = {
        "Resources": {
            "LinkTokenFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": "from-stack",
                    "Runtime": "python3.13",
                    "Role": role,
                    "Handler": "app.lambda_handler",
                    "Code": {"ZipFile": "def lambda_handler(event, context):\n    return None\n"},
                    "Environment": {"Variables": FUNCTION_ENV},
                },
            }
        }
    }
    client("cloudformation").create_stack(StackName="bare", TemplateBody=json.dumps(template))
    put_secret(good_secret())

    _code, _text, doc = run_doctor("--stack", "bare")

    assert doc["title"].startswith("deployed function from-stack")
    assert finding(doc, "PLAID_ENV")["detail"] == "production"


def test_missing_permission_on_logs_is_said() -> None:
    logs = client_without_endpoint("logs")
    with Stubber(logs) as stub:
        stub.add_client_error(
            "filter_log_events", "AccessDeniedException", "not authorized to FilterLogEvents"
        )
        with pytest.raises(Unreadable, match="AccessDeniedException: not authorized"):
            list(failure_events(LOG_GROUP, 0, logs))


def test_the_functions_own_log_group_is_read_when_it_has_one() -> None:
    """moto does not keep LoggingConfig; the real API answers it as stubbed here."""
    lam = client_without_endpoint("lambda")
    with Stubber(lam) as stub:
        stub.add_response(
            "get_function_configuration",
            {"FunctionName": NAME, "LoggingConfig": {"LogGroup": "/custom/link-token"}},
        )
        stub.add_response("get_function_configuration", {"FunctionName": NAME})
        assert read_function(NAME, lam).log_group == "/custom/link-token"
        assert read_function(NAME, lam).log_group == LOG_GROUP


def test_fix_for_a_logged_plaid_error_comes_from_the_error_table() -> None:
    line = failed_line("UPSTREAM_REJECTED", 502, "x", "INVALID_FIELD", "INVALID_REQUEST")
    assert fix_for(line) == BY_ERROR_CODE["INVALID_FIELD"].fix
    unknown_code = failed_line("UPSTREAM_REJECTED", 502, "x", "SOMETHING_NEW", "INVALID_INPUT")
    assert fix_for(unknown_code)  # falls back on the error type's rule, still a fix


@pytest.mark.parametrize(
    ("line", "fix_says"),
    [
        # Answers that arrived but could not be used: Plaid's status is on the line, its error
        # fields are not; the cause names the rule (with the reason after a colon).
        (
            failed_line(
                "UPSTREAM_REJECTED",
                502,
                "Plaid's answer is larger than any link token answer",
                plaid_status=200,
            ),
            "proxy or gateway between the function and Plaid",
        ),
        (
            failed_line(
                "UPSTREAM_REJECTED",
                502,
                "Plaid's answer is compressed in a way this service cannot read: the answer is "
                "encoded as 'br'",
                plaid_status=200,
            ),
            "it asks for gzip or deflate only",
        ),
        # Transport failures: no Plaid fields at all.
        (
            failed_line("UPSTREAM_TIMEOUT", 504, "no time left in the invocation to call Plaid"),
            "what used the invocation's time",
        ),
        (
            failed_line(
                "MISCONFIGURED",
                500,
                "Plaid's TLS certificate did not verify: REQUESTS_CA_BUNDLE lacks Plaid's root "
                "CA, or an intercepting proxy presents its own certificate",
            ),
            "exempt Plaid's host from inspection",
        ),
        # A missing use case, named by Plaid's message whatever its error_code.
        (
            failed_line(
                "UPSTREAM_REJECTED",
                502,
                "Plaid wants a Link use case (Data Transparency Messaging) that is not set up in "
                "the Dashboard for these countries and language",
                "INVALID_FIELD",
                "INVALID_REQUEST",
            ),
            "Data Transparency Messaging",
        ),
        # The configuration: the fix of the setting the cause names.
        (
            failed_line(
                "MISCONFIGURED",
                500,
                "configuration: PLAID_ENV=development is no longer available: Plaid retired the "
                "Development environment in June 2024; use sandbox or production",
            ),
            "set PLAID_ENV to sandbox or production (PlaidEnv)",
        ),
        (
            failed_line(
                "MISCONFIGURED",
                500,
                "configuration: PLAID_SECRET_TTL_SECONDS must be between 0 and 86400",
            ),
            "(PlaidSecretTtlSeconds)",
        ),
        # The secret: the code's own fix.
        (
            failed_line("MISCONFIGURED", 500, "secret 'plaid': field 'secret' is missing or empty"),
            "the cause names the variable or secret field",
        ),
    ],
    ids=["too-large", "unreadable", "no-time", "tls", "use-case", "plaid-env", "ttl", "secret"],
)
def test_fix_for_a_logged_failure_is_the_rule_its_cause_names(
    line: dict[str, Any], fix_says: str
) -> None:
    assert fix_says in fix_for(line)


@pytest.mark.parametrize(
    ("error_code", "status", "verdict"),
    [
        ("UPSTREAM_REJECTED", 502, "problem"),
        ("MISCONFIGURED", 500, "problem"),
        ("INTERNAL_ERROR", 500, "problem"),
        ("UPSTREAM_UNAVAILABLE", 503, "warn"),
        ("RATE_LIMITED", 429, "warn"),
        ("INVALID_REQUEST", 400, "warn"),
        ("SOMETHING_ELSE", 500, "warn"),
    ],
)
def test_only_what_a_release_or_the_operator_caused_is_a_problem(
    error_code: str, status: int, verdict: str
) -> None:
    rows = summarise(iter([{**failed_line(error_code, status, "x"), "_timestamp": NOW_MS}]))
    [found] = failure_findings(rows, LOG_GROUP, "24h")
    assert found.status == verdict


@pytest.mark.parametrize("text", ["", "24", "0h", "1w", "-1h"])
def test_since_must_be_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="--since"):
        parse_since(text)


def test_bad_since_is_a_usage_error(moto: str, output: Any) -> None:
    from infra.doctor.__main__ import main

    assert main(["--function", NAME, "--since", "forever"]) == 2
    assert "--since wants a duration" in output.read()


def client_without_endpoint(service: str) -> Any:
    """A client for a Stubber: it never sends anything anywhere."""
    import botocore.session

    return botocore.session.get_session().create_client(service, endpoint_url="http://127.0.0.1:9")


def test_the_real_handlers_failure_lines_are_summarised(
    invoke: Any, plaid: Any, aws: Any, output: Any
) -> None:
    """The lines doctor reads are the ones the handler writes: run the real handler into three
    failures, hand its log lines to doctor as CloudWatch would, and read the summary."""
    from infra.doubles.plaid_standin import plaid_error
    from tests.conftest import CLIENT_ID, make_event

    product = plaid_error(400, "INVALID_INPUT", "INVALID_PRODUCT", "auth is not enabled")
    keys = plaid_error(400, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret")
    events = [make_event({}) for _ in range(3)]
    plaid.script(product)
    invoke(events[0])
    plaid.script(keys)
    invoke(events[1])
    aws.put_secret_value(
        SecretId=SECRET_ID, SecretString=json.dumps({"client_id": CLIENT_ID, "secret": ""})
    )
    invoke.container.service.secrets.forget()  # past the secret's TTL
    invoke(events[2])
    lines = output.logs("link_token_failed")
    assert len(lines) == 3

    logs = client_without_endpoint("logs")
    with Stubber(logs) as stub:
        stub.add_response(
            "filter_log_events",
            {
                "events": [
                    {"timestamp": NOW_MS + i, "message": json.dumps(line)}
                    for i, line in enumerate(lines)
                ]
            },
        )
        rows = summarise(failure_events(LOG_GROUP, 0, logs))

    by_code = {(r["error_code"], r["plaid_error_code"]): r for r in rows}
    assert set(by_code) == {
        ("UPSTREAM_REJECTED", "INVALID_PRODUCT"),
        ("UPSTREAM_REJECTED", "INVALID_API_KEYS"),
        ("MISCONFIGURED", None),
    }
    for event, key, answer in [
        (events[0], ("UPSTREAM_REJECTED", "INVALID_PRODUCT"), product),
        (events[1], ("UPSTREAM_REJECTED", "INVALID_API_KEYS"), keys),
    ]:
        row = by_code[key]
        assert row["request_id"] == event["requestContext"]["requestId"]
        assert row["plaid_request_id"] == answer.body["request_id"]
        assert row["fix"] == BY_ERROR_CODE[key[1]].fix
    misconfigured = by_code["MISCONFIGURED", None]
    assert misconfigured["request_id"] == events[2]["requestContext"]["requestId"]
    assert "field 'secret' is missing or empty" in misconfigured["cause"]
