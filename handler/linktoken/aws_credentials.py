"""AWS credentials the way Lambda hands them to a function, without botocore.

Two sources, read with botocore's own rules:

- the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` (or
  the older `AWS_SECURITY_TOKEN`), which is how an on-demand Lambda function gets them;
- the container credentials endpoint: `AWS_CONTAINER_CREDENTIALS_FULL_URI` with the token of
  `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or `AWS_CONTAINER_AUTHORIZATION_TOKEN` sent as
  `Authorization`, which is how Lambda provides them under SnapStart. The URI must be https, a
  loopback address or one of the link-local hosts botocore allows. The credentials are
  fetched again 15 minutes before their `Expiration` (botocore's advisory refresh); a failed
  refresh keeps the old ones while they have more than 10 minutes left (its mandatory one).

`lambda_credentials` returns None for anything else (a profile, SSO, web identity, ECS's
relative URI, a shared credentials or config file that botocore would read first, partial
keys): the caller then keeps botocore, whose chain and error messages cover those cases.
"""

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import urlsplit

# botocore.utils.ContainerMetadataFetcher._ALLOWED_HOSTS (plain http beyond loopback).
ALLOWED_CONTAINER_HOSTS: Final = frozenset(
    {"169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost"}
)
ADVISORY_REFRESH_S: Final = 15 * 60
MANDATORY_REFRESH_S: Final = 10 * 60
# Variables that make botocore's chain answer before the environment or the container
# endpoint could (or instead of them): with any of these set, botocore decides.
_BOTOCORE_FIRST: Final = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


class CredentialRetrievalError(Exception):
    """The container endpoint did not give credentials (named as botocore names it)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A key pair, with the session token of temporary credentials. `repr` shows neither the
    secret key nor the token."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # time.time(); None: does not expire


class CredentialSource(Protocol):
    def __call__(self) -> Credentials: ...


def lambda_credentials(
    environ: Mapping[str, str] = os.environ,
    fetch: "Callable[[str, Mapping[str, str]], bytes] | None" = None,
) -> CredentialSource | None:
    """A source for the credentials Lambda provides, or None when botocore must decide."""
    if any(environ.get(name) for name in _BOTOCORE_FIRST):
        return None
    access_key = environ.get("AWS_ACCESS_KEY_ID", "")
    secret_key = environ.get("AWS_SECRET_ACCESS_KEY", "")
    if access_key or secret_key:
        if not (access_key and secret_key):
            return None  # botocore raises PartialCredentialsError, named in the log line
        token = environ.get("AWS_SESSION_TOKEN", environ.get("AWS_SECURITY_TOKEN"))
        creds = Credentials(access_key, secret_key, token or None)
        return lambda: creds
    full_uri = environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not full_uri or not container_uri_allowed(full_uri) or _shared_files_exist(environ):
        return None
    return ContainerCredentials(full_uri, environ, fetch or fetch_container_credentials)


def container_uri_allowed(uri: str) -> bool:
    """botocore's rule: https anywhere; http only to loopback or the allowed hosts."""
    parts = urlsplit(uri)
    if parts.scheme == "https":
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    try:
        if ip_address(parts.hostname).is_loopback:
            return True
    except ValueError:
        pass
    return parts.hostname in ALLOWED_CONTAINER_HOSTS


def _shared_files_exist(environ: Mapping[str, str]) -> bool:
    """botocore reads the shared credentials and config files before the container endpoint."""
    home = environ.get("HOME", "")
    paths = [
        environ.get("AWS_SHARED_CREDENTIALS_FILE") or f"{home}/.aws/credentials",
        environ.get("AWS_CONFIG_FILE") or f"{home}/.aws/config",
    ]
    return any(Path(os.path.expanduser(path)).is_file() for path in paths)


class ContainerCredentials:
    """Credentials from the container endpoint, fetched when first needed and again before
    they expire. Thread-safe: one fetch at a time."""

    def __init__(
        self,
        uri: str,
        environ: Mapping[str, str],
        fetch: "Callable[[str, Mapping[str, str]], bytes]",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.uri = uri
        self._environ = environ
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Credentials | None = None
        self.fetches = 0

    def __call__(self) -> Credentials:
        with self._lock:
            current = self._current
            if current is not None and not self._left_under(current, ADVISORY_REFRESH_S):
                return current
            try:
                self._current = self._retrieve()
            except CredentialRetrievalError:
                if current is not None and not self._left_under(current, MANDATORY_REFRESH_S):
                    return current  # still good for a while: try again on the next call
                raise
            return self._current

    def _left_under(self, creds: Credentials, seconds: float) -> bool:
        return creds.expires_at is not None and creds.expires_at - self._clock() < seconds

    def _retrieve(self) -> Credentials:
        headers = {"Accept": "application/json"}
        token = self._authorization_token()
        if token is not None:
            headers["Authorization"] = token
        self.fetches += 1
        try:
            doc = json.loads(self._fetch(self.uri, headers))
            return Credentials(
                doc["AccessKeyId"],
                doc["SecretAccessKey"],
                doc.get("Token") or None,
                _expiry(doc["Expiration"]) if doc.get("Expiration") else None,
            )
        except CredentialRetrievalError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # The type only: the answer holds the credentials themselves.
            raise CredentialRetrievalError(
                f"container credentials endpoint: {type(exc).__name__}"
            ) from None

    def _authorization_token(self) -> str | None:
        token_file = self._environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        if token_file is not None:
            try:
                token: str | None = Path(token_file).read_text()
            except OSError as exc:
                raise CredentialRetrievalError(
                    f"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE cannot be read: {type(exc).__name__}"
                ) from None
        else:
            token = self._environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        if token is not None and ("\r" in token or "\n" in token):
            # botocore refuses it too: a line break would be header injection.
            raise CredentialRetrievalError(
                "the container authorization token is not a legal header"
            )
        return token


def _expiry(text: str) -> float:
    """`Expiration` as the endpoint sends it (ISO 8601, `Z` or an offset) as time.time()."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def fetch_container_credentials(uri: str, headers: Mapping[str, str]) -> bytes:
    """GET the endpoint (a local one: 1 s to connect, 2 s to answer); a non-200 is an error."""
    import http.client  # noqa: PLC0415 - only under SnapStart; already loaded by requests anyway

    parts = urlsplit(uri)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname or "", parts.port, timeout=1)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    try:
        connection.connect()
        if connection.sock is not None:
            connection.sock.settimeout(2)
        connection.request("GET", target, headers=dict(headers))
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise CredentialRetrievalError(f"container credentials endpoint answered {response.status}")
    return body
