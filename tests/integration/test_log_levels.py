"""Every log level the template offers, run the way Lambda runs it.

For each `LogLevel` value in template.yaml: Lambda's `ApplicationLogLevel` from the template's
mapping, the root logger configured by the runtime interface client's own code (awslambdaric
puts its JSON handler on the root logger at that level, so every library logger prints at it),
the handler cold-started with `AWS_LAMBDA_LOG_LEVEL` and `POWERTOOLS_LOG_LEVEL` as Lambda sets
them. Its real output then goes through Lambda's documented filter: a JSON line is kept when its
`level` is at least the application log level, and a line whose `level` is missing or invalid,
or whose `timestamp` is not RFC 3339, counts as INFO.

What must hold at every level: the metrics (EMF) and the warning and error lines reach
CloudWatch, and the Plaid secret appears nowhere (conftest's guard checks all captured output).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from infra.doubles.lambda_runtime import LambdaContext
from infra.doubles.plaid_standin import PlaidStandIn, plaid_error
from infra.gateway.cfn_template import load_template
from tests.conftest import HMAC_KEY, ROOT, SECRET, SECRET_ID, make_event, secret_json

TEMPLATE = load_template(ROOT / "template.yaml")
PARAMETERS: dict[str, Any] = load_template(ROOT / "template.yaml")["Parameters"]
TEMPLATE_LEVELS: list[str] = PARAMETERS["LogLevel"]["AllowedValues"]
LAMBDA_LEVEL: dict[str, str] = {
    level: row["Level"] for level, row in TEMPLATE["Mappings"]["LambdaLogLevel"].items()
}

# Lambda's application log levels, least to most severe.
LAMBDA_ORDER = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def lambda_level_of(line: dict[str, Any]) -> str:
    """The level Lambda's filter gives a JSON log line (its documented rule)."""
    level = str(line.get("level", "")).upper()
    timestamp = line.get("timestamp")
    if level not in LAMBDA_ORDER or not isinstance(timestamp, str):
        return "INFO"
    return level if RFC3339.match(timestamp) else "INFO"


def kept_by_lambda(output: str, application_level: str) -> list[dict[str, Any]]:
    """The JSON lines Lambda would send to CloudWatch Logs at this application log level."""
    floor = LAMBDA_ORDER.index(application_level)
    kept = []
    for text in output.splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue  # not JSON: Lambda wraps it as an INFO line of its own
        if isinstance(line, dict) and LAMBDA_ORDER.index(lambda_level_of(line)) >= floor:
            kept.append(line)
    return kept


@contextmanager
def lambda_cold_start(env: dict[str, str | None], application_level: str) -> Iterator[Any]:
    """`app` imported as Lambda's Python runtime imports it: the environment set, the root
    logger already configured by the runtime interface client's own code (JSON handler at the
    application log level), then the handler module and the service's logger imported fresh.
    Everything is put back afterwards."""
    import importlib

    from awslambdaric.bootstrap import StandardLogSink, _setup_logging
    from awslambdaric.lambda_runtime_log_utils import LogFormat

    import app
    from linktoken import observability

    root = logging.getLogger()
    loggers = logging.Logger.manager.loggerDict
    saved = root.level, list(root.handlers), loggers[observability.SERVICE]
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                if value is None:
                    patch.delenv(name, raising=False)
                else:
                    patch.setenv(name, value)
            _setup_logging(LogFormat.JSON, application_level, StandardLogSink())
            del loggers[observability.SERVICE]  # a new container: never configured
            importlib.reload(observability)
            yield importlib.reload(app)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        loggers[observability.SERVICE] = saved[2]
        importlib.reload(observability)
        importlib.reload(app)


def emf_metric_names(lines: list[dict[str, Any]]) -> set[str]:
    return {
        metric["Name"]
        for line in lines
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", [])
        for metric in directive["Metrics"]
    }


def messages(lines: list[dict[str, Any]]) -> list[str]:
    return [line["message"] for line in lines if "_aws" not in line and "message" in line]


