"""API Gateway HTTP API (payload format 2.0) in and out: the only module that knows its shape.

Checks run in a fixed order, each with its own status: event shape (400), identity (401),
decoded body size (413), content type (415), JSON (400).
"""

import base64
import binascii
import codecs
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from linktoken.identity import MAX_SUB_LENGTH
from linktoken.problems import Problem

MAX_BODY_BYTES: Final = 16 * 1024
_MAX_ENCODED = (MAX_BODY_BYTES + 2) // 3 * 4  # base64 length of the largest accepted body
_JSON_TYPES: Final = frozenset({"application/json"})
_NO_BODY: Final = frozenset({"GET", "DELETE"})
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
_HOST_NAME: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL}){{1,10}}")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the service needs from an event: the caller and the decoded JSON body."""

    sub: str
    body: dict[str, Any] | None  # decoded JSON object, None for an empty body
    # The API's domain the request came to (requestContext.domainName), when it is a host name.
    domain: str | None = None


def request_id_of(event: Any) -> str | None:
    """API Gateway's request id, if the event has one (the correlation id for everything)."""
    if isinstance(event, Mapping):
        context = event.get("requestContext")
        if isinstance(context, Mapping) and isinstance(context.get("requestId"), str):
            return str(context["requestId"])
    return None


def parse_event(event: Any, method: str = "POST") -> HttpRequest:
    """Validate an HTTP API v2 event of the route's `method` and decode its body (none for
    GET and DELETE: ignored); raise `Problem` at the first fault."""
    if not isinstance(event, Mapping) or event.get("version") != "2.0":
        raise Problem("INVALID_REQUEST", "Not an API Gateway HTTP API (payload 2.0) request.")
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    if (
        not isinstance(context, Mapping)
        or not isinstance(http, Mapping)
        or not request_id_of(event)
    ):
        raise Problem("INVALID_REQUEST", "The event has no requestContext.http/requestId.")
    if http.get("method") != method:
        raise Problem("INVALID_REQUEST", f"This route takes {method} only.")

    sub = _sub(context)
    domain = _domain(context)
    if method in _NO_BODY:
        return HttpRequest(sub, None, domain)
    raw = _body_bytes(event)
    if not raw.strip():
        return HttpRequest(sub, None, domain)
    charset = _charset(_header(event, "content-type"))
    try:
        body = json.loads(raw.decode(charset), object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise Problem("INVALID_REQUEST", f"The body repeats the key {exc.key[:40]!r}.") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem("INVALID_REQUEST", f"The body is not valid JSON: {_brief(exc)}.") from None
    except RecursionError:
        raise Problem("INVALID_REQUEST", "The body's JSON is nested too deeply.") from None
    if not isinstance(body, dict):  # `null` included: only "no body" means "all defaults"
        raise Problem("INVALID_REQUEST", "The body must be a JSON object.")
    return HttpRequest(sub, body, domain)


def path_parameter(event: Mapping[str, Any], name: str) -> str | None:
    """A path parameter API Gateway matched (`/items/{item_id}`), or None."""
    params = event.get("pathParameters")
    value = params.get(name) if isinstance(params, Mapping) else None
    return value if isinstance(value, str) else None


def raw_body(event: Mapping[str, Any]) -> bytes:
    """The body's bytes as the client sent them (base64 decoded); 413 past MAX_BODY_BYTES,
    checked before the body is decoded in full."""
    return _body_bytes(event)


def header(event: Mapping[str, Any], name: str) -> str | None:
    """A request header by lowercase name."""
    return _header(event, name)


def method_of(event: Any) -> str | None:
    """The request's HTTP method, if the event has one."""
    context = event.get("requestContext") if isinstance(event, Mapping) else None
    http = context.get("http") if isinstance(context, Mapping) else None
    method = http.get("method") if isinstance(http, Mapping) else None
    return method if isinstance(method, str) else None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object with each key once: a repeated key is refused, not silently last-wins
    (RFC 7493), so no other parser in the path can read a different request than this one."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _sub(context: Mapping[str, Any]) -> str:
    """The JWT `sub` claim the authorizer verified; the body can never claim an identity."""
    claims: Any = context.get("authorizer")
    for key in ("jwt", "claims"):
        claims = claims.get(key) if isinstance(claims, Mapping) else None
    sub = claims.get("sub") if isinstance(claims, Mapping) else None
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUB_LENGTH:
        raise Problem("UNAUTHENTICATED", "The request carries no usable identity (JWT 'sub').")
    try:
        sub.encode()  # a lone surrogate (direct invokes only) cannot be hashed or sent
    except UnicodeEncodeError:
        raise Problem("UNAUTHENTICATED", "The JWT 'sub' claim is not valid text.") from None
    return sub


def _domain(context: Mapping[str, Any]) -> str | None:
    domain = context.get("domainName")
    if not isinstance(domain, str) or len(domain) > 253 or not _HOST_NAME.fullmatch(domain):
        return None
    if domain.replace(".", "").isdigit():  # an address (a local run), not the API's name
        return None
    return domain.lower()


def _body_bytes(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise Problem("INVALID_REQUEST", "The event body is not a string.")
    if event.get("isBase64Encoded") is True:
        if len(body) > _MAX_ENCODED + 4:
            raise _too_large(len(body) * 3 // 4)
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Problem("INVALID_REQUEST", "The body is not valid base64.") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large(len(raw))
    return raw


def _too_large(size: int) -> Problem:
    return Problem(
        "PAYLOAD_TOO_LARGE", f"The body is about {size} bytes; the limit is {MAX_BODY_BYTES}."
    )


def _header(event: Mapping[str, Any], name: str) -> str | None:
    headers = event.get("headers")
    if not isinstance(headers, Mapping):
        return None
    for key, value in headers.items():  # API Gateway lowercases names; direct invokes may not
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def _charset(content_type: str | None) -> str:
    """The charset to decode with; 415 unless the media type is JSON (or absent)."""
    if content_type is None or not content_type.strip():
        return "utf-8"
    media_type, *params = (part.strip() for part in content_type.split(";"))
    if media_type.lower() not in _JSON_TYPES:
        raise Problem("UNSUPPORTED_MEDIA_TYPE", "Send the body as application/json.")
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or "utf-8"
            try:
                info = codecs.lookup(charset)
            except (LookupError, ValueError):  # ValueError: a NUL or a lone surrogate in the name
                info = None
            # Bytes-to-bytes codecs (base64, rot13, zlib...) are codecs but not charsets.
            if info is None or not getattr(info, "_is_text_encoding", True):
                raise Problem("UNSUPPORTED_MEDIA_TYPE", f"Unknown charset {charset[:40]!r}.")
            return charset
    return "utf-8"


def _brief(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0][:120]


def respond(
    status: int, body: Mapping[str, Any], extra_headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An HTTP API v2 Lambda response; problems get application/problem+json."""
    content_type = "application/problem+json" if status >= 400 else "application/json"
    return {
        "statusCode": status,
        "headers": {
            "Content-Type": content_type,
            "Cache-Control": "no-store",
            **(extra_headers or {}),
        },
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }
