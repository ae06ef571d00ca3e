"""`make doctor --function/--stack`: a deployed function's configuration and its recent
`link_token_failed` lines, read from moto (Lambda, CloudWatch Logs, CloudFormation)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from botocore.stub import Stubber

from infra.doctor import render
from infra.doctor.deployed import (
    Unreadable,
    failure_events,
    failure_findings,
    fix_for,
    orphan_findings,
    orphans,
    parse_since,
    read_function,
    summarise,
)
from infra.doctor.findings import Report
from infra.doctor.storage_checks import check_key, check_table
from linktoken.aws_json import AwsServiceError, ClientMeta, EndpointConnectionError
from linktoken.config import SETTINGS
from linktoken.plaid_errors import BY_ERROR_CODE, CONNECT_FAILED
from linktoken.problems import PROBLEM_TYPES
from tests.conftest import SECRET_ID
from tests.helpers_doctor import (
    ITEMS_TABLE,
    client,
    create_function,
    create_items_key,
    create_items_table,
    create_stack,
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


# ---------------------------------------------------------------------------------------------
# Items: the exchange and Items functions, their table and key, a stack's three functions
# ---------------------------------------------------------------------------------------------
EXCHANGE_NAME = "plaid-link-item-exchange-prod"
EXCHANGE_GROUP = f"/aws/lambda/{EXCHANGE_NAME}"
EXCHANGE_HANDLER = "exchange_app.lambda_handler"
ITEMS_HANDLER = "items_app.lambda_handler"
TABLE_FIX = next(s.fix for s in SETTINGS if s.variable == "ITEMS_TABLE")
KEY_FIX = next(s.fix for s in SETTINGS if s.variable == "ITEMS_KEY_ID")
NO_TABLE = (
    "ResourceNotFoundException: the Items table does not exist in this region (check ITEMS_TABLE)"
)


def storage(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["check"]: f for f in doc["findings"] if f["group"] == "items storage"}


def items_line(message: str, error_code: str, status: int, cause: str, **fields: Any) -> Any:
    """An Items function's failure line as plaiditems/endpoint.py writes it."""
    return {
        "level": "ERROR" if status >= 500 else "WARNING",
        "message": message,
        "service": "plaid-link-token",
        "correlation_id": "req-" + uuid.uuid4().hex[:12],
        "user_ref": "8b5f2503d0b78917",
        "error_code": error_code,
        "status": status,
        "cause": cause,
        **fields,
    }


def stored_env(table: str = ITEMS_TABLE, key_id: str | None = None) -> dict[str, str]:
    return {**FUNCTION_ENV, "ITEMS_TABLE": table, "ITEMS_KEY_ID": key_id or create_items_key()}


@pytest.mark.parametrize(
    ("handler", "verdict", "code"),
    [
        ("app.lambda_handler", "warn", 0),  # new-Item link tokens work; update mode does not
        (EXCHANGE_HANDLER, "problem", 1),
        (ITEMS_HANDLER, "problem", 1),
    ],
)
def test_without_the_table_and_key_an_items_function_has_a_problem_the_link_token_one_a_warning(
    moto: str, handler: str, verdict: str, code: int
) -> None:
    from plaiditems.container import build_items_container

    put_secret(good_secret())
    create_function(NAME, FUNCTION_ENV, handler)

    exit_code, text, doc = run_doctor("--function", NAME)

    assert exit_code == code, text
    for variable in ("ITEMS_TABLE", "ITEMS_KEY_ID"):
        found = finding(doc, variable)
        assert found["status"] == verdict
        assert "need both ITEMS_TABLE and ITEMS_KEY_ID" in found["detail"]
        assert found["fix"] in (TABLE_FIX, KEY_FIX)
    detail = finding(doc, "ITEMS_TABLE")["detail"]
    said = build_items_container(FUNCTION_ENV).config_error  # what the Items function logs
    assert said
    if verdict == "problem":
        assert (
            f"answers every request 500 MISCONFIGURED (its configuration_invalid line: {said})"
            in (detail)
        )
    else:
        assert "update mode answers 500 MISCONFIGURED" in detail and said not in detail
    assert "items storage" not in {f["group"] for f in doc["findings"]}  # nothing to read