@pytest.mark.parametrize("log_level", TEMPLATE_LEVELS)
def test_metrics_and_failures_survive_lambdas_filter_at_every_template_level(
    log_level: str,
    aws: Any,
    plaid: PlaidStandIn,
    service_env: dict[str, str],
    capfd: pytest.CaptureFixture[str],
) -> None:
    application_level = LAMBDA_LEVEL[log_level]
    env: dict[str, str | None] = {
        **service_env,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": None,  # moto, in process
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": application_level,
        "POWERTOOLS_LOG_LEVEL": log_level,
    }
    plaid.script(plaid_error(400, "INVALID_REQUEST", "INVALID_FIELD", "redirect_uri"))
    capfd.readouterr()
    with lambda_cold_start(env, application_level) as app:
        statuses = [
            app.lambda_handler(make_event({"platform": "web"}), LambdaContext())["statusCode"],
            app.lambda_handler(make_event({}), LambdaContext())["statusCode"],
            app.lambda_handler(make_event(raw_body="{"), LambdaContext())["statusCode"],
        ]
        out, err = capfd.readouterr()

    assert statuses == [502, 200, 400]
    kept = kept_by_lambda(out + err, application_level)
    assert {"LinkTokenFailed", "LinkTokenCreated", "PlaidLatency", "SecretsFetched"} <= (
        emf_metric_names(kept)
    ), f"metrics dropped at LogLevel={log_level}"
    # Every failure line the service's level allows reaches CloudWatch: 5xx lines are ERROR and
    # so kept at every level, a client's 4xx is a WARNING; a success is INFO.
    failed = [line["status"] for line in kept if line.get("message") == "link_token_failed"]
    assert failed == ([502] if log_level == "ERROR" else [502, 400]), "a failure line was lost"
    assert ("link_token_created" in messages(kept)) == (log_level in {"DEBUG", "INFO"})


