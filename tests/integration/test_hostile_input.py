"""Hostile input, property-based: whatever an event carries, the answer is a documented problem
or a link token made only of configured values, and no bad request reaches Plaid.

Every event goes through the real `app.lambda_handler`, with moto's Secrets Manager and the
loopback Plaid stand-in behind it, so a request that wrongly got through would be seen arriving
at the stand-in. The strategies cover bodies (any JSON, wrong types, unknown fields, duplicate
keys, deep nesting, giant bodies, invalid UTF-8, lone surrogates, non-string bodies), base64
flags (valid, corrupt, truthy non-booleans), content types and charsets, headers (any case,
not a mapping, hostile names such as Host or PLAID-SECRET), event shapes and identity claims.

Examples per property: HOSTILE_EXAMPLES (default 200, the CI profile; the whole file runs in
well under a minute on two cores). A deeper run: HOSTILE_EXAMPLES=5000 pytest
tests/integration/test_hostile_input.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from linktoken.http_event import MAX_BODY_BYTES
from linktoken.plaid_values import LANGUAGES, PLATFORMS
from linktoken.problems import PROBLEM_TYPE_BASE
from tests.conftest import make_event

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "200"))
WEBHOOK = "https://hooks.example.com/plaid"
# What the service is configured with (conftest's service_env, plus a webhook).
CONFIGURED = {
    "redirect_uri": "https://app.example.com/oauth",
    "android_package_name": "com.example.app",
    "webhook": WEBHOOK,
    "client_name": "Test App",
    "country_codes": ["US"],
}
PRODUCTS = ("transactions", "auth")
PLAID_FIELDS = {
    "client_name", "language", "country_codes", "user", "products", "webhook", "redirect_uri",
    "android_package_name",
}  # fmt: skip

PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written to the work tree; failures print their example
    derandomize=os.environ.get("CI") == "true",  # CI: the same examples every run
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the fixtures are reset by hand per example
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def documented_problems() -> dict[str, tuple[int, bool]]:
    """docs/errors.md's table, the contract an app relies on: code -> (status, retryable)."""
    table = (ROOT / "docs/errors.md").read_text()
    rows = re.findall(r"^\| (\d{3}) \| `([A-Z_]+)` \| (yes|no) \|", table, flags=re.MULTILINE)
    return {code: (int(status), retryable == "yes") for status, code, retryable in rows}


DOCUMENTED = documented_problems()
# The request's own faults: 4xx and not worth retrying (429 RATE_LIMITED is Plaid's, not the app's).
CLIENT_ERRORS = {code for code, (status, retry) in DOCUMENTED.items() if status < 500 and not retry}


