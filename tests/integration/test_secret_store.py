"""`linktoken.secret_store.SecretStore` against moto: caching, refresh, malformed secrets, outages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from linktoken.problems import Problem
from linktoken.secret_store import PlaidCredentials, SecretStore, make_secrets_client
from tests.conftest import CLIENT_ID, SECRET, SECRET_ID, secret_json
from tests.helpers_app import closed_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingFactory:
    """`make_secrets_client`, counting the clients it makes and the GetSecretValue calls sent."""

    def __init__(self) -> None:
        self.clients = 0
        self.calls = 0
        self.sends = 0

    def __call__(self) -> Any:
        client = make_secrets_client()
        self.clients += 1
        client.meta.events.register(
            "before-call.secrets-manager.GetSecretValue", lambda **_: self._count("calls")
        )
        client.meta.events.register(
            "before-send.secrets-manager.GetSecretValue", lambda **_: self._count("sends")
        )
        return client

    def _count(self, name: str) -> None:
        setattr(self, name, getattr(self, name) + 1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def factory() -> CountingFactory:
    return CountingFactory()


@pytest.fixture
def store(aws: Any, clock: FakeClock, factory: CountingFactory) -> SecretStore:
    return SecretStore(SECRET_ID, 300, client_factory=factory, clock=clock)


def problem_of(call: Callable[[], Any]) -> Problem:
    with pytest.raises(Problem) as raised:
        call()
    return raised.value


# --- caching ----------------------------------------------------------------------------------


def test_one_read_per_ttl_across_many_gets(
    store: SecretStore, clock: FakeClock, factory: CountingFactory
) -> None:
    first = store.get()
    seen = []
    for _ in range(50):
        clock.now += 5.9  # 295 s in all: still inside the TTL
        seen.append(store.get())

    assert first == PlaidCredentials(CLIENT_ID, SECRET)
    assert all(creds is first for creds in seen)
    assert (factory.calls, store.reads, factory.clients) == (1, 1, 1)


@pytest.mark.parametrize(("elapsed", "reads"), [(299.999, 1), (300.0, 2), (301.0, 2), (3600, 2)])
def test_reread_after_expiry(
    store: SecretStore, clock: FakeClock, factory: CountingFactory, elapsed: float, reads: int
) -> None:
    store.get()
    clock.now += elapsed
    store.get()
    assert factory.calls == store.reads == reads
    assert factory.clients == 1  # the client outlives the cached value


def test_rotation_is_seen_after_expiry_or_refresh(
    store: SecretStore, clock: FakeClock, aws: Any
) -> None:
    assert store.get().secret == SECRET
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=secret_json(secret="rotated-value-1"))

    assert store.get().secret == SECRET  # cached
    assert store.get(refresh=True).secret == "rotated-value-1"

    aws.put_secret_value(SecretId=SECRET_ID, SecretString=secret_json(secret="rotated-value-2"))
    clock.now += 300
    assert store.get().secret == "rotated-value-2"


def test_refresh_reads_and_restarts_the_ttl(
    store: SecretStore, clock: FakeClock, factory: CountingFactory
) -> None:
    store.get()
    clock.now += 200
    store.get(refresh=True)
    clock.now += 250  # 450 s after the first read, 250 s after the refresh
    store.get()
    assert factory.calls == 2
    clock.now += 50
    store.get()
    assert factory.calls == 3


def test_forget_drops_the_value_and_the_client(
    store: SecretStore, factory: CountingFactory
) -> None:
    store.get()
    store.forget()
    store.get()
    assert (factory.calls, factory.clients) == (2, 2)


def test_zero_ttl_reads_every_time(aws: Any, clock: FakeClock, factory: CountingFactory) -> None:
    store = SecretStore(SECRET_ID, 0, client_factory=factory, clock=clock)
    for _ in range(3):
        store.get()
    assert factory.calls == 3


def test_client_is_created_lazily(aws: Any, factory: CountingFactory) -> None:
    store = SecretStore(SECRET_ID, 300, client_factory=factory)
    assert factory.clients == 0  # nothing at init: no AWS call during a cold start's import
    store.get()
    assert factory.clients == 1


def test_prepare_creates_the_client_once_and_reads_nothing(
    aws: Any, factory: CountingFactory
) -> None:
    store = SecretStore(SECRET_ID, 300, client_factory=factory)
    store.prepare()
    store.prepare()
    assert (factory.clients, factory.calls) == (1, 0)  # init pays the client, not a read
    store.get()
    assert (factory.clients, factory.calls) == (1, 1)


def test_prepare_never_raises_and_the_failure_surfaces_on_get() -> None:
    def broken() -> Any:
        raise RuntimeError("no region")

    store = SecretStore(SECRET_ID, 300, client_factory=broken)
    store.prepare()  # init must not crash-loop the container

    with pytest.raises(RuntimeError):
        store.get()


def test_hmac_key_is_kept_as_bytes(store: SecretStore, aws: Any) -> None:
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=secret_json(user_id_hmac_key="k" * 16))
    creds = store.get(refresh=True)
    assert creds.user_id_hmac_key == b"k" * 16
    assert SECRET not in repr(creds)
    assert "k" * 16 not in repr(creds)


def test_client_id_and_secret_are_trimmed(store: SecretStore, aws: Any) -> None:
    aws.put_secret_value(
        SecretId=SECRET_ID,
        SecretString=json.dumps({"client_id": f" {CLIENT_ID}\n", "secret": f"{SECRET} "}),
    )
    assert store.get(refresh=True) == PlaidCredentials(CLIENT_ID, SECRET)


# --- malformed secrets ------------------------------------------------------------------------


MALFORMED = [
    pytest.param(SECRET, "not JSON", id="not-json"),
    pytest.param(f"client_id={CLIENT_ID}\nsecret={SECRET}", "not JSON", id="key-value-text"),
    pytest.param(json.dumps([CLIENT_ID, SECRET]), "not a JSON object", id="array"),
    pytest.param(json.dumps(SECRET), "not a JSON object", id="json-string"),
    pytest.param("null", "not a JSON object", id="null"),
    pytest.param(json.dumps({"secret": SECRET}), "'client_id'", id="no-client-id"),
    pytest.param(json.dumps({"client_id": CLIENT_ID}), "'secret'", id="no-secret"),
    pytest.param(json.dumps({"client_id": "", "secret": SECRET}), "'client_id'", id="empty-client-id"),
    pytest.param(json.dumps({"client_id": CLIENT_ID, "secret": "  "}), "'secret'", id="blank-secret"),
    pytest.param(json.dumps({"client_id": 5e1, "secret": SECRET}), "'client_id'", id="number-client-id"),
    pytest.param(json.dumps({"client_id": CLIENT_ID, "secret": [SECRET]}), "'secret'", id="list-secret"),
    pytest.param(json.dumps({"clientId": CLIENT_ID, "secret": SECRET}), "'client_id'", id="camel-case"),
    pytest.param(secret_json(user_id_hmac_key="short-hmac-k3y"), "'user_id_hmac_key'", id="short-hmac"),
    pytest.param(secret_json(user_id_hmac_key=""), "'user_id_hmac_key'", id="empty-hmac"),
    pytest.param(secret_json(user_id_hmac_key=12345678901234567890), "'user_id_hmac_key'", id="number-hmac"),
    # JSON can escape a lone surrogate: no UTF-8 bytes to key the HMAC with (and encoding it
    # would raise an error that holds the key).
    pytest.param(secret_json(user_id_hmac_key="k" * 20 + "\udc00"), "'user_id_hmac_key' is not valid Unicode", id="surrogate-hmac"),
    # The keys are HTTP header values: a line break would be header injection, a non-Latin-1
    # character an encoding error holding the value.
    pytest.param(json.dumps({"client_id": CLIENT_ID, "secret": "abc\r\nX-Injected: 1" + SECRET}), "'secret' must be printable ASCII", id="crlf-secret"),
    pytest.param(json.dumps({"client_id": CLIENT_ID + "\u00e9", "secret": SECRET}), "'client_id' must be printable ASCII", id="unicode-client-id"),
    pytest.param(json.dumps({"client_id": CLIENT_ID, "secret": SECRET + "\udc00"}), "'secret' must be printable ASCII", id="surrogate-secret"),
]  # fmt: skip


def leaves(value: Any) -> list[str]:
    """Every string (and number, as text) inside a JSON document, at any depth."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [str(value)] if isinstance(value, str | int | float) and str(value) else []


