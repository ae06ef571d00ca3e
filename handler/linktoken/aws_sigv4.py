"""AWS Signature Version 4 for one request, with the standard library only.

botocore signs with the same algorithm, but loading it (its service models, its session) costs
more cold start than the one call per container it signs (docs/performance.md). This module
signs what the function's AWS calls send: a POST of a JSON-protocol body (`X-Amz-Target`,
`Content-Type: application/x-amz-json-1.x`), for any service, region and endpoint. The headers
it signs are exactly those botocore's `SigV4Auth` signs for such a request (`content-type`,
`host`, `x-amz-date`, `x-amz-security-token` when there is a session token, `x-amz-target`;
botocore adds no `x-amz-content-sha256` outside S3), and tests compare the two byte for byte.

    headers = sign_request(
        "POST", "https://secretsmanager.us-east-1.amazonaws.com/",
        {"X-Amz-Target": "secretsmanager.GetSecretValue",
         "Content-Type": "application/x-amz-json-1.1"},
        body, service="secretsmanager", region="us-east-1", credentials=creds,
    )
"""

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, Protocol
from urllib.parse import quote, urlsplit

ALGORITHM: Final = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class SigningCredentials(Protocol):
    """What signing needs: a key pair and, for temporary credentials, a session token."""

    @property
    def access_key(self) -> str: ...
    @property
    def secret_key(self) -> str: ...
    @property
    def token(self) -> str | None: ...


def host_header(url: str) -> str:
    """The `Host` value botocore signs: the lowercase host, `[...]` around IPv6, and the port
    unless it is the scheme's default; never userinfo."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    service: str,
    region: str,
    credentials: SigningCredentials,
    now: datetime | None = None,
) -> dict[str, str]:
    """`headers` plus `Host`, `X-Amz-Date`, `X-Amz-Security-Token` (with a session token) and
    `Authorization`: every header the request must send. `headers` must not hold hop-by-hop or
    `User-Agent` headers (they would be signed here; botocore leaves them out)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    signed = {name: value for name, value in headers.items() if name.lower() != "authorization"}
    signed["Host"] = host_header(url)
    signed["X-Amz-Date"] = amz_date
    if credentials.token:
        signed["X-Amz-Security-Token"] = credentials.token

    canonical = {name.lower(): " ".join(value.split()) for name, value in signed.items()}
    names = sorted(canonical)
    signed_names = ";".join(names)
    parts = urlsplit(url)
    canonical_request = "\n".join(
        [
            method.upper(),
            quote(_normalized_path(parts.path), safe="/~"),
            _canonical_query(parts.query),
            "".join(f"{name}:{canonical[name]}\n" for name in names),
            signed_names,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{credentials.secret_key}".encode(), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return signed


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _normalized_path(path: str) -> str:
    """botocore's `normalize_url_path`: `.` and `..` segments resolved, `/` when empty, a
    trailing slash kept."""
    if not path:
        return "/"
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
        else:
            segments.append(segment)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    return normalized


def _canonical_query(query: str) -> str:
    """The query as botocore signs a URL's own query string: pairs sorted, values as sent."""
    if not query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return "&".join(f"{key}={value}" for key, value in pairs)