def test_the_table_and_key_as_the_stack_makes_them_pass(moto: str) -> None:
    put_secret(good_secret())
    create_items_table()
    env = stored_env()
    create_function(EXCHANGE_NAME, env, EXCHANGE_HANDLER)
    put_lines([(3, {"message": "item_exchanged", "item_id": "item-1"})], EXCHANGE_GROUP)

    code, text, doc = run_doctor("--function", EXCHANGE_NAME)

    assert code == 0, text
    assert {check: f["status"] for check, f in storage(doc).items()} == {
        "table": "ok",
        "table index": "ok",
        "table PITR": "ok",
        "table TTL": "ok",
        "key": "ok",
        "key rotation": "ok",
    }
    assert storage(doc)["table TTL"]["detail"] == f"ENABLED on expires_at for {ITEMS_TABLE}"
    assert env["ITEMS_KEY_ID"] in storage(doc)["key"]["detail"]
    handler = finding(doc, "handler")
    assert (
        handler["status"] == "ok"
        and "the Items exchange function (POST /items)" in (handler["detail"])
    )
    logs = finding(doc, EXCHANGE_GROUP)
    assert (logs["status"], logs["detail"]) == (
        "ok",
        "no item_exchange_failed lines in the last 24h",
    )
    assert doc["failures"] == [] and doc["orphans"] == []


def _no_table() -> dict[str, str]:
    return stored_env()


def _table(**spec: Any) -> Any:
    def make() -> dict[str, str]:
        create_items_table(**spec)
        return stored_env()

    return make


def _key(change: str = "", **spec: Any) -> Any:
    def make() -> dict[str, str]:
        create_items_table()
        arn = create_items_key(**spec)
        kms, key_id = client("kms"), arn.rsplit("/", 1)[1]  # moto wants the id, not the ARN
        if change == "disable":
            kms.disable_key(KeyId=key_id)
        elif change == "delete":
            kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        elif change == "missing":
            arn = arn.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
        return stored_env(key_id=arn)

    return make


@pytest.mark.parametrize(
    ("make", "check", "said", "fix_says"),
    [
        (_no_table, "table", f"dynamodb DescribeTable: {NO_TABLE}", TABLE_FIX),
        (
            _table(pitr=False),
            "table PITR",
            f"point-in-time recovery is DISABLED for {ITEMS_TABLE}",
            "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true",
        ),
        (
            _table(ttl=None),
            "table TTL",
            f"TTL is DISABLED for {ITEMS_TABLE}, not on expires_at",
            "--time-to-live-specification Enabled=true,AttributeName=expires_at",
        ),
        (_table(ttl="ttl"), "table TTL", "TTL is on 'ttl'", "disable another one first"),
        (
            _key("missing"),
            "key",
            "kms DescribeKey: NotFoundException: the key does not exist in this region (check "
            "ITEMS_KEY_ID)",
            KEY_FIX,
        ),
        (
            _key("disable"),
            "key",
            "is Disabled: the function's calls fail (kms Encrypt: DisabledException: the key is "
            "disabled (check ITEMS_KEY_ID))",
            "aws kms enable-key --key-id arn:aws:kms:",
        ),
        (
            _key("delete"),
            "key",
            "is PendingDeletion: the function's calls fail (kms Encrypt: KMSInvalidStateException",
            "aws kms cancel-key-deletion --key-id arn:aws:kms:",
        ),
        (
            _key(rotation=False, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY"),
            "key",
            "is a RSA_2048 SIGN_VERIFY key, not a symmetric ENCRYPT_DECRYPT one: the function's "
            "calls fail (kms Encrypt: InvalidKeyUsageException",
            KEY_FIX,
        ),
        (_key(rotation=False), "key rotation", "off for arn:aws:kms:", "enable-key-rotation"),
    ],
    ids=[
        "no-table",
        "pitr-off",
        "ttl-off",
        "ttl-elsewhere",
        "no-key",
        "key-disabled",
        "key-pending-deletion",
        "key-asymmetric",
        "rotation-off",
    ],
)
def test_each_fault_of_the_table_or_key_is_a_problem_with_its_fix(
    moto: str, make: Any, check: str, said: str, fix_says: str
) -> None:
    put_secret(good_secret())
    create_function(EXCHANGE_NAME, make(), EXCHANGE_HANDLER)

    code, text, doc = run_doctor("--function", EXCHANGE_NAME)

    assert code == 1, text
    found = storage(doc)[check]
    assert found["status"] == "problem"
    assert said in found["detail"]
    assert fix_says in found["fix"]
    assert [c for c, f in storage(doc).items() if f["status"] != "ok"] == [check]
    assert f"problem  {check}: {found['detail']}" in text


class _Scripted:
    """A JsonCall that answers each operation as scripted (an exception is raised): for what
    moto does not play, a caller without permission or a service that cannot be reached."""

    meta = ClientMeta("us-east-1", "http://127.0.0.1:9")

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def call(self, operation: str, params: Any) -> dict[str, Any]:
        self.calls.append(operation)
        answer = self.answers[operation]
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    def close(self) -> None:
        self.calls.append("close")


def _refused(code: str) -> AwsServiceError:
    return AwsServiceError(
        {"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 400}}
    )


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (_refused("AccessDeniedException"), "AccessDeniedException"),
        (_refused("UnrecognizedClientException"), "UnrecognizedClientException"),
        (_refused("ThrottlingException"), "answered ThrottlingException"),
        (EndpointConnectionError("EndpointConnectionError"), "unreachable: EndpointConnection"),
    ],
    ids=["denied", "credentials", "throttled", "unreachable"],
)
def test_what_the_caller_cannot_read_is_a_skip_not_a_problem(answer: Any, said: str) -> None:
    """The caller is not the function's role: its refusal says nothing about the function."""
    table = _Scripted({"DescribeTable": answer})
    key = _Scripted({"DescribeKey": answer})

    [table_found] = check_table("items", lambda _spec: table)
    [key_found] = check_key("alias/items", "Decrypt", lambda _spec: key)

    for found, grant in ((table_found, "dynamodb:DescribeTable"), (key_found, "kms:DescribeKey")):
        assert found.status == "skip"
        assert said in found.detail and "not the function's role" in found.detail
        assert found.fix and grant in found.fix