def assert_value_not_revealed(problem: Problem, secret_string: str) -> None:
    try:
        values = leaves(json.loads(secret_string))
    except ValueError:
        values = [secret_string]
    values = [v for v in values if len(v) >= 5 and v != SECRET_ID]
    revealed = " ".join(
        [str(problem), repr(problem), problem.cause or "", problem.detail, json.dumps(problem.log)]
    )
    revealed += json.dumps(problem.body("req-1"))
    for value in [SECRET, *values]:
        assert value not in revealed


@pytest.mark.parametrize(("secret_string", "named"), MALFORMED)
def test_malformed_secret_is_misconfigured_naming_the_field_not_the_value(
    store: SecretStore, aws: Any, secret_string: str, named: str
) -> None:
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=secret_string)

    problem = problem_of(store.get)

    assert (problem.code, problem.status, problem.retryable) == ("MISCONFIGURED", 500, False)
    assert named in (problem.cause or "")
    assert SECRET_ID in (problem.cause or "")
    assert_value_not_revealed(problem, secret_string)


def test_binary_secret_is_misconfigured(store: SecretStore, aws: Any) -> None:
    aws.put_secret_value(SecretId=SECRET_ID, SecretBinary=secret_json().encode())

    problem = problem_of(store.get)

    assert problem.code == "MISCONFIGURED"
    assert "binary" in (problem.cause or "")
    assert_value_not_revealed(problem, secret_json())


