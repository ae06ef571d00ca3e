"""One AWS JSON-protocol call (Secrets Manager, DynamoDB, KMS, SQS...), signed here and sent
with `requests`, which the function loads for Plaid anyway: no botocore on the Lambda path.

It behaves like the botocore client it replaces, configured as this service configures it:

- TLS roots: `AWS_CA_BUNDLE`, else certifi's (not requests' `REQUESTS_CA_BUNDLE`);
- endpoint: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else the region's public
  endpoint (`https://<prefix>.<region>.amazonaws.com`, `.amazonaws.com.cn` in China);
- 1 s to connect, 2 s per read, 2 attempts in all, the second after botocore's standard-mode
  delay (random, up to 1 s), and only for what standard mode retries: throttling codes, 429,
  500/502/503/504, the transient codes, and transport failures;
- errors as botocore raises them for the caller's purposes: `AwsServiceError` with botocore's
  `ClientError.response` shape (`Error.Code` from `__type`, else `x-amzn-ErrorType`, else the
  status), and transport failures as exceptions named like botocore's
  (`EndpointConnectionError`, `ReadTimeoutError`, ...), so log causes read the same;
- answers carry `ResponseMetadata` (`RequestId` from `x-amzn-RequestId`, `HTTPStatusCode`,
  `RetryAttempts`) for the X-Ray subsegment.

Nothing here logs: neither the request (signed) nor the answer (a secret, for GetSecretValue).
"""

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import requests

from linktoken.aws_credentials import CredentialSource
from linktoken.aws_sigv4 import sign_request

CONNECT_TIMEOUT_S: Final = 1.0
READ_TIMEOUT_S: Final = 2.0
MAX_ATTEMPTS: Final = 2
# botocore.retries.standard: what standard mode retries.
THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES: Final = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
)
RETRIED_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
# Partitions whose public endpoints this module knows; any other region keeps botocore.
_DNS_SUFFIXES: Final = (("cn-", "amazonaws.com.cn"), ("us-gov-", "amazonaws.com"))
_STANDARD_REGION_PREFIXES: Final = (
    "af-", "ap-", "ca-", "eu-", "il-", "me-", "mx-", "sa-", "us-east-", "us-west-",
)  # fmt: skip


class AwsServiceError(Exception):
    """AWS answered with an error. `response` has botocore's ClientError shape; `str()` gives
    the code and status only (a message may quote the request)."""

    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        super().__init__(f"{self.code} ({response['ResponseMetadata'].get('HTTPStatusCode')})")

    @property
    def code(self) -> str:
        return str(self.response["Error"]["Code"])


class AwsTransportError(Exception):
    """No usable answer. Subclasses carry botocore's exception names."""


class EndpointConnectionError(AwsTransportError):
    pass


class ConnectTimeoutError(EndpointConnectionError):
    pass


class ReadTimeoutError(AwsTransportError):
    pass


class ConnectionClosedError(AwsTransportError):
    pass


class SSLError(AwsTransportError):
    pass


class ProxyConnectionError(AwsTransportError):
    pass


class ResponseParserError(AwsTransportError):
    pass


def public_endpoint(prefix: str, region: str) -> str | None:
    """The service's public endpoint in the region, or None for a partition not known here
    (ISO, EUSC): botocore's endpoint rules then decide."""
    for start, suffix in _DNS_SUFFIXES:
        if region.startswith(start):
            return f"https://{prefix}.{region}.{suffix}"
    if region.startswith(_STANDARD_REGION_PREFIXES):
        return f"https://{prefix}.{region}.amazonaws.com"
    return None


def configured_endpoint(service_env_name: str, environ: Mapping[str, str]) -> str | None:
    """The endpoint the environment sets for the service (botocore's service-specific and
    global variables), or None."""
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    return (
        environ.get(f"AWS_ENDPOINT_URL_{service_env_name}")
        or environ.get("AWS_ENDPOINT_URL")
        or None
    )


def usable_endpoint(url: str) -> bool:
    """An http(s) URL with a host: anything else is left to botocore, whose client refuses it
    as it always has (`ValueError: Invalid endpoint`)."""
    from urllib.parse import urlsplit  # noqa: PLC0415 - loaded by requests already

    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
    except ValueError:  # a port that is not a number, a malformed IPv6 address
        return False


@dataclass(frozen=True, slots=True)
class ClientMeta:
    """What callers read off a botocore client's `meta`."""

    region_name: str
    endpoint_url: str


