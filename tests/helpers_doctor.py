"""Shared pieces of the doctor tests: a moto server (Secrets Manager, Lambda, CloudWatch Logs,
CloudFormation) on a loopback port, and running `make doctor`'s entry point in-process."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

import botocore.session
import pytest

from infra.doctor.__main__ import main
from tests.conftest import CLIENT_ID, FORBIDDEN, HMAC_KEY, SECRET, SECRET_ID

# Every variable doctor or the clients it builds could read from the machine's environment.
_CLEARED = (
    "PLAID_ENV", "PLAID_PRODUCTS", "PLAID_COUNTRY_CODES", "PLAID_LANGUAGE", "PLAID_REDIRECT_URI",
    "PLAID_ANDROID_PACKAGE_NAME", "PLAID_WEBHOOK_URL", "PLAID_BASE_URL",
    "PLAID_SECRET_TTL_SECONDS", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_PROFILE",
)  # fmt: skip


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server for the session, on an ephemeral loopback port; stopped at the end."""
    from infra.doubles.moto_server import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def moto(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean moto, every AWS client of the process pointed at it, a neutral environment."""
    # In process: the server runs in this one, and it does not serve /moto-api/ (local_guard).
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("PLAID_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("PLAID_CLIENT_NAME", "Test App")
    yield moto_url


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()  # one per run: loading service models is slow


def client(service: str) -> Any:
    return _session().create_client(service)


def put_secret(secret_string: str | None = None, name: str = SECRET_ID) -> None:
    """Create the secret; None creates it without a value (as the stack does)."""
    kwargs: dict[str, Any] = {"Name": name}
    if secret_string is not None:
        kwargs["SecretString"] = secret_string
    client("secretsmanager").create_secret(**kwargs)


def good_secret(**fields: Any) -> str:
    doc: dict[str, Any] = {"client_id": CLIENT_ID, "secret": SECRET, "user_id_hmac_key": HMAC_KEY}
    doc.update(fields)
    return json.dumps(doc)


def create_function(name: str, environment: Mapping[str, str]) -> None:
    """A Lambda function as moto keeps it (no Docker needed to create or read one)."""
    iam = client("iam")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="app.lambda_handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": dict(environment)},
    )


def run_doctor(*args: str) -> tuple[int, str, dict[str, Any]]:
    """Doctor's exit code and output, twice: as text and as `--json` (parsed). Neither may
    contain the Plaid secret or the HMAC key, whatever the test is about."""
    text_out, json_out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(text_out):
        code = main(list(args))
    with contextlib.redirect_stdout(json_out):
        json_code = main([*args, "--json"])
    for forbidden in FORBIDDEN:
        assert forbidden not in text_out.getvalue()
        assert forbidden not in json_out.getvalue()
    assert json_code == code
    return code, text_out.getvalue(), json.loads(json_out.getvalue())


def finding(doc: Mapping[str, Any], check: str) -> dict[str, Any]:
    """The one finding named `check` (the first when there are several)."""
    found = [f for f in doc["findings"] if f["check"] == check]
    assert found, f"no finding {check!r} in {[f['check'] for f in doc['findings']]}"
    return dict(found[0])


def statuses(doc: Mapping[str, Any]) -> dict[str, str]:
    return {f["check"]: f["status"] for f in doc["findings"]}