def test_a_bad_secret_is_not_cached(store: SecretStore, aws: Any, factory: CountingFactory) -> None:
    aws.put_secret_value(SecretId=SECRET_ID, SecretString="{}")
    problem_of(store.get)
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=secret_json())  # the operator fixes it
    assert store.get().secret == SECRET
    assert factory.calls == 2


# --- Secrets Manager refusing or failing ------------------------------------------------------


def test_missing_secret_is_misconfigured(aws: Any, clock: FakeClock) -> None:
    store = SecretStore("plaid/does-not-exist", 300, clock=clock)

    problem = problem_of(store.get)

    assert problem.code == "MISCONFIGURED"
    assert "ResourceNotFoundException" in (problem.cause or "")
    assert "plaid/does-not-exist" in (problem.cause or "")


def stubbed_client(code: str, status: int) -> Callable[[], Any]:
    from botocore.stub import Stubber

    def factory() -> Any:
        client = make_secrets_client()
        stubber = Stubber(client)
        stubber.add_client_error(
            "get_secret_value", service_error_code=code, http_status_code=status
        )
        stubber.activate()
        return client

    return factory


@pytest.mark.parametrize(
    ("aws_code", "status", "code"),
    [
        ("AccessDeniedException", 400, "MISCONFIGURED"),
        ("DecryptionFailure", 400, "MISCONFIGURED"),
        ("InvalidRequestException", 400, "MISCONFIGURED"),
        ("InvalidParameterException", 400, "MISCONFIGURED"),
        ("UnrecognizedClientException", 400, "MISCONFIGURED"),
        ("ResourceNotFoundException", 400, "MISCONFIGURED"),
        ("InternalServiceError", 500, "UPSTREAM_UNAVAILABLE"),
        ("ThrottlingException", 400, "UPSTREAM_UNAVAILABLE"),
        ("SomethingNewException", 400, "UPSTREAM_UNAVAILABLE"),
    ],
)
def test_aws_errors_map_to_misconfigured_or_unavailable(
    aws_code: str, status: int, code: str
) -> None:
    store = SecretStore(SECRET_ID, 300, client_factory=stubbed_client(aws_code, status))

    problem = problem_of(store.get)

    assert problem.code == code
    assert aws_code in (problem.cause or "")


def test_unreachable_endpoint_is_unavailable_quickly(
    monkeypatch: pytest.MonkeyPatch, factory: CountingFactory
) -> None:
    with closed_port() as port:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{port}")
        store = SecretStore(SECRET_ID, 300, client_factory=factory)
        started = time.monotonic()

        problem = problem_of(store.get)

        elapsed = time.monotonic() - started
    assert (problem.code, problem.status, problem.retryable) == ("UPSTREAM_UNAVAILABLE", 503, True)
    assert "unreachable" in (problem.cause or "")
    assert factory.sends == 2  # two attempts, as configured, then give up
    assert elapsed < 10  # botocore's defaults would retry for much longer


def test_client_has_short_timeouts_and_two_attempts() -> None:
    config: Any = make_secrets_client().meta.config  # botocore's Config sets its fields at run time

    assert (config.connect_timeout, config.read_timeout) == (1, 2)
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}


def test_client_takes_region_and_endpoint_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:4566")

    client = make_secrets_client()

    assert client.meta.region_name == "eu-west-3"
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"


@pytest.mark.parametrize(
    ("unset", "error"),
    [
        (("AWS_DEFAULT_REGION", "AWS_REGION"), "NoRegionError"),
        (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"), "NoCredentialsError"),
    ],
)
def test_missing_region_or_credentials_is_misconfigured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, unset: tuple[str, ...], error: str
) -> None:
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    # No other source may answer: no files, no instance metadata, no container credentials.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    with closed_port() as port:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{port}")
        problem = problem_of(SecretStore(SECRET_ID, 300).get)

    assert problem.code == "MISCONFIGURED"
    assert error in (problem.cause or "")