def test_a_rotation_status_the_caller_may_not_read_leaves_the_key_checked() -> None:
    arn = "arn:aws:kms:us-east-1:123456789012:key/0b4c7e1a-2f3d-4e5f-8a9b-1c2d3e4f5a6b"
    meta = {
        "Arn": arn,
        "KeyState": "Enabled",
        "Enabled": True,
        "KeySpec": "SYMMETRIC_DEFAULT",
        "KeyUsage": "ENCRYPT_DECRYPT",
    }
    kms = _Scripted(
        {
            "DescribeKey": {"KeyMetadata": meta},
            "GetKeyRotationStatus": _refused("AccessDeniedException"),
        }
    )

    found = check_key("alias/items", "Decrypt", lambda _spec: kms)

    assert [(f.check, f.status) for f in found] == [("key", "ok"), ("key rotation", "skip")]
    assert f"alias/items ({arn})" in found[0].detail
    assert kms.calls == ["DescribeKey", "GetKeyRotationStatus", "close"]


def test_exchange_failures_are_counted_by_cause_and_orphans_named(moto: str) -> None:
    put_secret(good_secret())
    create_items_table()
    create_function(EXCHANGE_NAME, stored_env(), EXCHANGE_HANDLER)
    failed = "item_exchange_failed"
    no_table = [
        items_line(failed, "MISCONFIGURED", 500, f"dynamodb PutItem: {NO_TABLE}") for _ in "ab"
    ]
    denied = "kms Encrypt: AccessDeniedException: the key may not be used by the function's role"
    left = items_line(
        failed,
        "MISCONFIGURED",
        500,
        f"{denied} (IAM or key policy)",
        item_id="item-left-1",
        orphan="left",
        orphan_cause="could not connect to Plaid",
        plaid_request_id="plaid-req-left",
    )
    removed = items_line(
        failed,
        "STORAGE_UNAVAILABLE",
        503,
        "kms Encrypt answered ThrottlingException",
        item_id="item-removed-1",
        orphan="removed",
        plaid_request_id="plaid-req-removed",
    )
    public_token = items_line(
        failed,
        "INVALID_PUBLIC_TOKEN",
        400,
        "Plaid refused the public_token: most likely older than 30 minutes (exchange it right "
        "after onSuccess) or exchanged already",
        plaid_status=400,
        plaid_error_type="INVALID_INPUT",
        plaid_error_code="INVALID_PUBLIC_TOKEN",
        plaid_request_id="plaid-req-pt",
    )
    put_lines(
        [
            (50, no_table[0]),
            (40, no_table[1]),
            (30, left),
            (20, removed),
            (10, public_token),
            (5, {"message": "item_exchanged", "item_id": "item-ok"}),
            (4, failed_line("MISCONFIGURED", 500, "not this function's line")),
        ],
        EXCHANGE_GROUP,
    )

    code, text, doc = run_doctor("--function", EXCHANGE_NAME)

    assert code == 1
    rows = {(r["error_code"], r["cause"]): r for r in doc["failures"]}
    assert {key: row["count"] for key, row in rows.items()} == {
        ("MISCONFIGURED", no_table[0]["cause"]): 2,
        ("MISCONFIGURED", left["cause"]): 1,
        ("STORAGE_UNAVAILABLE", removed["cause"]): 1,
        ("INVALID_PUBLIC_TOKEN", public_token["cause"]): 1,
    }
    assert {r["log_message"] for r in doc["failures"]} == {failed}
    # Each fix from the error table: the setting the cause names, the code's, Plaid's rule.
    assert rows["MISCONFIGURED", no_table[0]["cause"]]["fix"] == TABLE_FIX
    assert rows["MISCONFIGURED", left["cause"]]["fix"] == PROBLEM_TYPES["MISCONFIGURED"].fix
    assert (
        rows["STORAGE_UNAVAILABLE", removed["cause"]]["fix"]
        == PROBLEM_TYPES["STORAGE_UNAVAILABLE"].fix
    )
    assert (
        rows["INVALID_PUBLIC_TOKEN", public_token["cause"]]["fix"]
        == BY_ERROR_CODE["INVALID_PUBLIC_TOKEN"].fix
    )
    verdicts = {
        (f["check"], f["detail"].split("): ", 1)[-1]): f["status"]
        for f in doc["findings"]
        if f["group"] == "recent failures" and f["check"].startswith(failed)
    }
    assert verdicts == {
        (f"{failed} MISCONFIGURED", no_table[0]["cause"]): "problem",
        (f"{failed} MISCONFIGURED", left["cause"]): "problem",
        (f"{failed} STORAGE_UNAVAILABLE", removed["cause"]): "warn",
        (f"{failed} INVALID_PUBLIC_TOKEN/INVALID_PUBLIC_TOKEN", public_token["cause"]): "warn",
    }

    orphan_left = finding(doc, "orphan left")
    assert orphan_left["status"] == "problem"
    assert orphan_left["detail"].startswith("item_id item-left-1: exchanged at Plaid")
    for said in (left["correlation_id"], "plaid-req-left", left["cause"], "could not connect"):
        assert said in orphan_left["detail"]
    assert "remove item_id item-left-1 through Plaid" in orphan_left["fix"]
    assert orphan_left["fix"].endswith(CONNECT_FAILED.fix)  # why the removal failed
    orphan_removed = finding(doc, "orphan removed")
    assert orphan_removed["status"] == "warn"
    assert "1 in the last 24h" in orphan_removed["detail"]
    assert "item-removed-1" in orphan_removed["detail"]
    assert [(o["orphan"], o["item_id"]) for o in doc["orphans"]] == [
        ("removed", "item-removed-1"),
        ("left", "item-left-1"),
    ]
    assert "problem  orphan left: item_id item-left-1" in text


