"""Shared fixtures: a moto Secrets Manager, a loopback Plaid stand-in, API Gateway events,
and a guard that fails any test that lets a secret out by any channel (tests/secret_guard.py)."""

from __future__ import annotations

import base64
import copy
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.doubles.lambda_runtime import LambdaContext

ROOT = Path(__file__).resolve().parents[1]

# Distinctive values, so "never in the output" is a meaningful search.
CLIENT_ID = "client-id-5e1f"
SECRET = "plaid-secret-7c1a9d0b3e2f-never-log"
HMAC_KEY = "hmac-key-4b8e2d6f0a1c-never-log"
SECRET_ID = "plaid-link-token/test"
FORBIDDEN = (SECRET, HMAC_KEY)

# Safe process-wide defaults for everything that imports boto or Powertools.
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "plaid-link-token",
        "POWERTOOLS_METRICS_NAMESPACE": "PlaidLinkToken",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "PLAID_SECRET_ID": SECRET_ID,
        "PLAID_CLIENT_NAME": "Test App",
    }
)
os.environ.pop("AWS_ENDPOINT_URL_SECRETS_MANAGER", None)
os.environ.pop("PLAID_BASE_URL", None)


class Output:
    """Everything the test printed (logs, EMF), read through capfd and kept for the guard."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self._capfd = capfd
        self.text = ""

    def read(self) -> str:
        out, err = self._capfd.readouterr()
        self.text += out + err
        return self.text

    def json_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.read().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
        return lines

    def logs(self, message: str | None = None) -> list[dict[str, Any]]:
        return [
            line
            for line in self.json_lines()
            if "_aws" not in line and (message is None or line.get("message") == message)
        ]

    def metrics(self) -> dict[str, list[dict[str, Any]]]:
        """EMF documents by metric name."""
        found: dict[str, list[dict[str, Any]]] = {}
        for line in self.json_lines():
            for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
                for metric in directive["Metrics"]:
                    found.setdefault(metric["Name"], []).append(line)
        return found


class _CurrentStdout:
    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture(autouse=True)
def output(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Output]:
    """Every test: no secret in its output, log records, responses, traces or exceptions."""
    from linktoken.observability import logger
    from tests.secret_guard import guarded

    # Powertools binds its handler to the sys.stdout of import time; follow pytest's instead.
    logger.registered_handler.setStream(_CurrentStdout())  # type: ignore[attr-defined]
    captured = Output(capfd)
    with guarded(FORBIDDEN, monkeypatch) as guard:
        yield captured
    guard.observe("output (log lines, EMF metrics)", captured.read())
    guard.check()


PLAID_SCHEMAS = ROOT.parent / "shared" / "plaid"


def plaid_schema(name: str) -> Path:
    """One of Plaid's official JSON schemas for /link/token/create, from `shared/plaid/` beside
    this checkout (reference material that is not part of the repository). Without it the test
    skips locally; under CI (CI=true), where it is always laid out, its absence is a failure."""
    path = PLAID_SCHEMAS / name
    if not path.is_file():
        reason = (
            f"Plaid's schema {name} is not at {path}: Plaid's official schemas for "
            "/link/token/create are kept in shared/plaid/ beside this checkout"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture
def aws() -> Iterator[Any]:
    """moto's in-process AWS with the Plaid secret in place; yields a Secrets Manager client."""
    from moto import mock_aws

    with mock_aws():
        import botocore.session

        client: Any = botocore.session.get_session().create_client("secretsmanager")  # untyped
        client.create_secret(Name=SECRET_ID, SecretString=secret_json())
        yield client


def secret_json(**fields: Any) -> str:
    doc: dict[str, Any] = {"client_id": CLIENT_ID, "secret": SECRET}
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not None})


@pytest.fixture
def plaid() -> Iterator[Any]:
    """The loopback Plaid stand-in, accepting the test credentials."""
    from infra.doubles.plaid_standin import PlaidStandIn

    with PlaidStandIn(client_id=CLIENT_ID, secret=SECRET) as standin:
        yield standin


def load_event(name: str = "ok.json") -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "infra/events" / name).read_text())
    return event


def make_event(
    body: Any = None,
    *,
    sub: str | None = "user-0001",
    content_type: str | None = "application/json",
    base64_body: bool = False,
    raw_body: str | None = None,
) -> dict[str, Any]:
    """An HTTP API v2 event for POST /link-token."""
    event = copy.deepcopy(_BASE_EVENT)
    event["requestContext"]["requestId"] = "req-" + uuid.uuid4().hex[:12]
    if content_type is not None:
        event["headers"]["content-type"] = content_type
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    if sub is None:
        del claims["sub"]
    else:
        claims["sub"] = sub
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    if text is not None and base64_body:
        event["body"] = base64.b64encode(text.encode()).decode()
        event["isBase64Encoded"] = True
    else:
        event["body"] = text
    return event


_BASE_EVENT: dict[str, Any] = {
    "version": "2.0",
    "routeKey": "POST /link-token",
    "rawPath": "/link-token",
    "rawQueryString": "",
    "headers": {"host": "api.example.com"},
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "api",
        "authorizer": {"jwt": {"claims": {"sub": "user-0001"}, "scopes": None}},
        "domainName": "api.example.com",
        "http": {"method": "POST", "path": "/link-token", "protocol": "HTTP/1.1"},
        "requestId": "req",
        "routeKey": "POST /link-token",
        "stage": "$default",
    },
    "isBase64Encoded": False,
}


@pytest.fixture
def service_env(plaid: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for a service pointed at the stand-in."""
    env = {
        "PLAID_SECRET_ID": SECRET_ID,
        "PLAID_CLIENT_NAME": "Test App",
        "PLAID_BASE_URL": plaid.base_url,
        "PLAID_PRODUCTS": "transactions,auth",
        "PLAID_ANDROID_PACKAGE_NAME": "com.example.app",
        "PLAID_REDIRECT_URI": "https://app.example.com/oauth",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def invoke(
    aws: Any, service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., dict[str, Any]]:
    """Call the real `app.lambda_handler` with a container built from `service_env`."""
    import app
    from linktoken.container import build_container
    from linktoken.plaid_client import PlaidClient, RetryPolicy

    container = build_container(service_env)
    assert container.service is not None, container.config_error
    # No real sleeping between retries in tests; the policy itself is unchanged.
    container.service.plaid = PlaidClient(
        container.service.config.base_url, RetryPolicy(), sleep=lambda _s: None
    )
    monkeypatch.setattr(app, "CONTAINER", container)

    def call(event: dict[str, Any], context: LambdaContext | None = None) -> dict[str, Any]:
        response: dict[str, Any] = app.lambda_handler(event, context or LambdaContext())
        return response

    call.container = container  # type: ignore[attr-defined]
    return call


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(response["body"])
    return doc
