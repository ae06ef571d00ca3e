"""Plaid credentials from AWS Secrets Manager, cached per container with a TTL.

With the credentials Lambda provides (the environment, or the container credentials endpoint
under SnapStart), the one GetSecretValue call is signed here and sent with `requests`
(`linktoken.aws_json`): botocore's import and service models would be most of the cold start
for that one call (docs/performance.md). Anything else (a profile, SSO, a developer's machine,
no credentials at all) gets botocore's client, imported only then. Both have short timeouts
and two attempts: botocore's defaults (60 s read timeout, legacy retries) would outlive the
function.
"""

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from linktoken.aws_credentials import CredentialRetrievalError, lambda_credentials
from linktoken.aws_json import (
    AwsJsonClient,
    AwsServiceError,
    AwsTransportError,
    ClientMeta,
    configured_endpoint,
    public_endpoint,
    usable_endpoint,
)
from linktoken.problems import Problem
from linktoken.xray import Span, no_span

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

# Codes where retrying cannot help: the operator must fix the secret, its policy or its key.
_MISCONFIGURED_CODES = {
    "ResourceNotFoundException": (
        "the secret does not exist or has no value yet (check PLAID_SECRET_ID and the region; "
        "a secret the stack created needs put-secret-value, see docs/deploy.md)"
    ),
    "AccessDeniedException": "the function's role may not read the secret (IAM or key policy)",
    "DecryptionFailure": "the secret's KMS key cannot be used by the function",
    "InvalidRequestException": "the secret cannot be read (scheduled for deletion?)",
    "InvalidParameterException": "PLAID_SECRET_ID is not a valid secret name or ARN",
    "UnrecognizedClientException": "the function's AWS credentials are not valid",
}


# botocore logs every response body at DEBUG, GetSecretValue's (the secret) included, and Lambda's
# runtime gives the root logger the function's log level and a handler of its own: at DEBUG the
# keys would reach CloudWatch. This logger only ever dumps responses, so it drops every record,
# whatever level it or the root logger is set to (a filter, which re-enabling cannot undo).
logging.getLogger("botocore.parsers").addFilter(lambda _record: False)


@dataclass(frozen=True, slots=True)
class PlaidCredentials:
    """The Plaid keys. `repr` never shows the secret or the HMAC key."""

    client_id: str
    secret: str = field(repr=False)
    user_id_hmac_key: bytes | None = field(default=None, repr=False)


def parse_secret(secret_string: str | None, secret_id: str) -> PlaidCredentials:
    """Validate the secret's JSON; errors name the field, never its value."""
    doc, problems = _checked(secret_string)
    if problems:
        raise Problem(
            "MISCONFIGURED",
            "The service's Plaid credentials are not usable.",
            cause=f"secret {secret_id!r}: {problems[0]}",
        )
    hmac_key = doc.get("user_id_hmac_key")
    return PlaidCredentials(
        client_id=doc["client_id"].strip(),
        secret=doc["secret"].strip(),
        user_id_hmac_key=hmac_key.encode() if hmac_key else None,
    )


def secret_problems(secret_string: str | None) -> list[str]:
    """Everything wrong with the secret's text, each naming a field and never a value; the
    first is what `parse_secret` reports."""
    return _checked(secret_string)[1]


def _checked(secret_string: str | None) -> tuple[dict[str, Any], list[str]]:
    """The secret's JSON object (empty when it is not one) and what is wrong with it."""
    if not secret_string:
        return {}, ["has no SecretString (empty, or stored as binary)"]
    try:
        doc = json.loads(secret_string)
    except ValueError:
        return {}, ['is not JSON; expected {"client_id": "...", "secret": "..."}']
    if not isinstance(doc, dict):
        return {}, ["is not a JSON object"]
    problems = [
        f"field {key!r} {problem}"
        for key in ("client_id", "secret")
        if (problem := _key_problem(doc.get(key)))
    ]
    hmac_key = doc.get("user_id_hmac_key")
    if hmac_key is not None and (not isinstance(hmac_key, str) or len(hmac_key) < 16):
        problems.append("field 'user_id_hmac_key' must be a string of at least 16 characters")
    elif hmac_key is not None and any("\ud800" <= char <= "\udfff" for char in hmac_key):
        # JSON can escape a lone surrogate (\udc00): no UTF-8 bytes to key the HMAC with.
        problems.append("field 'user_id_hmac_key' is not valid Unicode (a lone surrogate escape)")
    return doc, problems


