"""`linktoken.aws_sigv4` against botocore's `SigV4Auth`, byte for byte, over a table of inputs:
regions of every partition the function may run in, with and without a session token, public
and custom endpoints (ports, paths, IPv6, dot segments), bodies (empty, ASCII, non-ASCII, large)
and times (midnight, a leap day, the turn of a year), for the services later calls will use."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from botocore import auth as botocore_auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from linktoken.aws_credentials import Credentials
from linktoken.aws_sigv4 import host_header, sign_request

REGIONS = [
    "us-east-1",
    "eu-west-3",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-west-1",
    "us-gov-east-1",
]
TOKENS = [None, "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+session/token=="]
ENDPOINTS = [
    None,  # the region's public endpoint
    "http://127.0.0.1:4566",
    "http://LocalHost:4566/prefix",
    "https://example.com:443/a/b/",
    "https://vpce-0a1b.secretsmanager.us-east-1.vpce.amazonaws.com:8443",
    "http://[::1]:9000/x/./y/../z",
    "http://localhost:80/",
]
BODIES = [
    b"",
    b'{"SecretId": "plaid-link-token/prod"}',
    '{"SecretId": "clé/秘密"}'.encode(),  # raw UTF-8, as another serialiser might send it
    b'{"SecretId": "x/\\u00e9"}',  # botocore's own ASCII escapes
    b'{"Items": "' + b"a" * 70_000 + b'"}',
]
TIMES = [
    datetime(2024, 2, 29, 0, 0, 0, tzinfo=UTC),  # leap day, midnight
    datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC),
    datetime(2025, 3, 9, 10, 30, 5, 999_999, tzinfo=UTC),
]
SERVICES = [
    ("secretsmanager", "secretsmanager.GetSecretValue", "application/x-amz-json-1.1"),
    ("dynamodb", "DynamoDB_20120810.PutItem", "application/x-amz-json-1.0"),
    ("kms", "TrentService.Decrypt", "application/x-amz-json-1.1"),
    ("sqs", "AmazonSQS.SendMessage", "application/x-amz-json-1.0"),
]
ACCESS_KEY = "AKIDEXAMPLE00000000"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def url_for(endpoint: str | None, service: str, region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return endpoint or f"https://{service}.{region}.{suffix}/"


def botocore_signed(
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    headers: dict[str, str],
    body: bytes,
    service: str,
    region: str,
    token: str | None,
    now: datetime,
) -> dict[str, str]:
    """What botocore sends: the request's headers after `SigV4Auth.add_auth`, and the host it
    signs (botocore leaves `Host` to the HTTP client)."""
    # botocore reads the time as a naive UTC datetime.
    monkeypatch.setattr(
        botocore_auth, "get_current_datetime", lambda: now.astimezone(UTC).replace(tzinfo=None)
    )
    request = AWSRequest(method="POST", url=url, headers=dict(headers), data=body)
    signer = botocore_auth.SigV4Auth(
        BotoCredentials(ACCESS_KEY, SECRET_KEY, token), service, region
    )
    signer.add_auth(request)
    sent = {name: str(value) for name, value in request.headers.items()}
    sent["Host"] = botocore_auth._host_from_url(url)  # type: ignore[attr-defined]  # botocore's own rule, untyped
    return sent


CASES = list(itertools.product(REGIONS, TOKENS, ENDPOINTS, BODIES, TIMES))


@pytest.mark.parametrize(("service", "target", "content_type"), SERVICES)
def test_every_header_matches_botocore_over_the_table(
    monkeypatch: pytest.MonkeyPatch, service: str, target: str, content_type: str
) -> None:
    mismatches: list[Any] = []
    for region, token, endpoint, body, now in CASES:
        url = url_for(endpoint, service, region)
        headers = {"X-Amz-Target": target, "Content-Type": content_type}
        expected = botocore_signed(monkeypatch, url, headers, body, service, region, token, now)
        ours = sign_request(
            "POST",
            url,
            headers,
            body,
            service=service,
            region=region,
            credentials=Credentials(ACCESS_KEY, SECRET_KEY, token),
            now=now,
        )
        if ours != expected:
            mismatches.append((region, bool(token), endpoint, body[:20], now))
    assert len(CASES) >= 1000
    assert mismatches == []


def test_a_known_signature() -> None:
    """A fixed input with its signature written out (from botocore 1.44's SigV4Auth), so the
    table cannot pass by two signers agreeing on a mistake they share with the test."""
    headers = sign_request(
        "POST",
        "https://secretsmanager.us-east-1.amazonaws.com/",
        {
            "X-Amz-Target": "secretsmanager.GetSecretValue",
            "Content-Type": "application/x-amz-json-1.1",
        },
        b'{"SecretId": "plaid-link-token/prod"}',
        service="secretsmanager",
        region="us-east-1",
        credentials=Credentials(ACCESS_KEY, SECRET_KEY, "token-1"),
        now=datetime(2024, 2, 29, 0, 0, 0, tzinfo=UTC),
    )
    assert headers == {
        "X-Amz-Target": "secretsmanager.GetSecretValue",
        "Content-Type": "application/x-amz-json-1.1",
        "Host": "secretsmanager.us-east-1.amazonaws.com",
        "X-Amz-Date": "20240229T000000Z",
        "X-Amz-Security-Token": "token-1",
        "Authorization": KNOWN_AUTHORIZATION,
    }


KNOWN_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE00000000/20240229/us-east-1/secretsmanager/"
    "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;"
    "x-amz-target, Signature=558510a73f1abdf69d06362c7ebe723e3b48deda09ac3a424e23a7f9b2b41cb5"
)


def test_the_signed_headers_are_what_botocore_signs_for_getsecretvalue() -> None:
    headers = sign_request(
        "POST",
        "https://secretsmanager.us-east-1.amazonaws.com/",
        {
            "X-Amz-Target": "secretsmanager.GetSecretValue",
            "Content-Type": "application/x-amz-json-1.1",
        },
        b"{}",
        service="secretsmanager",
        region="us-east-1",
        credentials=Credentials(ACCESS_KEY, SECRET_KEY),
    )
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-target," in headers["Authorization"]
    assert "X-Amz-Security-Token" not in headers  # no session token, no header
    assert "X-Amz-Content-SHA256" not in headers  # botocore sends none outside S3


def test_a_time_with_an_offset_is_signed_as_utc() -> None:
    args: dict[str, Any] = {
        "service": "kms",
        "region": "eu-west-3",
        "credentials": Credentials(ACCESS_KEY, SECRET_KEY),
    }
    utc = sign_request("POST", "https://kms.eu-west-3.amazonaws.com/", {}, b"", **args,
                       now=datetime(2024, 3, 1, 0, 30, tzinfo=UTC))  # fmt: skip
    paris = sign_request("POST", "https://kms.eu-west-3.amazonaws.com/", {}, b"", **args,
                         now=datetime(2024, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=1))))  # fmt: skip
    assert utc == paris
    assert utc["X-Amz-Date"] == "20240301T003000Z"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        (
            "https://secretsmanager.us-east-1.amazonaws.com/",
            "secretsmanager.us-east-1.amazonaws.com",
        ),
        ("https://Example.COM:443/", "example.com"),
        ("http://example.com:443/", "example.com:443"),
        ("http://user:pw@127.0.0.1:4566/", "127.0.0.1:4566"),
        ("http://[::1]:80/", "[::1]"),
        ("http://[fd00:ec2::23]:8080/", "[fd00:ec2::23]:8080"),
    ],
)
def test_host_header(url: str, host: str) -> None:
    assert host_header(url) == host
    assert botocore_auth._host_from_url(url)  # type: ignore[attr-defined]  # botocore's own rule, untyped == host


def test_a_stale_authorization_header_is_replaced() -> None:
    headers = sign_request(
        "POST",
        "https://kms.us-east-1.amazonaws.com/",
        {"authorization": "AWS4-HMAC-SHA256 stale"},
        b"",
        service="kms",
        region="us-east-1",
        credentials=Credentials(ACCESS_KEY, SECRET_KEY),
    )
    assert [name for name in headers if name.lower() == "authorization"] == ["Authorization"]
    assert "stale" not in headers["Authorization"]


@pytest.mark.parametrize("value", ["  leading and trailing  ", "two  inner   runs", "tab\there"])
def test_header_values_are_trimmed_as_botocore_trims_them(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    url, now = "https://sqs.us-east-1.amazonaws.com/", TIMES[0]
    headers = {"X-Amz-Target": "AmazonSQS.SendMessage", "X-Amz-Custom": value}
    expected = botocore_signed(monkeypatch, url, headers, b"{}", "sqs", "us-east-1", None, now)
    ours = sign_request(
        "POST", url, headers, b"{}", service="sqs", region="us-east-1",
        credentials=Credentials(ACCESS_KEY, SECRET_KEY), now=now,
    )  # fmt: skip
    assert ours == expected
