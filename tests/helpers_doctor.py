"""Shared pieces of the doctor tests: a moto server (Secrets Manager, Lambda, CloudWatch Logs,
CloudFormation, DynamoDB, KMS, SQS) on a loopback port, and running `make doctor`'s entry point
in-process."""

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
from infra.gateway.cfn_template import load_template, table_definition
from tests.conftest import CLIENT_ID, FORBIDDEN, HMAC_KEY, SECRET, SECRET_ID

# Every variable doctor or the clients it builds could read from the machine's environment.
_CLEARED = (
    "PLAID_ENV", "PLAID_PRODUCTS", "PLAID_COUNTRY_CODES", "PLAID_LANGUAGE", "PLAID_REDIRECT_URI",
    "PLAID_ANDROID_PACKAGE_NAME", "PLAID_WEBHOOK_URL", "PLAID_BASE_URL",
    "PLAID_SECRET_TTL_SECONDS", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_KMS",
    "AWS_PROFILE", "ITEMS_TABLE", "ITEMS_KEY_ID", "WEBHOOK_QUEUE_URL", "PLAID_WEBHOOK_PATH",
    "AWS_ENDPOINT_URL_SQS",
)  # fmt: skip
# The Items table and key a complete configuration names (the stack sets both).
ITEMS_TABLE = "plaid-link-items-test"
ITEMS_KEY_ID = "arn:aws:kms:us-east-1:123456789012:key/0b4c7e1a-2f3d-4e5f-8a9b-1c2d3e4f5a6b"
WEBHOOK_PATH = "/webhooks/plaid"


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
    monkeypatch.setenv("ITEMS_TABLE", ITEMS_TABLE)
    monkeypatch.setenv("ITEMS_KEY_ID", ITEMS_KEY_ID)
    # Link tokens carry the stack's receiver, as the stack configures them.
    monkeypatch.setenv("PLAID_WEBHOOK_PATH", WEBHOOK_PATH)
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


def create_function(
    name: str, environment: Mapping[str, str], handler: str = "app.lambda_handler"
) -> None:
    """A Lambda function as moto keeps it (no Docker needed to create or read one)."""
    iam = client("iam")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        module = handler.partition(".")[0]
        archive.writestr(f"{module}.py", "def lambda_handler(event, context):\n    return None\n")
    client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler=handler,
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": dict(environment)},
    )


def create_stack(
    name: str,
    functions: Mapping[str, tuple[str, Mapping[str, Any]]],
    resources: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
) -> None:
    """A stack of Lambda functions, created by moto's CloudFormation: logical id -> (Handler,
    variables); each function is named `<stack>-<logical id>`. `resources` and `outputs` join
    the template as given."""
    role = client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    template = {
        logical_id: {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": f"{name}-{logical_id}",
                "Runtime": "python3.13",
                "Role": role,
                "Handler": handler,
                "Code": {"ZipFile": "def lambda_handler(event, context):\n    return None\n"},
                "Environment": {"Variables": dict(variables)},
            },
        }
        for logical_id, (handler, variables) in functions.items()
    }
    body = {"Resources": {**template, **(resources or {})}, "Outputs": dict(outputs or {})}
    client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(body))


def create_items_table(
    name: str = ITEMS_TABLE, pitr: bool = True, ttl: str | None = "expires_at"
) -> None:
    """The Items table as the stack makes it (keys pk/sk, on demand), PITR and TTL as asked."""
    dynamodb = client("dynamodb")
    dynamodb.create_table(TableName=name, **table_definition(load_template()))
    if pitr:
        dynamodb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    if ttl:
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl, "Enabled": True}
        )


def create_items_key(rotation: bool = True, **spec: str) -> str:
    """A KMS key as the stack makes it (symmetric, ENCRYPT_DECRYPT, rotation on unless told);
    its ARN. moto leaves KeyUsage empty unless it is given."""
    kms = client("kms")
    meta = kms.create_key(**{"KeyUsage": "ENCRYPT_DECRYPT", **spec})["KeyMetadata"]
    if rotation:
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    return str(meta["Arn"])


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