def _key_problem(value: object) -> str | None:
    """What is wrong with client_id or secret. They travel as HTTP header values, so printable
    ASCII only; checked character by character, since an encoding error would hold the value."""
    if not isinstance(value, str) or not value.strip():
        return "is missing or empty"
    if not all(" " <= char <= "~" for char in value.strip()):
        return "must be printable ASCII (it is sent as an HTTP header)"
    return None


def make_secrets_client() -> "SecretsManagerClient":
    """A Secrets Manager client on boto's standard configuration chain, with tight limits.

    Region, credentials and `AWS_ENDPOINT_URL_SECRETS_MANAGER` come from the environment.
    """
    import botocore.session  # noqa: PLC0415 - deferred: keeps import cost out of app.py's path
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        connect_timeout=1,
        read_timeout=2,
        retries={"total_max_attempts": 2, "mode": "standard"},
    )
    client = botocore.session.get_session().create_client("secretsmanager", config=config)
    return cast("SecretsManagerClient", client)


class JsonSecretsClient:
    """The Secrets Manager client of the Lambda path: `get_secret_value` and `meta` as
    botocore's client has them, over `AwsJsonClient`."""

    def __init__(self, client: AwsJsonClient) -> None:
        self.client = client
        self.meta: ClientMeta = client.meta

    def get_secret_value(self, **params: Any) -> dict[str, Any]:
        return self.client.call("GetSecretValue", params)


def secrets_client(environ: Mapping[str, str] = os.environ) -> Any:
    """The store's client: `JsonSecretsClient` with Lambda's credentials and a region and
    endpoint it knows, else botocore's (`make_secrets_client`), which reads everything else."""
    credentials = lambda_credentials(environ)
    region = environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION")
    botocore_only = any(
        environ.get(name, "").lower() == "true"
        for name in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")
    )
    if credentials is None or not region or botocore_only:
        return make_secrets_client()
    endpoint = configured_endpoint("SECRETS_MANAGER", environ) or public_endpoint(
        "secretsmanager", region
    )
    if endpoint is None or not usable_endpoint(endpoint):
        return make_secrets_client()
    return JsonSecretsClient(
        AwsJsonClient(
            "secretsmanager",
            "secretsmanager",
            "1.1",
            region,
            endpoint,
            credentials,
            ca_bundle=environ.get("AWS_CA_BUNDLE") or None,
        )
    )