def test_the_items_functions_list_and_remove_failures_are_read(moto: str) -> None:
    put_secret(good_secret())
    create_items_table()
    create_function(NAME, stored_env(), ITEMS_HANDLER)
    not_found = items_line(
        "item_remove_failed", "ITEM_NOT_FOUND", 404, "no such Item for this user"
    )
    token = items_line(
        "item_remove_failed",
        "UPSTREAM_REJECTED",
        502,
        BY_ERROR_CODE["INVALID_ACCESS_TOKEN"].cause,
        item_id="item-1",
        plaid_status=400,
        plaid_error_type="INVALID_INPUT",
        plaid_error_code="INVALID_ACCESS_TOKEN",
        plaid_request_id="plaid-req-1",
    )
    throttled = items_line(
        "items_list_failed",
        "STORAGE_UNAVAILABLE",
        503,
        "dynamodb Query answered ThrottlingException",
    )
    exchange = items_line("item_exchange_failed", "MISCONFIGURED", 500, "not this function's")
    put_lines([(30, not_found), (20, token), (10, throttled), (5, exchange)])

    code, _text, doc = run_doctor("--function", NAME)

    assert code == 1
    statuses_of = {
        f["check"]: f["status"] for f in doc["findings"] if f["group"] == "recent failures"
    }
    assert statuses_of == {
        "item_remove_failed ITEM_NOT_FOUND": "warn",
        "item_remove_failed UPSTREAM_REJECTED/INVALID_ACCESS_TOKEN": "problem",
        "items_list_failed STORAGE_UNAVAILABLE": "warn",
    }
    [rejected] = [r for r in doc["failures"] if r["plaid_error_code"] == "INVALID_ACCESS_TOKEN"]
    assert rejected["fix"] == BY_ERROR_CODE["INVALID_ACCESS_TOKEN"].fix
    assert rejected["cause"] == token["cause"]
    assert rejected["plaid_request_id"] == "plaid-req-1"
    assert "orphans" not in doc  # only the exchange makes Items


