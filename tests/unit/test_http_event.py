"""`linktoken.http_event`: event shape, check order, base64 bodies, content types, identity.

Unit tests call `parse_event`; the order and "never an exception" tests go through the real
`app.lambda_handler`, since that is what API Gateway and direct invokes reach, with a runtime
for requests answered before anything upstream is asked (its secret store and Plaid fail
loudly if used). tests/integration/test_http_event.py has those that create a token.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.doubles.lambda_runtime import LambdaContext
from linktoken.http_event import MAX_BODY_BYTES, parse_event
from linktoken.identity import MAX_SUB_LENGTH
from linktoken.problems import Problem
from tests.conftest import body_of, make_event
from tests.helpers_app import closed_port, offline_runtime

OK_JSON = '{"platform": "web"}'


def padded(size: int, head: str = '{"platform": "web"') -> str:
    """Valid JSON (when `head` is) of exactly `size` UTF-8 bytes: whitespace before the brace."""
    return head + " " * (size - len(head.encode()) - 1) + "}"


def with_raw_bytes(raw: bytes, content_type: str | None = "application/json") -> dict[str, Any]:
    event = make_event(content_type=content_type)
    event["body"] = base64.b64encode(raw).decode()
    event["isBase64Encoded"] = True
    return event


def with_headers(headers: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    event = make_event(content_type=None, **kwargs)
    event["headers"] = headers
    return event


@pytest.fixture(scope="module")
def offline() -> Iterator[Any]:
    with closed_port() as port:
        yield offline_runtime(port)


@pytest.fixture
def handler(offline: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    """The real `app.lambda_handler`, for requests answered before anything upstream is asked."""
    import app

    monkeypatch.setattr(app, "CONTAINER", offline)

    def call(event: Any, context: LambdaContext | None = None) -> dict[str, Any]:
        response: dict[str, Any] = app.lambda_handler(event, context or LambdaContext())
        return response

    return call


def problem_of(event: Any) -> Problem:
    with pytest.raises(Problem) as raised:
        parse_event(event)
    return raised.value


# --- the order of the checks ------------------------------------------------------------------


def violating(
    *, identity: bool = False, size: bool = False, media: bool = False, json_: bool = False
) -> dict[str, Any]:
    """A plain-text event that breaks the named rules (and only those)."""
    text = '{"platform": ' if json_ else OK_JSON
    if size:
        text += " " * (MAX_BODY_BYTES + 1 - len(text))
    return make_event(
        raw_body=text,
        sub=None if identity else "user-0001",
        content_type="text/plain" if media else "application/json",
    )


def as_base64(event: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    return event


ORDER_CASES = [
    (dict(identity=True, size=True, media=True, json_=True), 401, "UNAUTHENTICATED"),
    (dict(identity=True), 401, "UNAUTHENTICATED"),
    (dict(size=True, media=True, json_=True), 413, "PAYLOAD_TOO_LARGE"),
    (dict(size=True), 413, "PAYLOAD_TOO_LARGE"),
    (dict(media=True, json_=True), 415, "UNSUPPORTED_MEDIA_TYPE"),
    (dict(json_=True), 400, "INVALID_REQUEST"),
]


@pytest.mark.parametrize("encode", [False, True], ids=["plain", "base64"])
@pytest.mark.parametrize(("rules", "status", "code"), ORDER_CASES)
def test_checks_run_in_order_identity_size_media_json(
    handler: Any, rules: dict[str, bool], status: int, code: str, encode: bool
) -> None:
    event = violating(**rules)
    response = handler(as_base64(event) if encode else event)

    body = body_of(response)
    assert (response["statusCode"], body["code"]) == (status, code)
    assert body["request_id"] == event["requestContext"]["requestId"]


def test_unknown_charset_is_415_before_the_json_is_read(handler: Any) -> None:
    event = make_event(raw_body="{not json", content_type="application/json; charset=klingon")
    assert handler(event)["statusCode"] == 415


def test_event_shape_is_checked_before_identity(handler: Any) -> None:
    event = make_event({}, sub=None)
    event["requestContext"]["http"]["method"] = "GET"
    assert body_of(handler(event))["code"] == "INVALID_REQUEST"


# --- base64 bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["{}", OK_JSON, '{"platform": "ios", "language": "fr"}', padded(MAX_BODY_BYTES)]
)
def test_base64_body_is_handled_like_plain(text: str) -> None:
    plain = make_event(raw_body=text)
    encoded = make_event(raw_body=text, base64_body=True)
    assert encoded["isBase64Encoded"] is True

    assert parse_event(encoded).body == parse_event(plain).body == json.loads(text)


@pytest.mark.parametrize("encoded_size", [MAX_BODY_BYTES * 2, 1_000_000])
def test_base64_far_over_the_limit_is_413(encoded_size: int) -> None:
    event = make_event()
    event["body"] = "A" * encoded_size
    event["isBase64Encoded"] = True
    assert problem_of(event).code == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(
    ("body", "encoded", "why"),
    [
        ("not base64!", True, "base64"),
        ("e30", True, "base64"),  # '{}' without its padding
        ("e3\n0=", True, "base64"),
        ("e30=e30=", True, "base64"),
        ("%7B%7D", True, "base64"),
        ({"platform": "web"}, False, "string"),
        (["{}"], False, "string"),
        (42, False, "string"),
        (b"{}", False, "string"),
        (True, True, "string"),
    ],
)
def test_invalid_base64_or_a_body_that_is_not_a_string_is_400(
    body: Any, encoded: bool, why: str
) -> None:
    event = make_event()
    event["body"], event["isBase64Encoded"] = body, encoded
    problem = problem_of(event)
    assert problem.code == "INVALID_REQUEST"
    assert why in problem.detail


def test_invalid_base64_through_the_handler(handler: Any) -> None:
    event = make_event()
    event["body"], event["isBase64Encoded"] = "%%%", True
    assert body_of(handler(event))["code"] == "INVALID_REQUEST"


# --- size of plain bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (padded(MAX_BODY_BYTES), None),
        (padded(MAX_BODY_BYTES + 1), "PAYLOAD_TOO_LARGE"),
        # under 16 Ki characters, over 16 KiB of UTF-8: the limit counts bytes
        ('{"x": "' + "é" * 8200 + '"}', "PAYLOAD_TOO_LARGE"),
    ],
)
def test_plain_body_size_counts_utf8_bytes(text: str, code: str | None) -> None:
    event = make_event(raw_body=text)
    if code is None:
        assert parse_event(event).body == json.loads(text)
    else:
        assert problem_of(event).code == code


# --- content types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "APPLICATION/JSON",
        "Application/Json ; Charset=utf-8",
        "application/json; charset=",
        "application/json; boundary=x",
        "",
        None,
    ],
)
def test_json_content_types_are_accepted(content_type: str | None) -> None:
    event = make_event(raw_body=OK_JSON, content_type=content_type)
    assert parse_event(event).body == {"platform": "web"}


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/problem+json",
        "application/json; charset=klingon",
        "application/json; charset=utf-9",
    ],
)
def test_other_content_types_are_415(content_type: str) -> None:
    problem = problem_of(make_event(raw_body=OK_JSON, content_type=content_type))
    assert (problem.code, problem.status) == ("UNSUPPORTED_MEDIA_TYPE", 415)


@pytest.mark.parametrize("charset", ["base64", "hex", "rot13", "zlib"])
def test_charset_of_a_non_text_codec_is_415(handler: Any, charset: str) -> None:
    event = make_event(raw_body=OK_JSON, content_type=f"application/json; charset={charset}")
    assert body_of(handler(event))["code"] == "UNSUPPORTED_MEDIA_TYPE"


LATIN1_BODY = '{"clé": 1}'.encode("latin-1")  # b'{"cl\xe9": 1}', not valid UTF-8


def test_latin1_charset_decodes_the_body() -> None:
    event = with_raw_bytes(LATIN1_BODY, "application/json; charset=latin-1")
    assert parse_event(event).body == {"clé": 1}


def test_same_bytes_without_latin1_charset_are_not_json() -> None:
    problem = problem_of(with_raw_bytes(LATIN1_BODY, "application/json"))
    assert problem.code == "INVALID_REQUEST"


def test_latin1_body_reaches_validation_decoded(handler: Any) -> None:
    event = with_raw_bytes(LATIN1_BODY, "application/json; charset=iso-8859-1")
    body = body_of(handler(event))
    assert body["code"] == "INVALID_REQUEST"
    assert "clé" in body["detail"]  # the unknown field, decoded with the declared charset


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/xml", "application/json; charset=klingon"]
)
@pytest.mark.parametrize(
    ("body", "encoded"), [(None, False), ("", False), ("  \n ", False), ("", True), ("ICAg", True)]
)
def test_empty_body_with_any_content_type_means_defaults(
    content_type: str | None, body: str | None, encoded: bool
) -> None:
    event = make_event(content_type=content_type)
    event["body"], event["isBase64Encoded"] = body, encoded
    assert parse_event(event).body is None


@pytest.mark.parametrize("name", ["Content-Type", "CONTENT-TYPE", "content-type", "cOnTeNt-TyPe"])
def test_header_names_are_case_insensitive(name: str) -> None:
    rejected = with_headers({name: "text/plain"}, raw_body=OK_JSON)
    assert problem_of(rejected).code == "UNSUPPORTED_MEDIA_TYPE"

    latin1 = with_raw_bytes(LATIN1_BODY, content_type=None)
    latin1["headers"] = {name: "application/json; charset=latin-1"}
    assert parse_event(latin1).body == {"clé": 1}


@pytest.mark.parametrize("headers", [None, [], "content-type: text/plain", {"content-type": 7}])
def test_unusable_headers_mean_no_content_type(headers: Any) -> None:
    assert parse_event(with_headers(headers, raw_body=OK_JSON)).body == {"platform": "web"}


# --- events that are not HTTP API v2 requests -------------------------------------------------


V1_EVENT = {
    "version": "1.0",
    "resource": "/link-token",
    "path": "/link-token",
    "httpMethod": "POST",
    "headers": {"content-type": "application/json"},
    "requestContext": {"requestId": "v1-request-id", "httpMethod": "POST", "stage": "prod"},
    "body": "{}",
    "isBase64Encoded": False,
}


def v2(**changes: Any) -> dict[str, Any]:
    event = make_event({})
    event["requestContext"]["requestId"] = "v2-request-id"
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = event
        for key in parents:
            target = target[key]
        if value is _DROP:
            del target[leaf]
        else:
            target[leaf] = value
    return event


_DROP = object()
AWS_REQUEST_ID = "lambda-aws-request-id"

NOT_HTTP_API_V2 = [
    pytest.param(None, AWS_REQUEST_ID, id="None"),
    pytest.param([], AWS_REQUEST_ID, id="empty-list"),
    pytest.param([make_event({})], AWS_REQUEST_ID, id="list-of-events"),
    pytest.param("POST /link-token", AWS_REQUEST_ID, id="string"),
    pytest.param(42, AWS_REQUEST_ID, id="number"),
    pytest.param({}, AWS_REQUEST_ID, id="empty-dict"),
    pytest.param(V1_EVENT, "v1-request-id", id="rest-api-v1"),
    pytest.param({k: v for k, v in V1_EVENT.items() if k != "version"}, "v1-request-id", id="v1-no-version"),
    pytest.param(v2(version="1.0"), "v2-request-id", id="version-1.0"),
    pytest.param(v2(version=2.0), "v2-request-id", id="version-number"),
    pytest.param(v2(requestContext=_DROP), AWS_REQUEST_ID, id="no-requestContext"),
    pytest.param(v2(requestContext="ctx"), AWS_REQUEST_ID, id="requestContext-string"),
    pytest.param(v2(requestContext__http=_DROP), "v2-request-id", id="no-http"),
    pytest.param(v2(requestContext__requestId=_DROP), AWS_REQUEST_ID, id="no-requestId"),
    pytest.param(v2(requestContext__requestId=123), AWS_REQUEST_ID, id="requestId-number"),
    pytest.param(v2(requestContext__http__method="GET"), "v2-request-id", id="GET"),
    pytest.param(v2(requestContext__http__method="OPTIONS"), "v2-request-id", id="OPTIONS"),
    pytest.param(v2(requestContext__http__method=_DROP), "v2-request-id", id="no-method"),
]  # fmt: skip


@pytest.mark.parametrize(("event", "request_id"), NOT_HTTP_API_V2)
def test_not_an_http_api_v2_request_is_a_400_problem(
    handler: Any, output: Any, event: Any, request_id: str
) -> None:
    response = handler(copy.deepcopy(event), LambdaContext(aws_request_id=AWS_REQUEST_ID))

    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"] == "application/problem+json"
    body = body_of(response)
    assert (body["code"], body["retryable"], body["request_id"]) == (
        "INVALID_REQUEST",
        False,
        request_id,
    )
    [line] = output.logs("link_token_failed")
    assert line["error_code"] == "INVALID_REQUEST"


# --- the body must be a string ----------------------------------------------------------------


def test_body_that_is_not_a_string_through_the_handler(handler: Any) -> None:
    event = make_event()
    event["body"] = {"platform": "web"}  # a direct invoke that forgot to serialise
    assert body_of(handler(event))["code"] == "INVALID_REQUEST"


# --- the identity claim -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "sub", ["u", "a" * MAX_SUB_LENGTH, "ada@example.com", " padded ", "ü" * MAX_SUB_LENGTH]
)
def test_usable_sub_is_kept_as_is(sub: str) -> None:
    assert parse_event(make_event({}, sub=sub)).sub == sub


def claims_event(authorizer: Any) -> dict[str, Any]:
    event = make_event({})
    event["requestContext"]["authorizer"] = authorizer
    return event


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(make_event({}, sub="a" * (MAX_SUB_LENGTH + 1)), id="too-long"),
        pytest.param(make_event({}, sub=""), id="empty"),
        pytest.param(make_event({}, sub=" \t\n"), id="blank"),
        pytest.param(make_event({}, sub=None), id="absent"),
        pytest.param(claims_event({"jwt": {"claims": {"sub": 12345}}}), id="number"),
        pytest.param(claims_event({"jwt": {"claims": {"sub": ["u1"]}}}), id="list"),
        pytest.param(claims_event({"jwt": {"claims": {"sub": None}}}), id="null"),
        pytest.param(claims_event({"jwt": {"claims": "sub=u1"}}), id="claims-string"),
        pytest.param(claims_event({"jwt": None}), id="jwt-null"),
        pytest.param(claims_event({"lambda": {"sub": "u1"}}), id="lambda-authorizer"),
        pytest.param(claims_event(None), id="no-authorizer"),
        pytest.param(make_event({}, sub="user-\ud800"), id="lone-surrogate"),
    ],
)
def test_unusable_sub_is_401(event: dict[str, Any]) -> None:
    problem = problem_of(event)
    assert (problem.code, problem.status) == ("UNAUTHENTICATED", 401)


def test_sub_in_the_body_is_not_an_identity(handler: Any) -> None:
    response = handler(make_event({"sub": "someone-else"}, sub=None))
    assert response["statusCode"] == 401


# --- the JSON body never turns into a 500 -----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"platform": 1}',
        '{"platform": null}',
        '{"language": ["en"]}',
        '{"language": 5}',
        '{"products": "auth"}',
        '{"products": [1]}',
        '{"products": [["auth"]]}',
        '{"products": null}',
        "null",  # not "no body": only an empty body means "all defaults"
        '"web"',
        "3",
        "[]",
        '{"platform": "web"} {"platform": "ios"}',
        "NaN",
        "1" * 5000,  # over Python's int digit limit
    ],
)
def test_wrong_types_and_odd_json_are_400(handler: Any, text: str) -> None:
    response = handler(make_event(raw_body=text))
    assert (response["statusCode"], body_of(response)["code"]) == (400, "INVALID_REQUEST")


@pytest.mark.parametrize("text", ['{"platform": ["web"]}', '{"platform": {"os": "web"}}'])
def test_unhashable_platform_is_400(handler: Any, text: str) -> None:
    response = handler(make_event(raw_body=text))
    assert (response["statusCode"], body_of(response)["code"]) == (400, "INVALID_REQUEST")


@pytest.mark.parametrize("encode", [False, True], ids=["plain", "base64"])
def test_deeply_nested_json_is_400(handler: Any, encode: bool) -> None:
    response = handler(make_event(raw_body="[" * 16_000, base64_body=encode))
    assert (response["statusCode"], body_of(response)["code"]) == (400, "INVALID_REQUEST")
