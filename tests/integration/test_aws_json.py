"""The Secrets Manager call of the Lambda path (`secret_store.secrets_client` over
`linktoken.aws_json`): a real secret read from moto's server with plain and session
credentials, the request on the wire verified by botocore's signer, retries and errors as
botocore's standard mode has them (through the loopback double `secrets_faults`), the store's
answers and X-Ray facts unchanged, and no botocore import on a cold invocation."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import responses

from infra.doubles.secrets_faults import SecretsFaults, SmError
from linktoken.aws_json import (
    AwsJsonClient,
    AwsServiceError,
    ConnectionClosedError,
    EndpointConnectionError,
    public_endpoint,
)
from linktoken.problems import Problem
from linktoken.secret_store import (
    JsonSecretsClient,
    PlaidCredentials,
    SecretStore,
    secrets_client,
)
from linktoken.xray import Subsegment
from tests.conftest import CLIENT_ID, ROOT, SECRET, secret_json
from tests.helpers_app import closed_port

ACCESS_KEY = "ASIAEXAMPLE000000000"
SECRET_KEY = "secret-access-key-canary-1f4e"
TOKEN = "session-token-canary-8b2d"
CREDENTIALS = {
    "plain": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
    "session": {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": TOKEN,
    },
}


def lambda_env(tmp_path: Path, endpoint: str | None = None, **extra: str) -> dict[str, str]:
    """What Lambda sets (environment credentials, region), with no shared file to read."""
    env = {
        **CREDENTIALS["session"],
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "HOME": str(tmp_path),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        **extra,
    }
    if endpoint:
        env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = endpoint
    return env


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def json_client(endpoint: str, sleep: Callable[[float], None], token: str | None = TOKEN) -> Any:
    from linktoken.aws_credentials import Credentials

    creds = Credentials(ACCESS_KEY, SECRET_KEY, token)
    client = AwsJsonClient(
        "secretsmanager", "secretsmanager", "1.1", "us-east-1", endpoint, lambda: creds,
        sleep=sleep, jitter=lambda: 0.5,
    )  # fmt: skip
    return JsonSecretsClient(client)


# --- against moto's server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from infra.doubles.moto_server import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def moto_secret(moto_endpoint: str) -> str:
    import uuid

    import botocore.session

    secret_id = f"plaid-link-token/call-{uuid.uuid4().hex[:8]}"
    botocore.session.get_session().create_client(
        "secretsmanager", endpoint_url=moto_endpoint
    ).create_secret(Name=secret_id, SecretString=secret_json())  # type: ignore[attr-defined]  # generated method
    return secret_id


@pytest.mark.parametrize("credentials", list(CREDENTIALS))
def test_a_real_secret_read_from_moto(
    tmp_path: Path, moto_endpoint: str, moto_secret: str, credentials: str
) -> None:
    env = lambda_env(tmp_path, moto_endpoint)
    env.pop("AWS_SESSION_TOKEN")
    env.update(CREDENTIALS[credentials])
    client = secrets_client(env)
    assert isinstance(client, JsonSecretsClient)

    answer = client.get_secret_value(SecretId=moto_secret)

    assert answer["SecretString"] == secret_json()
    assert answer["Name"] == moto_secret
    meta = answer["ResponseMetadata"]
    assert (meta["HTTPStatusCode"], meta["RetryAttempts"]) == (200, 0)
    assert meta["RequestId"]
    store = SecretStore(moto_secret, 300, client_factory=lambda: secrets_client(env))
    assert store.get() == PlaidCredentials(CLIENT_ID, SECRET)


def test_a_missing_secret_in_moto_is_resource_not_found(tmp_path: Path, moto_endpoint: str) -> None:
    client = secrets_client(lambda_env(tmp_path, moto_endpoint))
    with pytest.raises(AwsServiceError) as raised:
        client.get_secret_value(SecretId="plaid-link-token/absent")
    assert raised.value.code == "ResourceNotFoundException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] in {400, 404}  # moto: 404


def test_the_store_records_what_xray_records_for_the_call(
    tmp_path: Path, moto_endpoint: str, moto_secret: str
) -> None:
    spans: list[Subsegment] = []

    def span(name: str) -> AbstractContextManager[Any]:
        spans.append(Subsegment(name, "aws"))
        return nullcontext(spans[-1])

    env = lambda_env(tmp_path, moto_endpoint, AWS_DEFAULT_REGION="us-east-1")
    store = SecretStore(moto_secret, 300, client_factory=lambda: secrets_client(env), span=span)
    store.get()

    (recorded,) = spans
    assert recorded.name == "secretsmanager"
    assert recorded.aws["operation"] == "GetSecretValue"
    assert recorded.aws["region"] == "us-east-1"
    assert recorded.aws["retries"] == 0
    assert recorded.aws["request_id"]
    assert recorded.http == {"response": {"status": 200}}


# --- the request on the wire ------------------------------------------------------------------


@responses.activate
def test_the_request_sent_verifies_with_botocores_signer(tmp_path: Path) -> None:
    from botocore import auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    url = "https://secretsmanager.cn-north-1.amazonaws.com.cn/"
    responses.post(url, json={"SecretString": "{}"}, headers={"x-amzn-RequestId": "req-1"})
    # A ~/.netrc entry for the host must not replace the signature (requests would apply it).
    (tmp_path / ".netrc").write_text(
        "machine secretsmanager.cn-north-1.amazonaws.com.cn login x password y\n"
    )
    os.chmod(tmp_path / ".netrc", 0o600)
    env = lambda_env(tmp_path, AWS_DEFAULT_REGION="cn-north-1", AWS_REGION="cn-north-1")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path))
        answer = secrets_client(env).get_secret_value(SecretId="plaid/é")

    assert answer["ResponseMetadata"]["RequestId"] == "req-1"
    (call,) = responses.calls
    sent = call.request
    assert sent.body == b'{"SecretId": "plaid/\\u00e9"}'  # botocore's serialisation
    assert sent.headers["X-Amz-Target"] == "secretsmanager.GetSecretValue"
    assert sent.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert sent.headers["Host"] == "secretsmanager.cn-north-1.amazonaws.com.cn"
    assert sent.headers["X-Amz-Security-Token"] == TOKEN
    signed_at = datetime.strptime(sent.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    request = AWSRequest(
        method="POST",
        url=url,
        headers={name: sent.headers[name] for name in ("X-Amz-Target", "Content-Type")},
        data=sent.body,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "get_current_datetime", lambda: signed_at)
        auth.SigV4Auth(
            BotoCredentials(ACCESS_KEY, SECRET_KEY, TOKEN), "secretsmanager", "cn-north-1"
        ).add_auth(request)
    assert sent.headers["Authorization"] == request.headers["Authorization"]


@pytest.mark.parametrize(
    ("status", "headers", "body", "code", "message"),
    [
        (400, {}, {"__type": "ResourceNotFoundException", "message": "m1"}, "ResourceNotFoundException", "m1"),
        (400, {}, {"__type": "com.amazonaws.secretsmanager#DecryptionFailure", "Message": "m2"}, "DecryptionFailure", "m2"),
        (400, {"x-amzn-ErrorType": "AccessDeniedException:http://internal.amazon.com/coral/"}, {}, "AccessDeniedException", ""),
        (400, {"x-amzn-ErrorType": "X"}, {"__type": "ThrottlingException"}, "ThrottlingException", ""),
        (503, {}, None, "503", ""),
        (500, {}, "<html>Internal</html>", "500", ""),
    ],
)  # fmt: skip
@responses.activate
def test_aws_error_answers_are_parsed_as_botocore_parses_them(
    status: int, headers: dict[str, str], body: Any, code: str, message: str
) -> None:
    url = "https://secretsmanager.us-east-1.amazonaws.com/"
    text = body if isinstance(body, str) else ("" if body is None else json.dumps(body))
    responses.post(url, body=text, status=status, headers={"x-amzn-RequestId": "r-9", **headers})

    with pytest.raises(AwsServiceError) as raised:
        json_client(url, Sleeps()).get_secret_value(SecretId="s")

    error = raised.value.response
    assert error["Error"] == {"Code": code, "Message": message}
    assert error["ResponseMetadata"]["RequestId"] == "r-9"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status


# --- retries and faults, through the loopback double ------------------------------------------


@pytest.mark.parametrize(
    ("actions", "code", "requests", "retries"),
    [
        ((SmError("ThrottlingException"),) * 2, "ThrottlingException", 2, 1),
        ((SmError("TooManyRequestsException"),) * 2, "TooManyRequestsException", 2, 1),
        ((SmError("InternalServiceError", 500),) * 2, "InternalServiceError", 2, 1),
        ((SmError("SomethingNew", 429),) * 2, "SomethingNew", 2, 1),
        ((SmError("RequestTimeoutException"),) * 2, "RequestTimeoutException", 2, 1),
        ((SmError("AccessDeniedException"),), "AccessDeniedException", 1, 0),
        ((SmError("ResourceNotFoundException"),), "ResourceNotFoundException", 1, 0),
        ((SmError("SomethingNew", 400),), "SomethingNew", 1, 0),
    ],
)
def test_standard_mode_retries_once_and_only_what_it_retries(
    actions: tuple[Any, ...], code: str, requests: int, retries: int
) -> None:
    sleeps = Sleeps()
    with SecretsFaults(secret_json()) as sm:
        sm.script(*actions)
        with pytest.raises(AwsServiceError) as raised:
            json_client(sm.endpoint, sleeps).get_secret_value(SecretId="plaid/x")
        assert len(sm.requests) == requests
        assert set(sm.requests) == {"secretsmanager.GetSecretValue"}
    assert raised.value.code == code
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == retries
    assert sleeps.delays == [0.5] * retries  # jitter 0.5 x 2 ** 0 s, botocore's first delay


def test_a_retry_that_succeeds_counts_its_attempt() -> None:
    sleeps = Sleeps()
    with SecretsFaults(secret_json()) as sm:
        sm.script(SmError("ThrottlingException"))
        answer = json_client(sm.endpoint, sleeps).get_secret_value(SecretId="plaid/x")
        assert len(sm.requests) == 2
    assert answer["SecretString"] == secret_json()
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1


def test_an_unreachable_endpoint_is_tried_twice() -> None:
    sleeps = Sleeps()
    with closed_port() as port:
        client = json_client(f"http://127.0.0.1:{port}", sleeps)
        with pytest.raises(EndpointConnectionError) as raised:
            client.get_secret_value(SecretId="plaid/x")
    assert type(raised.value).__name__ == "EndpointConnectionError"
    assert sleeps.delays == [0.5]


@pytest.fixture
def hang_up() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that reads each request and closes without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                received.append(conn.recv(65536))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_a_connection_closed_without_an_answer_is_retried_then_named(
    hang_up: tuple[str, list[bytes]],
) -> None:
    endpoint, received = hang_up
    with pytest.raises(ConnectionClosedError):
        json_client(endpoint, Sleeps()).get_secret_value(SecretId="plaid/x")
    assert len(received) == 2


# --- the store's answers, unchanged -----------------------------------------------------------


def problem_of(store: SecretStore) -> Problem:
    with pytest.raises(Problem) as raised:
        store.get()
    return raised.value


@pytest.mark.parametrize(
    ("action", "code", "cause"),
    [
        (SmError("AccessDeniedException"), "MISCONFIGURED",
         "secret 'plaid/x': AccessDeniedException: the function's role may not read the secret (IAM or key policy)"),
        (SmError("DecryptionFailure"), "MISCONFIGURED",
         "secret 'plaid/x': DecryptionFailure: the secret's KMS key cannot be used by the function"),
        (SmError("ResourceNotFoundException"), "MISCONFIGURED", "secret 'plaid/x': ResourceNotFoundException: "),
        (SmError("UnrecognizedClientException"), "MISCONFIGURED",
         "secret 'plaid/x': UnrecognizedClientException: the function's AWS credentials are not valid"),
        (SmError("ThrottlingException"), "UPSTREAM_UNAVAILABLE", "Secrets Manager answered ThrottlingException"),
        (SmError("InternalServiceError", 500), "UPSTREAM_UNAVAILABLE", "Secrets Manager answered InternalServiceError"),
    ],
)  # fmt: skip
def test_the_store_answers_as_with_botocore(
    tmp_path: Path, action: SmError, code: str, cause: str
) -> None:
    with SecretsFaults(secret_json()) as sm:
        sm.script(action, action)
        env = lambda_env(tmp_path, sm.endpoint)
        client = secrets_client(env)
        assert isinstance(client, JsonSecretsClient)
        problem = problem_of(SecretStore("plaid/x", 300, client_factory=lambda: client))
    assert problem.code == code
    assert (problem.cause or "").startswith(cause)


def test_the_store_names_an_unreachable_endpoint_as_before(tmp_path: Path) -> None:
    with closed_port() as port:
        env = lambda_env(tmp_path, f"http://127.0.0.1:{port}")
        problem = problem_of(
            SecretStore("plaid/x", 300, client_factory=lambda: secrets_client(env))
        )
    assert (problem.code, problem.cause) == (
        "UPSTREAM_UNAVAILABLE",
        "Secrets Manager unreachable: EndpointConnectionError",
    )


def test_the_store_names_a_container_endpoint_failure_as_botocore_would(tmp_path: Path) -> None:
    with closed_port() as port:
        env = lambda_env(tmp_path, "http://127.0.0.1:9")
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.pop(name)
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"http://127.0.0.1:{port}/creds"
        problem = problem_of(
            SecretStore("plaid/x", 300, client_factory=lambda: secrets_client(env))
        )
    assert (problem.code, problem.cause) == (
        "UPSTREAM_UNAVAILABLE",
        "Secrets Manager unreachable: CredentialRetrievalError",
    )


# --- which client, which endpoint -------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "endpoint"),
    [
        ({}, "https://secretsmanager.us-east-1.amazonaws.com"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, "http://127.0.0.1:4566"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:2"},
         "http://127.0.0.1:2"),
        ({"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:2", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
         "https://secretsmanager.us-east-1.amazonaws.com"),
        ({"AWS_DEFAULT_REGION": "eu-west-3"}, "https://secretsmanager.eu-west-3.amazonaws.com"),
    ],
)  # fmt: skip
def test_the_endpoint_as_botocore_chooses_it(
    tmp_path: Path, extra: dict[str, str], endpoint: str
) -> None:
    client = secrets_client(lambda_env(tmp_path, **extra))
    assert isinstance(client, JsonSecretsClient)
    assert client.meta.endpoint_url == endpoint


def test_the_region_is_aws_default_region_then_aws_region(tmp_path: Path) -> None:
    env = lambda_env(tmp_path, AWS_DEFAULT_REGION="eu-west-3", AWS_REGION="eu-central-1")
    assert secrets_client(env).meta.region_name == "eu-west-3"
    env.pop("AWS_DEFAULT_REGION")
    assert secrets_client(env).meta.region_name == "eu-central-1"


@pytest.mark.parametrize(
    "region",
    ["us-east-1", "us-west-2", "eu-west-3", "eu-south-2", "ap-southeast-5", "ca-west-1",
     "me-central-1", "il-central-1", "mx-central-1", "sa-east-1", "af-south-1",
     "cn-north-1", "cn-northwest-1", "us-gov-west-1", "us-gov-east-1"],
)  # fmt: skip
def test_public_endpoints_match_botocores(region: str) -> None:
    import botocore.session

    botocore_url = (
        botocore.session.get_session()
        .create_client(
            "secretsmanager", region_name=region, aws_access_key_id="a", aws_secret_access_key="b"
        )
        .meta.endpoint_url
    )
    assert public_endpoint("secretsmanager", region) == botocore_url


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"AWS_PROFILE": "dev"}, id="profile"),
        pytest.param({"AWS_ACCESS_KEY_ID": ""}, id="no-environment-credentials"),
        pytest.param({"AWS_DEFAULT_REGION": "", "AWS_REGION": ""}, id="no-region"),
        pytest.param({"AWS_DEFAULT_REGION": "us-iso-east-1"}, id="iso-partition"),
        pytest.param({"AWS_USE_FIPS_ENDPOINT": "true"}, id="fips"),
        pytest.param({"AWS_USE_DUALSTACK_ENDPOINT": "true"}, id="dualstack"),
    ],
)
def test_anything_else_gets_botocores_client(tmp_path: Path, extra: dict[str, str]) -> None:
    client = secrets_client(lambda_env(tmp_path, **extra))  # creating a client sends nothing
    assert not isinstance(client, JsonSecretsClient)
    assert type(client).__module__.startswith("botocore")


# --- a cold invocation loads no botocore ------------------------------------------------------

COLD_INVOCATION = """
import json, sys
import app