def test_the_service_writes_rfc3339_timestamps_and_valid_levels(
    invoke: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    invoke(make_event(raw_body="{"))
    invoke(make_event({}))
    lines = [json.loads(text) for text in capfd.readouterr().out.splitlines() if text]

    logs = [line for line in lines if "_aws" not in line]
    assert logs
    for line in logs:
        assert RFC3339.match(line["timestamp"]), line["timestamp"]
        assert lambda_level_of(line) == line["level"].upper().replace("WARNING", "INFO")


# Canaries for the AWS credentials the function runs with (Lambda's role session).
SESSION_TOKEN = "session-token-canary-9f3b1e7a5c2d"
SECRET_ACCESS_KEY = "secret-access-key-canary-4d6a8c0e2b"


class Recorded(logging.Handler):
    """Every record that reaches the root logger's handlers, formatted with its exception."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def recorded_at_root(level: int = logging.DEBUG) -> Iterator[Recorded]:
    """A `Recorded` handler on the root logger, at `level` for the block; both put back after."""
    recorded = Recorded()
    root = logging.getLogger()
    saved = root.level
    root.addHandler(recorded)
    root.setLevel(level)
    try:
        yield recorded
    finally:
        root.removeHandler(recorded)
        root.setLevel(saved)


# What DEBUG shows of the Secrets Manager call: nothing with Lambda's environment credentials
# (the service's own client logs nothing), botocore's request and credential lines when a
# profile makes the service fall back to botocore.
AWS_CALL_SHOWN = {
    "environment": [],
    "profile": [
        "Making request for OperationModel(name=GetSecretValue)",
        "Looking for credentials via: shared-credentials-file",
    ],
}


@pytest.mark.parametrize("credentials", list(AWS_CALL_SHOWN))
def test_debug_prints_no_signed_request_credential_or_secret_from_any_library(
    aws: Any,
    plaid: PlaidStandIn,
    service_env: dict[str, str],
    capfd: pytest.CaptureFixture[str],
    tmp_path: Any,
    credentials: str,
) -> None:
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=secret_json(user_id_hmac_key=HMAC_KEY))
    env: dict[str, str | None] = {
        **service_env,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": None,  # moto, in process
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }
    if credentials == "profile":
        shared = tmp_path / "credentials"
        shared.write_text(
            "[canary]\naws_access_key_id = AKIDCANARY\n"
            f"aws_secret_access_key = {SECRET_ACCESS_KEY}\naws_session_token = {SESSION_TOKEN}\n"
        )
        env.update(
            AWS_PROFILE="canary",
            AWS_SHARED_CREDENTIALS_FILE=str(shared),
            AWS_CONFIG_FILE=str(tmp_path / "no-config"),
            AWS_ACCESS_KEY_ID=None,
            AWS_SECRET_ACCESS_KEY=None,
            AWS_SESSION_TOKEN=None,
        )
    recorded = Recorded()
    capfd.readouterr()
    with lambda_cold_start(env, "DEBUG") as app:
        logging.getLogger().addHandler(recorded)
        # As loud as it gets: every library logger that exists set to DEBUG by name, and one
        # created after the service's import.
        for name in list(logging.Logger.manager.loggerDict):
            if name.split(".")[0] in {"botocore", "urllib3", "requests"}:
                logging.getLogger(name).setLevel(logging.DEBUG)
        late = logging.getLogger("botocore.created_later")
        late.setLevel(logging.DEBUG)
        late.debug("Sending http request: Authorization: ... Signature=%s", SESSION_TOKEN)
        late.warning("a library warning")
        statuses = [
            app.lambda_handler(make_event({}, sub="ada@example.com"), LambdaContext())[
                "statusCode"
            ],
            app.lambda_handler(make_event({}), LambdaContext())["statusCode"],
        ]
        out, err = capfd.readouterr()

    assert statuses == [200, 200]
    printed = "\n".join([out, err, *recorded.lines])
    # DEBUG was on, for botocore (when it makes the AWS call) and for urllib3...
    shown = [
        *AWS_CALL_SHOWN[credentials],
        "Starting new HTTP connection",
        '"POST /link/token/create HTTP/1.1" 200',
        "botocore.created_later WARNING a library warning",
    ]
    assert [text for text in shown if text not in printed] == []
    # ...and yet no signed or canonical request, credential or secret was printed. The checks
    # name what leaked, never show it: pytest would print the text of a failed `in`.
    never = {
        "a session token header": "x-amz-security-token",
        "a signature": "signature",
        "an Authorization header": "aws4-hmac-sha256",
        "Plaid's secret header": "plaid-secret",
        "the secret's response": "secretstring",
        "the session token": SESSION_TOKEN.lower(),
        "the secret access key": SECRET_ACCESS_KEY.lower(),
        "the Plaid secret": SECRET.lower(),
        "the HMAC key": HMAC_KEY.lower(),
    }
    lowered = printed.lower()
    assert [name for name, text in never.items() if text in lowered] == []


def test_a_library_url_is_printed_without_its_query() -> None:
    # A presigned URL carries its signature in the query string.
    with recorded_at_root() as recorded:
        logging.getLogger("urllib3.connectionpool").debug(
            '%s://%s:%s "%s %s %s" %s %s',
            "https",
            "secretsmanager.us-east-1.amazonaws.com",
            443,
            "GET",
            "/object?X-Amz-Security-Token=abc&X-Amz-Signature=def",
            "HTTP/1.1",
            200,
            12,
        )

    assert recorded.lines == [
        'urllib3.connectionpool DEBUG https://secretsmanager.us-east-1.amazonaws.com:443 "GET'
        ' /object HTTP/1.1" 200 12'
    ]


def test_no_deploy_environment_ships_debug() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "infra" / "samconfig.toml").read_text())
    levels = {
        env: [
            entry
            for entry in sections["deploy"]["parameters"]["parameter_overrides"]
            if entry.startswith("LogLevel=")
        ]
        for env, sections in config.items()
        if isinstance(sections, dict) and "deploy" in sections
    }
    assert levels == {"dev": ["LogLevel=INFO"], "prod": ["LogLevel=INFO"]}


@pytest.mark.parametrize(
    "message",
    [{"a": "dict"}, ["a", "list"], b"bytes", None, 42],
    ids=["dict", "list", "bytes", "None", "int"],
)
def test_a_library_line_that_is_not_text_is_dropped_without_raising(message: object) -> None:
    with recorded_at_root() as recorded:
        logging.getLogger("botocore.endpoint").debug(message)
        logging.getLogger("urllib3.connectionpool").info(message)

    assert recorded.lines == []


def test_a_library_line_the_gate_cannot_read_is_dropped_without_raising(
    capfd: pytest.CaptureFixture[str],
) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("cannot be shown")

    # The gate itself, called as `urllib3`'s logger calls it (pytest puts capture handlers of its
    # own beside it on non-propagating loggers, which would format the record themselves).
    [gate] = [
        h for h in logging.getLogger("urllib3").handlers if type(h).__name__ == "_LibraryLogGate"
    ]
    record = logging.getLogger("urllib3.connectionpool").makeRecord(
        "urllib3.connectionpool",
        logging.DEBUG,
        __file__,
        1,
        '%s://%s:%s "%s %s %s" %s %s',
        ("https", "h", 443, "GET", Unprintable(), "1.1", 200, 0),
        None,
    )
    with recorded_at_root(logging.getLogger().level) as recorded:
        gate.handle(record)

    assert recorded.lines == []
    assert capfd.readouterr().err == ""  # no "--- Logging error ---" with the arguments
