"""`linktoken.aws_credentials`: Lambda's environment credentials and the container credentials
endpoint (SnapStart), with botocore's rules, and everything else left to botocore."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.utils import ContainerMetadataFetcher

from linktoken.aws_credentials import (
    ContainerCredentials,
    CredentialRetrievalError,
    Credentials,
    container_uri_allowed,
    fetch_container_credentials,
    lambda_credentials,
)

ACCESS_KEY = "ASIAEXAMPLE000000000"
SECRET_KEY = "secret-key-canary-0b9d7e"
TOKEN = "session-token-canary-5a1c3f"
AUTH_TOKEN = "container-auth-token-canary-77e2"


def no_files(tmp_path: Path) -> dict[str, str]:
    """An environment in which botocore would find no shared credentials or config file."""
    return {
        "HOME": str(tmp_path),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
    }


# --- the environment --------------------------------------------------------------------------


def test_environment_credentials_with_a_session_token(tmp_path: Path) -> None:
    env = {
        **no_files(tmp_path),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": TOKEN,
    }
    source = lambda_credentials(env)
    assert source is not None
    assert source() == Credentials(ACCESS_KEY, SECRET_KEY, TOKEN)


def test_environment_credentials_without_a_token_and_the_older_token_name(tmp_path: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    plain = lambda_credentials(env)
    assert plain is not None and plain() == Credentials(ACCESS_KEY, SECRET_KEY, None)
    older = lambda_credentials({**env, "AWS_SECURITY_TOKEN": TOKEN})
    assert older is not None and older().token == TOKEN
    empty = lambda_credentials({**env, "AWS_SESSION_TOKEN": ""})
    assert empty is not None and empty().token is None  # botocore sends no empty token either


def test_the_environment_wins_over_the_container_endpoint() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/creds",
    }
    source = lambda_credentials(env)
    assert source is not None and not isinstance(source, ContainerCredentials)


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"AWS_ACCESS_KEY_ID": ACCESS_KEY}, id="partial-key"),
        pytest.param({"AWS_SECRET_ACCESS_KEY": SECRET_KEY}, id="partial-secret"),
        pytest.param(
            {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_PROFILE": "dev",
            },
            id="profile",
        ),
        pytest.param({"AWS_DEFAULT_PROFILE": "dev"}, id="default-profile"),
        pytest.param(
            {
                "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token",
                "AWS_ROLE_ARN": "arn:aws:iam::1:role/r",
            },
            id="web-identity",
        ),
        pytest.param({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"}, id="ecs"),
        pytest.param(
            {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.0.0.5/creds"},
            id="full-uri-not-allowed",
        ),
        pytest.param(
            {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "ftp://127.0.0.1/creds"}, id="full-uri-not-http"
        ),
    ],
)
def test_anything_else_is_left_to_botocore(tmp_path: Path, env: dict[str, str]) -> None:
    assert lambda_credentials({**no_files(tmp_path), **env}) is None


@pytest.mark.parametrize("which", ["AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"])
def test_a_shared_file_botocore_would_read_first_leaves_the_container_to_botocore(
    tmp_path: Path, which: str
) -> None:
    present = tmp_path / "present"
    present.write_text("[default]\n")
    env = {
        **no_files(tmp_path),
        which: str(present),
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/creds",
    }
    assert lambda_credentials(env) is None


def test_the_default_shared_files_under_home_count_too(tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[default]\n")
    env = {"HOME": str(tmp_path), "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/c"}
    assert lambda_credentials(env) is None


def test_credentials_never_show_their_secrets() -> None:
    text = repr(Credentials(ACCESS_KEY, SECRET_KEY, TOKEN))
    assert SECRET_KEY not in text and TOKEN not in text


# --- which container endpoints are allowed: botocore's rule -----------------------------------


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("http://127.0.0.1:9001/2021-04-23/credentials", True),  # Lambda's, under SnapStart
        ("http://127.0.0.2/creds", True),
        ("http://[::1]:8080/creds", True),
        ("http://localhost/creds", True),
        ("http://169.254.170.2/v2/credentials", True),
        ("http://169.254.170.23/v1/credentials", True),  # EKS Pod Identity
        ("http://[fd00:ec2::23]/v1/credentials", True),
        ("https://creds.example.com/creds", True),
        ("http://169.254.169.254/latest", False),
        ("http://10.0.0.5/creds", False),
        ("http://localhost.example.com/creds", False),
        ("http://127.0.0.1.nip.io/creds", False),
    ],
)
def test_allowed_container_hosts_are_botocores(uri: str, allowed: bool) -> None:
    assert container_uri_allowed(uri) is allowed
    try:
        ContainerMetadataFetcher()._validate_allowed_url(uri)  # type: ignore[attr-defined]  # the rule compared
        botocore_allows = True
    except ValueError:
        botocore_allows = False
    assert botocore_allows is allowed


# --- the container endpoint over loopback -----------------------------------------------------


class Endpoint:
    """A loopback container credentials endpoint: records each request's headers and answers
    with the queued documents (then the last one again)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, bytes]] = []
        self.seen: list[dict[str, str]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.seen.append(dict(self.headers.items()) | {"path": self.path})
                status, body = (
                    endpoint.answers.pop(0) if len(endpoint.answers) > 1 else endpoint.answers[0]
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/2021-04-23/credentials"

    def answer(self, status: int = 200, **doc: Any) -> None:
        self.answers.append((status, json.dumps(doc).encode()))


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    thread.join(timeout=5)


def creds_doc(expiration: str = "2026-12-03T20:00:00Z", key: str = ACCESS_KEY) -> dict[str, Any]:
    return {
        "AccessKeyId": key,
        "SecretAccessKey": SECRET_KEY,
        "Token": TOKEN,
        "Expiration": expiration,
        "AccountId": "123456789012",
    }


def snapstart_env(tmp_path: Path, uri: str, **extra: str) -> dict[str, str]:
    return {**no_files(tmp_path), "AWS_CONTAINER_CREDENTIALS_FULL_URI": uri, **extra}


def test_snapstart_credentials_from_the_endpoint_with_the_token(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    endpoint.answer(**creds_doc())
    source = lambda_credentials(
        snapstart_env(tmp_path, endpoint.uri, AWS_CONTAINER_AUTHORIZATION_TOKEN=AUTH_TOKEN)
    )
    assert isinstance(source, ContainerCredentials)
    assert endpoint.seen == []  # nothing fetched before the first call needs it

    creds = source()

    assert creds.access_key == ACCESS_KEY and creds.secret_key == SECRET_KEY
    assert creds.token == TOKEN
    assert creds.expires_at == 1_796_328_000.0  # 2026-12-03T20:00:00Z
    (request,) = endpoint.seen
    assert request["Authorization"] == AUTH_TOKEN
    assert request["Accept"] == "application/json"
    assert request["path"] == "/2021-04-23/credentials"


def test_the_token_file_wins_over_the_token_variable(tmp_path: Path, endpoint: Endpoint) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(AUTH_TOKEN)
    endpoint.answer(**creds_doc())
    source = lambda_credentials(
        snapstart_env(
            tmp_path,
            endpoint.uri,
            AWS_CONTAINER_AUTHORIZATION_TOKEN="other",
            AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(token_file),
        )
    )
    assert source is not None
    source()
    assert endpoint.seen[0]["Authorization"] == AUTH_TOKEN


def test_no_token_sends_no_authorization(tmp_path: Path, endpoint: Endpoint) -> None:
    endpoint.answer(**creds_doc())
    source = lambda_credentials(snapstart_env(tmp_path, endpoint.uri))
    assert source is not None
    source()
    assert "Authorization" not in endpoint.seen[0]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


EXPIRY = 1_796_328_000.0  # 2026-12-03T20:00:00Z


def test_refreshed_fifteen_minutes_before_expiration(endpoint: Endpoint) -> None:
    endpoint.answer(**creds_doc(key="ASIAFIRST"))
    endpoint.answer(**creds_doc("2026-12-03T23:00:00Z", key="ASIASECOND"))
    clock = Clock(EXPIRY - 3600)
    source = ContainerCredentials(endpoint.uri, {}, fetch_container_credentials, clock)

    assert source().access_key == "ASIAFIRST"
    clock.now = EXPIRY - 15 * 60 - 1
    assert source().access_key == "ASIAFIRST"  # cached: more than 15 minutes left
    assert source.fetches == 1
    clock.now = EXPIRY - 15 * 60 + 1
    assert source().access_key == "ASIASECOND"
    assert source.fetches == 2


def test_a_failed_refresh_keeps_credentials_with_more_than_ten_minutes_left(
    endpoint: Endpoint,
) -> None:
    endpoint.answer(**creds_doc(key="ASIAFIRST"))
    endpoint.answer(500, message="unavailable")
    clock = Clock(EXPIRY - 3600)
    source = ContainerCredentials(endpoint.uri, {}, fetch_container_credentials, clock)
    source()

    clock.now = EXPIRY - 12 * 60
    assert source().access_key == "ASIAFIRST"  # refresh failed, still 12 minutes left
    clock.now = EXPIRY - 9 * 60
    with pytest.raises(CredentialRetrievalError, match="answered 500"):
        source()


@pytest.mark.parametrize(
    ("status", "body", "named"),
    [
        (500, b"{}", "answered 500"),
        (200, b"not json", "JSONDecodeError"),
        (200, json.dumps({"AccessKeyId": ACCESS_KEY}).encode(), "KeyError"),
        (200, b"[]", "TypeError"),
    ],
)
def test_a_bad_answer_is_a_retrieval_error_that_shows_no_credentials(
    endpoint: Endpoint, status: int, body: bytes, named: str
) -> None:
    endpoint.answers.append((status, body))
    source = ContainerCredentials(endpoint.uri, {}, fetch_container_credentials)
    with pytest.raises(CredentialRetrievalError) as raised:
        source()
    assert named in str(raised.value)
    assert ACCESS_KEY not in str(raised.value)


def test_an_unreachable_endpoint_is_a_retrieval_error() -> None:
    from tests.helpers_app import closed_port

    with closed_port() as port:
        source = ContainerCredentials(f"http://127.0.0.1:{port}/c", {}, fetch_container_credentials)
        with pytest.raises(CredentialRetrievalError, match="ConnectionRefusedError"):
            source()


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "abc\ndef"])
def test_a_token_with_a_line_break_is_refused_as_botocore_refuses_it(
    endpoint: Endpoint, token: str
) -> None:
    endpoint.answer(**creds_doc())
    env: Mapping[str, str] = {"AWS_CONTAINER_AUTHORIZATION_TOKEN": token}
    source = ContainerCredentials(endpoint.uri, env, fetch_container_credentials)
    with pytest.raises(CredentialRetrievalError, match="not a legal header"):
        source()
    assert endpoint.seen == []


def test_an_unreadable_token_file_is_a_retrieval_error(tmp_path: Path, endpoint: Endpoint) -> None:
    endpoint.answer(**creds_doc())
    env = {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(tmp_path / "missing")}
    source = ContainerCredentials(endpoint.uri, env, fetch_container_credentials)
    with pytest.raises(CredentialRetrievalError, match="FileNotFoundError"):
        source()