event = json.load(open(sys.argv[1]))

class Context:
    aws_request_id = "cold-1"
    function_name = "plaid-link-token"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:plaid-link-token"
    def get_remaining_time_in_millis(self):
        return 20_000

response = app.lambda_handler(event, Context())
# The package root alone is Powertools' (its user-agent hook, `import botocore`: < 1 ms, no
# session, no models); what the AWS call would cost is everything below it.
loaded = sorted(m for m in sys.modules if m.startswith(("botocore.", "boto3", "s3transfer")))
print("RESULT " + json.dumps({"status": response["statusCode"], "loaded": loaded}))
"""


@pytest.mark.parametrize(
    ("credentials", "loaded"),
    [("environment", set()), ("profile", {"botocore.session", "botocore.auth", "botocore.client"})],
)
def test_a_cold_invocation_with_environment_credentials_loads_no_botocore(
    tmp_path: Path, moto_endpoint: str, moto_secret: str, plaid: Any, credentials: str,
    loaded: set[str],
) -> None:  # fmt: skip
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT / "handler"),
        **lambda_env(tmp_path, moto_endpoint),
        "PLAID_SECRET_ID": moto_secret,
        "PLAID_CLIENT_NAME": "Cold Test",
        "PLAID_BASE_URL": plaid.base_url,
        "POWERTOOLS_SERVICE_NAME": "plaid-link-token",
        "POWERTOOLS_METRICS_NAMESPACE": "PlaidLinkToken",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    if credentials == "profile":  # the contrast: the same run through botocore's chain
        shared = tmp_path / "credentials"
        shared.write_text(
            f"[dev]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        )
        for name in CREDENTIALS["session"]:
            env.pop(name)
        env.update(AWS_PROFILE="dev", AWS_SHARED_CREDENTIALS_FILE=str(shared))
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(ROOT / 'handler')!r})\n"
         + COLD_INVOCATION, str(ROOT / "infra/events/ok.json")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert results, done.stderr[-2000:]
    result = json.loads(results[0].removeprefix("RESULT "))
    assert result["status"] == 200
    if loaded:
        assert loaded <= set(result["loaded"])
    else:
        assert result["loaded"] == []
    assert SECRET_KEY not in done.stdout + done.stderr and TOKEN not in done.stdout + done.stderr


@pytest.mark.parametrize("aws_ca_bundle", [None, "/etc/ssl/aws-corporate.pem"])
@responses.activate
def test_tls_roots_are_botocores_not_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_ca_bundle: str | None
) -> None:

    # Set for Plaid (a loopback CA in tests, a corporate proxy's elsewhere): not for AWS.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "plaid-only.pem"))
    url = "https://secretsmanager.us-east-1.amazonaws.com/"
    responses.post(url, json={"SecretString": "{}"})
    extra = {"AWS_CA_BUNDLE": aws_ca_bundle} if aws_ca_bundle else {}

    secrets_client(lambda_env(tmp_path, **extra)).get_secret_value(SecretId="s")

    (call,) = responses.calls
    assert call.request.req_kwargs["verify"]  # type: ignore[attr-defined]  # set by responses == (aws_ca_bundle or certifi.where())


@pytest.fixture
def container_endpoint() -> Iterator[tuple[str, list[str]]]:
    """Lambda's container credentials endpoint under SnapStart, on loopback: answers with
    session credentials when the `Authorization` header carries the token."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            ok = self.headers.get("Authorization") == "snapstart-auth-token-canary"
            body = json.dumps({"AccessKeyId": ACCESS_KEY, "SecretAccessKey": SECRET_KEY,
                               "Token": TOKEN, "Expiration": "2099-01-01T00:00:00Z"}).encode()  # fmt: skip
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(body) if ok else 0))
            self.end_headers()
            if ok:
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/2021-04-23/credentials", seen
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_real_secret_read_with_snapstart_container_credentials(
    tmp_path: Path,
    moto_endpoint: str,
    moto_secret: str,
    container_endpoint: tuple[str, list[str]],
) -> None:
    uri, seen = container_endpoint
    env = lambda_env(tmp_path, moto_endpoint)
    for name in CREDENTIALS["session"]:
        env.pop(name)
    env.update(
        AWS_CONTAINER_CREDENTIALS_FULL_URI=uri,
        AWS_CONTAINER_AUTHORIZATION_TOKEN="snapstart-auth-token-canary",
    )
    store = SecretStore(moto_secret, 0, client_factory=lambda: secrets_client(env))
    store.prepare()
    assert seen == []  # init (and so the snapshot) holds no credentials

    assert store.get() == PlaidCredentials(CLIENT_ID, SECRET)
    assert store.get() == PlaidCredentials(CLIENT_ID, SECRET)
    assert seen == ["snapstart-auth-token-canary"]  # fetched once, kept until near expiry
    store.forget()  # SnapStart's after-restore reset
    store.prepare()
    store.get()
    assert len(seen) == 2  # a restored snapshot fetches its own


@pytest.mark.parametrize("endpoint", ["localhost:4566", "http://", "http://[::1"])
def test_a_malformed_endpoint_is_refused_by_botocore_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    # botocore's client reads the process environment, as in Lambda.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint)
    with pytest.raises(ValueError, match="Invalid"):
        secrets_client(lambda_env(tmp_path, endpoint))


@pytest.mark.parametrize("endpoint", ["ftp://127.0.0.1/", "http://127.0.0.1:99999", "http://h:abc"])
def test_an_odd_endpoint_is_left_to_botocore(tmp_path: Path, endpoint: str) -> None:
    client = secrets_client(lambda_env(tmp_path, endpoint))
    assert not isinstance(client, JsonSecretsClient)