def test_a_stack_reports_each_of_its_functions_by_logical_id(moto: str) -> None:
    """moto's CloudFormation creates the three functions; shared things are read once."""
    put_secret(good_secret())
    create_items_table()
    env = stored_env()
    handlers = {
        "LinkTokenFunction": ("app.lambda_handler", env),
        "ItemExchangeFunction": (EXCHANGE_HANDLER, env),
        # A broken one: its ITEMS_TABLE was lost.
        "ItemsFunction": (ITEMS_HANDLER, {k: v for k, v in env.items() if k != "ITEMS_TABLE"}),
    }
    create_stack("items-stack", handlers)
    put_lines(
        [
            (
                5,
                items_line(
                    "item_exchange_failed", "MISCONFIGURED", 500, f"dynamodb Query: {NO_TABLE}"
                ),
            )
        ],
        "/aws/lambda/items-stack-ItemExchangeFunction",
    )

    code, text, doc = run_doctor("--stack", "items-stack")

    assert code == 1
    assert doc["title"].startswith("stack items-stack: 3 functions (")
    labels = set(handlers)
    assert {f.get("function") for f in doc["findings"]} == labels
    assert {f["function"] for f in doc["functions"]} == labels
    for label, (handler, _variables) in handlers.items():
        [named] = [f for f in doc["findings"] if f["check"] == "handler" and f["function"] == label]
        assert named["detail"].startswith(f"items-stack-{label}: Handler {handler}, the ")
        assert f"\n{label}: configuration\n" in text
    # The one problem of the configuration is the Items function's.
    problems = {(f["function"], f["check"]) for f in doc["findings"] if f["status"] == "problem"}
    assert ("ItemsFunction", "ITEMS_TABLE") in problems
    assert ("ItemExchangeFunction", "item_exchange_failed MISCONFIGURED") in problems
    assert not {label for label, check in problems if check.startswith("ITEMS_")} - {
        "ItemsFunction"
    }
    # Shared: one secret, one table, one key, each read once, for the first function.
    for check in ("readable", "table", "key"):
        read = [f for f in doc["findings"] if f["check"] == check]
        assert len(read) == 3 - (check == "table")  # ItemsFunction names no table
        assert len([f for f in read if f["status"] != "skip"]) == 1
        again = [f for f in read if f["status"] == "skip"]
        assert all("checked above" in f["detail"] for f in again)
    [row] = doc["failures"]
    assert row["function"] == "ItemExchangeFunction" and row["fix"] == TABLE_FIX