class SecretStore:
    """Reads the Plaid secret once per TTL and hands out cached credentials in between.

    Example:
        >>> store = SecretStore("plaid/link", ttl_seconds=300)   # doctest: +SKIP
        >>> creds = store.get()                  # one GetSecretValue
        >>> creds is store.get()                 # cached: no second read
        True
        >>> store.get(refresh=True)              # forced read, e.g. after INVALID_API_KEYS
    """

    def __init__(
        self,
        secret_id: str,
        ttl_seconds: int,
        client_factory: Callable[[], Any] = secrets_client,
        clock: Callable[[], float] = time.monotonic,
        span: Span = no_span,
    ) -> None:
        self._secret_id = secret_id
        self._ttl = ttl_seconds
        self._client_factory = client_factory
        self._clock = clock
        self._span = span
        self._client: Any = None
        self._cached: PlaidCredentials | None = None
        self._expires_at = 0.0
        self.reads = 0

    def get(self, refresh: bool = False) -> PlaidCredentials:
        """Cached credentials, or a fresh read when expired, absent or `refresh` is set."""
        if not refresh and self._cached is not None and self._clock() < self._expires_at:
            return self._cached
        self._cached = parse_secret(self.read_secret_string(), self._secret_id)
        self._expires_at = self._clock() + self._ttl
        return self._cached

    @property
    def cached(self) -> PlaidCredentials | None:
        """The credentials of the last successful read, if any; never reads."""
        return self._cached

    def prepare(self) -> None:
        """Create the client now, in Lambda's init phase, instead of on the first request.

        Never raises: init must not fail (a crash loop). Whatever went wrong happens again on
        the first `get`, which maps it to a problem with its cause in the log.
        """
        if self._client is None:
            try:
                self._client = self._client_factory()
            except Exception:  # deferred to get(), see above
                self._client = None

    def forget(self) -> None:
        """Drop the cached credentials and the client (SnapStart restore, tests)."""
        self._cached = None
        self._client = None
        self._expires_at = 0.0

    def read_secret_string(self) -> str | None:
        """One GetSecretValue, uncached and unparsed; read failures raise `Problem`."""
        try:
            if self._client is None:
                self._client = self._client_factory()
            self.reads += 1
            with self._span("secretsmanager") as span:
                try:
                    response = self._client.get_secret_value(SecretId=self._secret_id)
                except Exception as exc:
                    if _service_error_code(exc) is not None:
                        _aws_meta(span, self._client, getattr(exc, "response", {}))
                    raise
                _aws_meta(span, self._client, response)
        except Exception as exc:
            code = _service_error_code(exc)
            if code in _MISCONFIGURED_CODES:
                raise Problem(
                    "MISCONFIGURED",
                    "The service's Plaid credentials are not usable.",
                    cause=f"secret {self._secret_id!r}: {code}: {_MISCONFIGURED_CODES[code]}",
                ) from None
            if code is not None:
                raise _unavailable(f"Secrets Manager answered {code}") from None
            if not _client_failure(exc):
                raise
            # Endpoint unreachable, timeouts, no region or no credentials configured.
            name = type(exc).__name__
            if name in {"NoRegionError", "NoCredentialsError", "PartialCredentialsError"}:
                raise Problem(
                    "MISCONFIGURED",
                    "The service's Plaid credentials are not usable.",
                    cause=f"Secrets Manager client: {name}: {exc}",
                ) from None
            raise _unavailable(f"Secrets Manager unreachable: {name}") from None
        secret_string = response.get("SecretString")
        return secret_string if isinstance(secret_string, str) else None


def _service_error_code(exc: BaseException) -> str | None:
    """The AWS error code when Secrets Manager answered with an error, else None."""
    if isinstance(exc, AwsServiceError):
        return exc.code
    # Only a botocore client can have raised botocore's errors: no import when it is not loaded.
    botocore_errors = sys.modules.get("botocore.exceptions")
    if botocore_errors is not None and isinstance(exc, botocore_errors.ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return None


def _client_failure(exc: BaseException) -> bool:
    """Whether `exc` is the client failing to get an answer (transport, credentials, region)."""
    if isinstance(exc, AwsTransportError | CredentialRetrievalError):
        return True
    botocore_errors = sys.modules.get("botocore.exceptions")
    return botocore_errors is not None and isinstance(exc, botocore_errors.BotoCoreError)


def _aws_meta(span: Any, client: Any, response: Mapping[str, Any]) -> None:
    """What X-Ray records for an AWS call: operation, region, request id, retries, status."""
    if span is None:
        return
    meta = response.get("ResponseMetadata", {})
    span.aws.update(
        operation="GetSecretValue",
        region=getattr(getattr(client, "meta", None), "region_name", None),
        request_id=meta.get("RequestId"),
        retries=meta.get("RetryAttempts", 0),
    )
    if "HTTPStatusCode" in meta:
        span.put_http_meta("status", meta["HTTPStatusCode"])


def _unavailable(cause: str) -> Problem:
    return Problem(
        "UPSTREAM_UNAVAILABLE",
        "The service could not read its credentials; try again shortly.",
        cause=cause,
    )