@pytest.fixture
def service_env(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """conftest's configuration plus a webhook, so a body could try to replace every URL."""
    monkeypatch.setenv("PLAID_WEBHOOK_URL", WEBHOOK)
    return {**service_env, "PLAID_WEBHOOK_URL": WEBHOOK}


# --- strategies ---------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities included: json.dumps writes them, Python reads them
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
# Names a body might use to steer the request: the user, URLs, the host, credentials.
STEERING_FIELDS = (
    "user", "client_user_id", "user_id", "sub", "redirect_uri", "android_package_name", "webhook",
    "base_url", "plaid_base_url", "PLAID_BASE_URL", "host", "url", "plaid_env", "environment",
    "client_id", "secret", "client_name", "country_codes", "access_token", "Platform",
    "PRODUCTS", "language ", "__proto__", "",
)  # fmt: skip
STEERING_VALUES = (
    "https://evil.example", "http://127.0.0.1:1/", "attacker", {"client_user_id": "attacker"},
    "com.evil.app", "sandbox.plaid.com.evil.example", "en\r\nHost: evil.example",
)  # fmt: skip

platforms = st.sampled_from(sorted(PLATFORMS))
products = st.lists(st.sampled_from(PRODUCTS), min_size=1, max_size=3)
languages = st.sampled_from(sorted(LANGUAGES))
valid_options = st.fixed_dictionaries(
    {}, optional={"platform": platforms, "products": products, "language": languages}
)
# A field gets a valid value, any JSON, or a value crafted to steer.
field_values = {
    "platform": platforms | json_values | st.sampled_from(STEERING_VALUES),
    "products": products | json_values | st.lists(st.sampled_from(STEERING_VALUES), max_size=2),
    "language": languages | json_values | st.sampled_from(STEERING_VALUES),
}
mixed_options = st.fixed_dictionaries({}, optional=field_values)
unknown_fields = st.dictionaries(
    st.sampled_from(STEERING_FIELDS) | st.text(max_size=12),
    json_values | st.sampled_from(STEERING_VALUES),
    max_size=3,
)


@st.composite
def option_bodies(draw: st.DrawFn) -> str:
    """A JSON object of the service's fields (any values), sometimes with unknown fields."""
    body = draw(mixed_options)
    if draw(st.booleans()):
        body.update(draw(unknown_fields))
    return json.dumps(body)


@st.composite
def duplicate_key_bodies(draw: st.DrawFn) -> str:
    """A JSON object that names one key twice (the values may agree or differ)."""
    key = draw(st.sampled_from(["platform", "products", "language", "user"]))
    first, second = draw(json_values), draw(json_values)
    return (
        "{"
        + f"{json.dumps(key)}: {json.dumps(first)}, {json.dumps(key)}: {json.dumps(second)}"
        + "}"
    )


@st.composite
def deep_bodies(draw: st.DrawFn) -> str:
    """Arrays or objects nested up to far beyond Python's recursion limit (and the body limit)."""
    depth = draw(st.integers(min_value=1, max_value=12_000))
    opening, closing = draw(st.sampled_from([("[", "]"), ('{"platform":', "}")]))
    return opening * depth + '"web"' + closing * depth


@st.composite
def giant_bodies(draw: st.DrawFn) -> str:
    """Valid JSON just over, or far over, the body limit."""
    size = draw(st.integers(min_value=MAX_BODY_BYTES + 1, max_value=MAX_BODY_BYTES * 8))
    head = '{"platform": "web"'
    return head + " " * (size - len(head) - 1) + "}"


text_bodies = st.one_of(
    option_bodies(),
    json_values.map(json.dumps),
    duplicate_key_bodies(),
    deep_bodies(),
    giant_bodies(),
    st.text(max_size=200),  # anything at all
    st.just('{"language": "\ud800"}'),  # a lone surrogate, raw
    st.just('{"language": "\\udc80"}'),  # and escaped
    st.just(""),
    st.just("   "),
)


@st.composite
def body_fields(draw: st.DrawFn) -> dict[str, Any]:
    """`body` and `isBase64Encoded` as an event may carry them."""
    kind = draw(st.sampled_from(["plain", "base64", "bytes", "corrupt-base64", "not-a-string"]))
    if kind == "not-a-string":
        return {
            "body": draw(json_values.filter(lambda v: not isinstance(v, str) and v is not None))
        }
    if kind == "bytes":  # arbitrary bytes, invalid UTF-8 most of the time
        raw = draw(st.binary(max_size=200))
        return {"body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
    text = draw(text_bodies)
    if kind == "plain":
        flag = draw(st.sampled_from([False, None, "false", "true", 1, 0, "absent"]))
        fields: dict[str, Any] = {"body": text}
        if flag != "absent":
            fields["isBase64Encoded"] = flag
        return fields
    encoded = base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()
    if kind == "corrupt-base64":
        cut = draw(st.integers(min_value=0, max_value=len(encoded)))
        encoded = encoded[:cut] + draw(st.sampled_from(["!", "=", "*", "\n", "é", "==="]))
    return {"body": encoded, "isBase64Encoded": True}


MEDIA_TYPES = (
    "application/json", "Application/JSON", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", "application/json-patch+json", "*/*", "",
)  # fmt: skip
CHARSETS = (
    "utf-8", "UTF-8", '"utf-8"', "utf-16", "utf-32-le", "latin-1", "ascii", "cp1252",
    "rot13", "base64", "zlib", "hex", "x-unknown", "", "utf-8\x00",
)  # fmt: skip
content_types = st.one_of(
    st.none(),
    st.sampled_from(MEDIA_TYPES),
    st.builds(
        lambda media, charset: f"{media}; charset={charset}",
        st.sampled_from(MEDIA_TYPES),
        st.sampled_from(CHARSETS),
    ),
    st.text(max_size=40),
    st.integers() | st.lists(st.text(max_size=5), max_size=2),  # not a string at all
)
HOSTILE_HEADERS = (
    "host", "x-forwarded-host", "x-forwarded-for", "x-amzn-trace-id", "plaid-client-id",
    "plaid-secret", "plaid-version", "authorization", "cookie", "x-plaid-base-url",
)  # fmt: skip


@st.composite
def headers(draw: st.DrawFn) -> Any:
    """Headers with the content type under any spelling, hostile extras, or no mapping at all."""
    shape = draw(st.sampled_from(["mapping"] * 8 + ["none", "list", "string"]))
    if shape != "mapping":
        return {"none": None, "list": [["content-type", "application/json"]], "string": "x"}[shape]
    found: dict[Any, Any] = {}
    content_type = draw(content_types)
    if content_type is not None:
        name = draw(st.sampled_from(["content-type", "Content-Type", "CONTENT-TYPE"]))
        found[name] = content_type
    for name in draw(st.lists(st.sampled_from(HOSTILE_HEADERS), max_size=3)):
        found[name] = draw(st.sampled_from(STEERING_VALUES[:3]) | st.text(max_size=30))
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        found[draw(st.sampled_from([1, None, ("content-type",)]))] = "application/json"
    return found


valid_subs = st.text(min_size=1, max_size=255).filter(lambda s: s.strip() != "")
odd_subs = st.one_of(
    st.sampled_from(["", "   ", "\t\n", "x" * 256, "\ud800", "user\udfff"]),
    st.integers(),
    st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.booleans(),
)


@st.composite
def authorizers(draw: st.DrawFn) -> tuple[Any, bool]:
    """requestContext.authorizer, and whether it carries a usable JWT `sub`."""
    shape = draw(
        st.sampled_from(["jwt"] * 6 + ["odd-sub", "no-sub", "lambda", "iam", "none", "claims-text"])
    )
    if shape == "jwt":
        return {"jwt": {"claims": {"sub": draw(valid_subs)}, "scopes": None}}, True
    if shape == "odd-sub":
        return {"jwt": {"claims": {"sub": draw(odd_subs)}}}, False
    return {
        "no-sub": {"jwt": {"claims": {"email": "a@example.com"}}},
        "lambda": {"lambda": {"sub": "user-0001"}},  # not this API's authorizer
        "iam": {"iam": {"userId": "AIDAEXAMPLE"}},
        "none": None,
        "claims-text": {"jwt": {"claims": "sub=user-0001"}},
    }[shape], False


@st.composite
def hostile_events(draw: st.DrawFn) -> dict[str, Any]:
    event = make_event(content_type=None)
    event.pop("isBase64Encoded")
    event["headers"] = draw(headers())
    event.update(draw(body_fields()))
    context = event["requestContext"]
    context["authorizer"], _ = draw(authorizers())
    # Now and then an event API Gateway would never send (a direct invoke can).
    oddity = draw(
        st.sampled_from(["none"] * 12 + ["version", "method", "no-request-id", "no-http"])
    )
    if oddity == "version":
        event["version"] = draw(st.sampled_from(["1.0", "2", None, 2.0]))
    elif oddity == "method":
        context["http"]["method"] = draw(st.sampled_from(["GET", "PUT", "OPTIONS", "post", ""]))
    elif oddity == "no-request-id":
        del context["requestId"]
    elif oddity == "no-http":
        context["http"] = draw(st.sampled_from([None, "POST", []]))
    return event


# --- checks -------------------------------------------------------------------------------

Call = Callable[..., dict[str, Any]]


def assert_documented_client_problem(response: dict[str, Any]) -> str:
    """A 4xx RFC 9457 problem whose code and status are a row of docs/errors.md."""
    status = response["statusCode"]
    assert 400 <= status < 500, f"{status}: {response['body'][:300]}"
    assert response["headers"]["Content-Type"] == "application/problem+json"
    problem = json.loads(response["body"])
    code = problem["code"]
    assert code in CLIENT_ERRORS, f"{code} is not a documented client error"
    assert (problem["status"], problem["retryable"]) == DOCUMENTED[code]
    assert problem["status"] == status
    assert problem["type"] == PROBLEM_TYPE_BASE + code.lower().replace("_", "-")
    assert isinstance(problem["detail"], str) and problem["detail"]
    return str(code)


def assert_configured_request(sent: dict[str, Any], sub: str) -> None:
    """What reached Plaid: configured values, the JWT's `sub`, nothing from the body but options."""
    body = json.loads(sent["body"])
    assert sent["path"] == "/link/token/create"
    assert set(body) <= PLAID_FIELDS
    assert body["user"] == {"client_user_id": sub}
    assert body["client_name"] == CONFIGURED["client_name"]
    assert body["country_codes"] == CONFIGURED["country_codes"]
    assert body["webhook"] == CONFIGURED["webhook"]
    assert body["language"] in LANGUAGES
    assert set(body["products"]) <= set(PRODUCTS)
    if "android_package_name" in body:
        assert body["android_package_name"] == CONFIGURED["android_package_name"]
        assert "redirect_uri" not in body
    else:
        assert body["redirect_uri"] == CONFIGURED["redirect_uri"]


def sub_of(event: dict[str, Any]) -> str:
    sub: str = event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
    return sub


# --- properties ---------------------------------------------------------------------------


def test_every_hostile_event_gets_a_documented_4xx_and_never_reaches_plaid(
    invoke: Call, plaid: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any event: 200 with exactly one configured Plaid request, or a documented 4xx with no
    Plaid request and no secret read."""
    outcomes: Counter[str] = Counter()
    # Every use of the credentials, cached or not: a refused request must not touch them.
    secrets = invoke.container.service.secrets  # type: ignore[attr-defined]
    uses: list[bool] = []
    get = secrets.get

    def counted_get(refresh: bool = False) -> Any:
        uses.append(refresh)
        return get(refresh)

    monkeypatch.setattr(secrets, "get", counted_get)

    @PROPERTY
    @given(event=hostile_events())
    # Each named hostile input at least once, whatever the random draw.
    @example(event=make_event(raw_body='{"platform": "web", "platform": "android"}'))
    @example(event=make_event(raw_body="[" * 100_000 + "]" * 100_000))
    @example(event=make_event(raw_body='{"a":' * 5_000 + "1" + "}" * 5_000))
    @example(event=make_event(raw_body="{" + '"k": 1,' * 50_000 + '"z": 1}'))
    @example(event=make_event(raw_body='{"platform": "web"}', base64_body=True, sub="\ud800"))
    @example(
        event={
            **make_event(),
            "body": base64.b64encode(b"\xff\xfe{}").decode(),
            "isBase64Encoded": True,
        }
    )
    @example(event=make_event(raw_body='{"products": "auth"}'))
    @example(event=make_event(raw_body='{"language": ' + "9" * 5_000 + "}"))  # int digit limit
    @example(event=make_event(raw_body='{"language": 1e999999}'))  # infinity
    @example(event=make_event(raw_body="{}", content_type="application/json; charset=rot13"))
    @example(event=make_event(raw_body="{}", content_type="text/html"))
    @example(event=make_event(raw_body="{}", content_type="application/json; charset=utf-8\x00"))
    @example(event=make_event(raw_body="{}", content_type="application/json; charset=\ud800"))
    @example(event=make_event(raw_body='{"platform": "web"}', sub=None))
    def run(event: dict[str, Any]) -> None:
        before, uses_before = len(plaid.requests), len(uses)
        response = invoke(event)
        made = len(plaid.requests) - before
        if response["statusCode"] == 200:
            assert made == 1 and len(uses) == uses_before + 1
            assert_configured_request(plaid.requests[-1], sub_of(event))
            outcomes["200"] += 1
        else:
            outcomes[assert_documented_client_problem(response)] += 1
            assert made == 0, "a refused request reached Plaid"
            assert len(uses) == uses_before, "a refused request used the credentials"

    run()
    # The strategies reach every client error, and mostly produce refusals.
    # The Items routes' own refusals (tests/integration/test_items_hostile_input.py): POST
    # /link-token cannot answer them, ITEM_NOT_FOUND only for an update mode with a table.
    # The codes of other routes: the Items routes' and the webhook receiver's.
    items_only = {"DUPLICATE_ITEM", "INVALID_PUBLIC_TOKEN", "ITEM_NOT_FOUND", "WEBHOOK_UNVERIFIED"}
    assert set(outcomes) >= CLIENT_ERRORS - items_only, outcomes
    assert sum(outcomes.values()) >= EXAMPLES
    assert outcomes["200"] < sum(outcomes.values()) / 2, outcomes


def test_a_body_can_never_choose_the_user_a_url_a_package_or_the_plaid_host(
    invoke: Call, plaid: Any
) -> None:
    """Valid options plus any steering field: refused. Valid options alone: configured values."""
    runs: Counter[str] = Counter()

    @PROPERTY
    @given(
        options=valid_options,
        steering=unknown_fields,
        sub=valid_subs,
        extra_headers=st.dictionaries(
            st.sampled_from(HOSTILE_HEADERS), st.sampled_from(STEERING_VALUES[:3]), max_size=4
        ),
    )
    @example(
        options={}, steering={"user": {"client_user_id": "attacker"}}, sub="me", extra_headers={}
    )
    @example(
        options={"platform": "android"},
        steering={"android_package_name": "com.evil"},
        sub="me",
        extra_headers={},
    )
    @example(
        options={}, steering={"redirect_uri": "https://evil.example"}, sub="me", extra_headers={}
    )
    @example(options={}, steering={"webhook": "https://evil.example"}, sub="me", extra_headers={})
    @example(
        options={},
        steering={"plaid_base_url": "http://127.0.0.1:1"},
        sub="me",
        extra_headers={"host": "evil.example"},
    )
    def run(
        options: dict[str, Any],
        steering: dict[str, Any],
        sub: str,
        extra_headers: dict[str, str],
    ) -> None:
        event = make_event({**options, **steering}, sub=sub)
        event["headers"].update(extra_headers)
        before = len(plaid.requests)
        response = invoke(event)
        if steering:
            assert assert_documented_client_problem(response) == "INVALID_REQUEST"
            assert "Unknown field" in json.loads(response["body"])["detail"]
            assert len(plaid.requests) == before
            runs["refused"] += 1
            return
        assert response["statusCode"] == 200, response["body"]
        assert len(plaid.requests) == before + 1
        sent = plaid.requests[-1]
        assert_configured_request(sent, sub)
        # The request went to the configured host, whatever Host the event named.
        assert sent["headers"]["Host"] == plaid.base_url.split("://", 1)[1]
        if "platform" in options:
            platform = options["platform"]
            assert ("android_package_name" in json.loads(sent["body"])) is (platform == "android")
        runs["created"] += 1

    run()
    assert runs["refused"] and runs["created"], runs


def test_a_repeated_key_is_refused_whatever_its_values(invoke: Call, plaid: Any) -> None:
    """Last-wins would let two parsers read two different requests; the service reads none."""

    @PROPERTY
    @given(body=duplicate_key_bodies())
    def run(body: str) -> None:
        response = invoke(make_event(raw_body=body))
        assert assert_documented_client_problem(response) == "INVALID_REQUEST"
        assert "repeats the key" in json.loads(response["body"])["detail"]

    run()
    assert not plaid.requests
