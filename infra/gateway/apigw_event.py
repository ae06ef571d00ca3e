"""API Gateway HTTP API (payload format 2.0) in front of a Lambda, as `make serve` plays it:
an HTTP request becomes the event API Gateway would build, the function's result becomes the
HTTP response API Gateway would send, and API Gateway's own answers (404, 401, 500, ...) are
its fixed `{"message": ...}` documents.

Event rules (AWS "Working with AWS Lambda proxy integrations for HTTP APIs", format 2.0):
`routeKey` (top level and in `requestContext`) is the matched route's, "DELETE /items/{item_id}",
while `rawPath` and `requestContext.http.path` are the request's own path; `pathParameters`
holds the route's path variables, decoded (apigw_routes.py), and is absent for a route without;
header names lower-cased and repeated headers joined with commas; X-Forwarded-For/-Port/-Proto
and X-Amzn-Trace-Id added; the Cookie header moved to
`cookies`; `queryStringParameters` decoded, repeated keys joined with commas; absent keys left
out, not null; a body that is not text is base64-encoded. Result rules: a dict with
`statusCode` is used as given (`cookies` become Set-Cookie headers, `isBase64Encoded` bodies are
decoded); any other valid JSON result is a 200 `application/json` body. A status that HTTP
forbids a body (1xx, 204, 304) is sent without one, and without Content-Length (RFC 9110 8.6).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from infra.doubles.lambda_runtime import trace_header

API_ID = "local"
ACCOUNT_ID = "000000000000"
# Media types API Gateway passes as text; every other body arrives base64-encoded.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
_TEXT_SUFFIXES = ("+json", "+xml")
_TEXT_EXACT = {"application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class IncomingRequest:
    """One HTTP request as it reached the server, headers in arrival order."""

    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"
    server_port: int = 443
    request_id: str = field(default_factory=lambda: new_request_id())  # noqa: PLW0108 - defined below
    time_epoch_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def header(self, name: str) -> str | None:
        """A header's value, repeated headers joined with commas (as API Gateway joins them)."""
        values = [value for key, value in self.headers if key.lower() == name]
        return ",".join(values) if values else None


@dataclass
class HttpResponse:
    """What goes back to the client."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


def new_request_id() -> str:
    """A request id shaped like API Gateway's (16 base64 characters)."""
    return base64.b64encode(secrets.token_bytes(11)).decode()


def gateway_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    """One of API Gateway's own answers, e.g. 404 {"message":"Not Found"}."""
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return HttpResponse(
        status, [("content-type", "application/json"), *(headers or {}).items()], body
    )


def allows_body(status: int) -> bool:
    """False for the statuses whose responses end with their head: 1xx, 204, 304."""
    return not (100 <= status < 200 or status in {204, 304})


def is_text(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith(_TEXT_TYPES) or media.endswith(_TEXT_SUFFIXES) or media in _TEXT_EXACT


def build_event(
    request: IncomingRequest,
    claims: Mapping[str, str] | None,
    route_key: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The payload 2.0 event API Gateway sends the function for this request, selected by the
    route `route_key` ("DELETE /items/{item_id}") with these path parameters. Without a
    route key, the route is the request's own method and path (a route without variables).
    `claims` None: a route without an authorizer, whose requestContext has no `authorizer`."""
    route_key = route_key or f"{request.method} {request.raw_path}"
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    _add_gateway_headers(headers, request)
    method = request.method
    when = time.gmtime(request.time_epoch_ms / 1000)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    host = re.sub(r":\d+$", "", headers.get("host", "127.0.0.1"))  # a domain name: no port
    jwt = {"claims": dict(claims or {}), "scopes": None}
    authorizer = {} if claims is None else {"authorizer": {"jwt": jwt}}
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        **authorizer,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0],
        "http": {
            "method": method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request.request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", when),
        "timeEpoch": request.time_epoch_ms,
    }
    if request.body:
        if is_text(headers.get("content-type")):
            try:
                event["body"] = request.body.decode("utf-8")
                event["isBase64Encoded"] = False
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(request.body).decode()
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


def _add_gateway_headers(headers: dict[str, str], request: IncomingRequest) -> None:
    """What API Gateway adds on the way in: forwarding headers and an X-Ray trace id."""
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = (
        f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip
    )
    headers["x-forwarded-port"] = str(request.server_port)
    headers["x-forwarded-proto"] = "http"
    if "x-amzn-trace-id" not in headers:
        epoch = request.time_epoch_ms // 1000
        headers["x-amzn-trace-id"] = trace_header(epoch_s=epoch, parent=False)


class BadLambdaResponse(ValueError):
    """The function returned something API Gateway cannot turn into a response (a 500)."""


def to_http_response(result: Any) -> HttpResponse:
    """The HTTP response API Gateway makes of the function's result."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # Format 2.0 infers a response from any other JSON value.
        body = json.dumps(result).encode()
        return HttpResponse(200, [("content-type", "application/json")], body)
    status = result["statusCode"]
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise BadLambdaResponse(f"statusCode {status!r} is not an HTTP status")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name).lower(), _header_value(value)))
    for cookie in result.get("cookies") or []:
        headers.append(("set-cookie", str(cookie)))
    raw = result.get("body")
    if raw is None:
        body = b""
    elif not isinstance(raw, str):
        body = json.dumps(raw).encode()
    elif result.get("isBase64Encoded") is True:
        try:
            body = base64.b64decode(raw, validate=True)
        except ValueError as exc:
            raise BadLambdaResponse("isBase64Encoded body is not base64") from exc
    else:
        body = raw.encode()
    if not allows_body(status):  # a 204's body cannot travel: HTTP ends the message at its head
        body = b""
    if not any(name == "content-type" for name, _ in headers) and body:
        headers.append(("content-type", "application/json"))
    return HttpResponse(status, headers, body)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