def test_the_real_items_handlers_lines_are_summarised_with_their_orphans(output: Any) -> None:
    """The lines doctor reads are the ones the Items handlers write: run them into an orphan
    removed, an orphan left, a remove of an unknown Item and a throttled list, hand their
    lines to doctor as CloudWatch would, and read the summary."""
    from infra.doubles.aws_faults import AwsError, AwsFaults, AwsPass
    from infra.doubles.plaid_standin import Scripted
    from tests.helpers_items import items_world

    encrypt, put, query = (
        "TrentService.Encrypt",
        "DynamoDB_20120810.PutItem",
        "DynamoDB_20120810.Query",
    )
    with items_world(with_faults=True) as world:
        faults = world.faults
        assert isinstance(faults, AwsFaults)
        faults.script(encrypt, AwsError("ThrottlingException"), AwsError("ThrottlingException"))
        world.exchange("user-removed", world.public_token("ins_20"))
        faults.script(put, AwsPass(), AwsError("AccessDeniedException"))
        world.plaid.script(
            Scripted(200, {"access_token": "access-sandbox-doctor-0001", "item_id": "itemleft1"}),
            *[Scripted(500, {"error_code": "INTERNAL_SERVER_ERROR", "error_type": "API_ERROR"})]
            * 3,
        )
        world.exchange("user-left", "public-sandbox-00000000-0000-0000-0000-000000000002")
        world.remove("user-removed", "no-such-item")
        faults.script(query, AwsError("ThrottlingException"), AwsError("ThrottlingException"))
        world.list("user-list")
    exchanged = output.logs("item_exchange_failed")
    written = exchanged + output.logs("item_remove_failed") + output.logs("items_list_failed")
    assert len(written) == 4

    logs = client_without_endpoint("logs")
    with Stubber(logs) as stub:
        for message in ("item_exchange_failed", "item_remove_failed", "items_list_failed"):
            stub.add_response(
                "filter_log_events",
                {
                    "events": [
                        {"timestamp": NOW_MS + i, "message": json.dumps(line)}
                        for i, line in enumerate(written)
                        if line["message"] == message
                    ]
                },
            )
        lines = [
            event
            for message in ("item_exchange_failed", "item_remove_failed", "items_list_failed")
            for event in failure_events(EXCHANGE_GROUP, 0, logs, message)
        ]
    rows = summarise(lines)
    found = orphans(lines)

    # Named exactly as the lines name them.
    assert sorted(r["cause"] for r in rows) == sorted(str(line["cause"]) for line in written)
    by_message = {(r["log_message"], r["error_code"]) for r in rows}
    assert by_message == {
        ("item_exchange_failed", "STORAGE_UNAVAILABLE"),
        ("item_exchange_failed", "MISCONFIGURED"),
        ("item_remove_failed", "ITEM_NOT_FOUND"),
        ("items_list_failed", "STORAGE_UNAVAILABLE"),
    }
    assert [(o["orphan"], o["item_id"]) for o in found] == [
        ("left", "itemleft1"),
        ("removed", exchanged[0]["item_id"]),
    ]
    named = orphan_findings(found, "24h")
    assert [(f.check, f.status) for f in named] == [
        ("orphan left", "problem"),
        ("orphan removed", "warn"),
    ]
    assert str(exchanged[1]["orphan_cause"]) in named[0].detail
    assert "itemleft1" in named[0].detail and named[0].fix and "itemleft1" in named[0].fix
    shown = render.text(Report(findings=named + failure_findings(rows, EXCHANGE_GROUP, "24h")), "t")
    assert "access-sandbox-doctor-0001" not in shown + json.dumps(rows) + json.dumps(found)


def test_the_key_and_table_checks_name_a_fault_as_the_functions_line_does(output: Any) -> None:
    """A disabled key (moto encrypts with a disabled key anyway: the fault double answers the
    exchange as KMS does) and a deleted table: doctor's words are the exchange's log line's."""
    from infra.doubles.aws_faults import AwsError, AwsFaults
    from linktoken.aws_clients import json_client
    from tests.helpers_items import items_world

    with items_world(with_faults=True) as world:
        assert isinstance(world.faults, AwsFaults)
        # A key as the stack makes it (moto leaves KeyUsage out of the world's), disabled.
        kms = world.client("kms")
        disabled_key = kms.create_key(KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
        kms.disable_key(KeyId=disabled_key["KeyId"])
        world.faults.script("TrentService.Encrypt", AwsError("DisabledException"))
        world.exchange("user-disabled", world.public_token("ins_21"))
        world.client("dynamodb").delete_table(TableName=world.table)
        world.exchange("user-no-table", world.public_token("ins_22"))

        def factory(spec: Any) -> Any:
            return json_client(spec, {**world.env, "AWS_ENDPOINT_URL": world.endpoint})

        [key] = check_key(disabled_key["Arn"], "Encrypt", factory)
        [table] = check_table(world.table, factory)
    disabled, missing = output.logs("item_exchange_failed")

    assert key.status == "problem" and f"({disabled['cause']})" in key.detail
    # The same cause but for the operation: DescribeTable here, the exchange's first call there.
    assert table.status == "problem"
    assert table.detail.split(": ", 1)[1] == str(missing["cause"]).split(": ", 1)[1]
    assert table.detail == f"dynamodb DescribeTable: {NO_TABLE}"