class AwsJsonClient:
    """Calls one service's JSON-protocol operations.

    Example (what `secret_store` does):
        >>> client = AwsJsonClient("secretsmanager", "secretsmanager", "1.1", region,
        ...                        endpoint, credentials)                  # doctest: +SKIP
        >>> client.call("GetSecretValue", {"SecretId": "plaid/link"})   # doctest: +SKIP
    """

    def __init__(
        self,
        signing_name: str,
        target_prefix: str,
        json_version: str,
        region: str,
        endpoint_url: str,
        credentials: CredentialSource,
        *,
        ca_bundle: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.meta = ClientMeta(region, endpoint_url)
        self._signing_name = signing_name
        self._target_prefix = target_prefix
        self._content_type = f"application/x-amz-json-{json_version}"
        self._url = _operation_url(endpoint_url)
        self._credentials = credentials
        self._session = session or requests.Session()
        # botocore verifies with AWS_CA_BUNDLE, else certifi's roots, never requests' own
        # REQUESTS_CA_BUNDLE (set for Plaid): an explicit path keeps requests from using it.
        self._verify = ca_bundle or requests.utils.DEFAULT_CA_BUNDLE_PATH
        self._sleep = sleep
        self._jitter = jitter

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The operation's parsed answer with `ResponseMetadata`; raises `AwsServiceError`,
        an `AwsTransportError` or the credential source's error."""
        body = json.dumps(params).encode()  # botocore's serialisation: ASCII, ", " and ": "
        attempt = 1
        while True:
            try:
                return self._attempt(operation, body, attempt - 1)
            except (AwsServiceError, AwsTransportError) as exc:
                if attempt >= MAX_ATTEMPTS or not _retryable(exc):
                    raise
            # botocore's standard mode: random() * min(2 ** (attempt - 1), 20) seconds.
            self._sleep(self._jitter() * min(2 ** (attempt - 1), 20))
            attempt += 1

    def close(self) -> None:
        self._session.close()

    def _attempt(self, operation: str, body: bytes, retries: int) -> dict[str, Any]:
        headers = sign_request(
            "POST",
            self._url,
            {
                "X-Amz-Target": f"{self._target_prefix}.{operation}",
                "Content-Type": self._content_type,
            },
            body,
            service=self._signing_name,
            region=self.meta.region_name,
            credentials=self._credentials(),
        )
        try:
            response = self._session.post(
                self._url,
                data=body,
                headers=headers,
                timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
                allow_redirects=False,
                verify=self._verify,
                # A truthy auth stops requests from replacing the signature with ~/.netrc's.
                auth=_keep_headers,
            )
        except requests.exceptions.RequestException as exc:
            raise _transport_error(exc) from None
        meta = {
            "RequestId": response.headers.get("x-amzn-RequestId"),
            "HTTPStatusCode": response.status_code,
            "HTTPHeaders": {k.lower(): v for k, v in response.headers.items()},
            "RetryAttempts": retries,
        }
        if 200 <= response.status_code < 300:
            try:
                parsed = json.loads(response.content) if response.content else {}
            except ValueError:
                raise ResponseParserError("the answer is not JSON") from None
            if not isinstance(parsed, dict):
                raise ResponseParserError("the answer is not a JSON object")
            parsed["ResponseMetadata"] = meta
            return parsed
        raise AwsServiceError(_error_response(response, meta))


def _keep_headers(request: Any) -> Any:
    return request


def _operation_url(endpoint_url: str) -> str:
    """botocore's URL for a JSON-protocol operation (request URI `/`): the endpoint's own path,
    or `/` when it has none."""
    from urllib.parse import urlsplit, urlunsplit  # noqa: PLC0415 - loaded by requests already

    parts = urlsplit(endpoint_url)
    return urlunsplit(parts._replace(path=parts.path or "/"))


def _error_response(response: requests.Response, meta: dict[str, Any]) -> dict[str, Any]:
    try:
        doc = json.loads(response.content) if response.content else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    code = (
        doc.get("__type") or response.headers.get("x-amzn-ErrorType") or str(response.status_code)
    )
    code = str(code).split(":", 1)[0].rsplit("#", 1)[-1]
    message = doc.get("message", doc.get("Message", ""))
    return {"Error": {"Code": code, "Message": str(message)}, "ResponseMetadata": meta}


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, AwsTransportError):
        return not isinstance(exc, ResponseParserError)  # botocore retries the rest
    if not isinstance(exc, AwsServiceError):
        return False  # nothing else is raised here; were it, it would not be AWS's to retry
    status = exc.response["ResponseMetadata"].get("HTTPStatusCode")
    return exc.code in THROTTLING_CODES or exc.code in TRANSIENT_CODES or status in RETRIED_STATUSES


def _transport_error(exc: requests.exceptions.RequestException) -> AwsTransportError:
    """requests' exception as botocore names the same failure; the type only, never the text
    (it can hold the URL with a proxy's credentials)."""
    errors = requests.exceptions
    kind: type[AwsTransportError]
    if isinstance(exc, errors.ConnectTimeout):
        kind = ConnectTimeoutError
    elif isinstance(exc, errors.ReadTimeout):
        kind = ReadTimeoutError
    elif isinstance(exc, errors.SSLError):
        kind = SSLError
    elif isinstance(exc, errors.ProxyError):
        kind = ProxyConnectionError
    elif _closed(exc):
        kind = ConnectionClosedError
    else:
        kind = EndpointConnectionError
    return kind(type(exc).__name__)


def _closed(exc: requests.exceptions.RequestException) -> bool:
    """The connection was made, then dropped mid-answer, as opposed to refused."""
    import urllib3.exceptions  # noqa: PLC0415 - loaded with requests

    errors = requests.exceptions
    if isinstance(exc, errors.ChunkedEncodingError | errors.ContentDecodingError):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(exc, errors.ConnectionError) and isinstance(
        reason, urllib3.exceptions.ProtocolError
    )
