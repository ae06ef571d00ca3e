"""`linktoken.plaid_client.PlaidClient` against `responses` (no sockets) and a fake clock.

The clock is the invocation's remaining time: it only moves when the client sleeps or when a
scripted answer says an attempt took time, so every deadline decision is deterministic.
"""

from __future__ import annotations

import json
import random
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
import responses

from linktoken.plaid_client import (
    MAX_ANSWER_BYTES,
    PLAID_VERSION,
    USER_AGENT,
    LinkToken,
    PlaidCallError,
    PlaidClient,
    RetryPolicy,
)
from tests.conftest import CLIENT_ID, SECRET
from tests.helpers_plaid import BODY, CREDENTIALS

BASE_URL = "https://sandbox.plaid.com"
URL = BASE_URL + "/link/token/create"
TOKEN = {
    "link_token": "link-sandbox-0b0e4b5e-7d2c-4f4e-9a57-0d3c2f1a9e11",
    "expiration": "2026-11-25T18:00:00Z",
    "request_id": "TOKENreq1234567",
}
POLICY = RetryPolicy()
FULL_ATTEMPT = POLICY.attempt_seconds + POLICY.safety_margin  # 8.5 s


class Clock:
    """Remaining invocation time, in seconds; sleeping spends it."""

    def __init__(self, remaining: float = 20.0) -> None:
        self.remaining = remaining
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.remaining

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.remaining -= seconds


Answer = tuple[int, Any, dict[str, str]] | Exception


def plaid_error(status: int, error_type: str, error_code: str, **headers: str) -> Answer:
    body = {
        "error_type": error_type,
        "error_code": error_code,
        "error_message": f"{error_code.lower()} happened",
        "display_message": None,
        "request_id": f"req{status}{error_code[:8]}",
    }
    return status, body, headers


def raw(status: int, text: str, **headers: str) -> Answer:
    return status, text, headers


OK: Answer = (200, TOKEN, {})


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def script(rsps: responses.RequestsMock, *answers: Answer) -> None:
    """Answers in order; the last one repeats."""
    for answer in answers:
        if isinstance(answer, Exception):
            rsps.add(responses.POST, URL, body=answer)
            continue
        status, body, headers = answer
        if isinstance(body, str):
            rsps.add(responses.POST, URL, body=body, status=status, headers=headers)
        else:
            rsps.add(responses.POST, URL, json=body, status=status, headers=headers)


def scripted(rsps: responses.RequestsMock, *answers: Answer, remaining: float = 20.0) -> Clock:
    """Script Plaid's answers; return the invocation's clock."""
    script(rsps, *answers)
    return Clock(remaining)


def make_client(clock: Clock, policy: RetryPolicy = POLICY, seed: int = 7) -> PlaidClient:
    return PlaidClient(BASE_URL, policy, sleep=clock.sleep, rng=random.Random(seed))


def create(client: PlaidClient, clock: Clock) -> LinkToken:
    return client.create_link_token(BODY, CREDENTIALS, clock)


def failure(client: PlaidClient, clock: Clock) -> PlaidCallError:
    with pytest.raises(PlaidCallError) as raised:
        create(client, clock)
    return raised.value


# --- what is sent -----------------------------------------------------------------------------


def test_request_headers_and_a_body_without_credentials(rsps: responses.RequestsMock) -> None:
    clock = scripted(rsps, OK)

    token = create(make_client(clock), clock)

    assert (token.link_token, token.expiration, token.request_id, token.attempts) == (
        TOKEN["link_token"],
        TOKEN["expiration"],
        TOKEN["request_id"],
        1,
    )
    [call] = rsps.calls
    request = call.request
    assert request.url == URL
    assert request.headers["Plaid-Version"] == PLAID_VERSION == "2020-09-14"
    assert request.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("plaid-link-token-service/0.1.0 ")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["PLAID-CLIENT-ID"] == CLIENT_ID
    assert request.headers["PLAID-SECRET"] == SECRET
    assert isinstance(request.body, bytes)
    assert json.loads(request.body) == BODY
    assert SECRET.encode() not in request.body
    assert CLIENT_ID.encode() not in request.body
    assert clock.sleeps == []


def test_request_id_is_optional_in_a_success(rsps: responses.RequestsMock) -> None:
    clock = scripted(rsps, (200, {k: v for k, v in TOKEN.items() if k != "request_id"}, {}))
    assert create(make_client(clock), clock).request_id is None


# --- what is retried, and what is not ---------------------------------------------------------


RETRIED = [
    pytest.param(requests.exceptions.ConnectionError("refused"), "UPSTREAM_UNAVAILABLE", id="connection-error"),
    pytest.param(requests.exceptions.ConnectTimeout("syn lost"), "UPSTREAM_UNAVAILABLE", id="connect-timeout"),
    pytest.param(requests.exceptions.ReadTimeout("slow"), "UPSTREAM_TIMEOUT", id="read-timeout"),
    pytest.param(requests.exceptions.ChunkedEncodingError("cut"), "UPSTREAM_UNAVAILABLE", id="cut-mid-answer"),
    pytest.param(plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR"), "UPSTREAM_UNAVAILABLE", id="500-plaid"),
    pytest.param(plaid_error(503, "API_ERROR", "PLANNED_MAINTENANCE"), "UPSTREAM_UNAVAILABLE", id="503-maintenance"),
    pytest.param(raw(500, ""), "UPSTREAM_UNAVAILABLE", id="500-empty"),
    pytest.param(raw(502, "<html>bad gateway</html>"), "UPSTREAM_UNAVAILABLE", id="502-html"),
    pytest.param(raw(503, "Service Unavailable"), "UPSTREAM_UNAVAILABLE", id="503-text"),
    pytest.param(raw(504, "<html>gateway timeout</html>"), "UPSTREAM_UNAVAILABLE", id="504-html"),
    # every 5xx, not only 500/502/503/504 (the retry policy: "5xx and 429")
    pytest.param(raw(501, "<html>not implemented</html>"), "UPSTREAM_UNAVAILABLE", id="501-html"),
    pytest.param(raw(507, "insufficient storage"), "UPSTREAM_UNAVAILABLE", id="507-text"),
    pytest.param(raw(520, "<html>origin error</html>"), "UPSTREAM_UNAVAILABLE", id="520-cdn"),
    pytest.param(plaid_error(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT"), "RATE_LIMITED", id="429-plaid"),
    pytest.param(raw(429, "slow down"), "RATE_LIMITED", id="429-text"),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "code"), RETRIED)
def test_transient_failures_are_tried_at_most_three_times(
    rsps: responses.RequestsMock, answer: Answer, code: str
) -> None:
    clock = scripted(rsps, answer, remaining=100.0)

    error = failure(make_client(clock), clock)

    assert len(rsps.calls) == 3
    assert error.attempts == 3
    assert len(clock.sleeps) == 2
    assert error.error.rule.problem_code == code


@pytest.mark.parametrize(("answer", "code"), RETRIED)
def test_transient_failure_then_success(
    rsps: responses.RequestsMock, answer: Answer, code: str
) -> None:
    clock = scripted(rsps, answer, OK)

    token = create(make_client(clock), clock)

    assert (token.attempts, len(rsps.calls), len(clock.sleeps)) == (2, 2, 1)
    assert token.link_token == TOKEN["link_token"]


NOT_RETRIED = [
    pytest.param(plaid_error(400, "INVALID_INPUT", "INVALID_API_KEYS"), "UPSTREAM_REJECTED", id="400-keys"),
    pytest.param(plaid_error(400, "INVALID_REQUEST", "INVALID_FIELD"), "UPSTREAM_REJECTED", id="400-field"),
    pytest.param(plaid_error(400, "INVALID_INPUT", "INVALID_PRODUCT"), "UPSTREAM_REJECTED", id="400-product"),
    pytest.param(plaid_error(400, "INVALID_REQUEST", "UNKNOWN_FIELDS"), "UPSTREAM_REJECTED", id="400-unknown-fields"),
    pytest.param(plaid_error(400, "INVALID_INPUT", "UNAUTHORIZED_ENVIRONMENT"), "UPSTREAM_REJECTED", id="400-env"),
    pytest.param(plaid_error(403, "INVALID_REQUEST", "UNAUTHORIZED_ROUTE_ACCESS"), "UPSTREAM_REJECTED", id="403-route"),
    pytest.param(plaid_error(404, "INVALID_REQUEST", "NOT_FOUND"), "UPSTREAM_REJECTED", id="404-plaid"),
    pytest.param(raw(401, "unauthorized"), "UPSTREAM_REJECTED", id="401-text"),
    pytest.param(raw(403, "<html>forbidden</html>"), "UPSTREAM_REJECTED", id="403-html"),
    pytest.param(raw(404, ""), "UPSTREAM_REJECTED", id="404-empty"),
    pytest.param(raw(408, "request timeout"), "UPSTREAM_REJECTED", id="408-text"),
    pytest.param(raw(409, "{}"), "UPSTREAM_REJECTED", id="409-empty-json"),
    pytest.param(raw(422, "[]"), "UPSTREAM_REJECTED", id="422-list"),
    pytest.param(requests.exceptions.SSLError(ssl.SSLCertVerificationError("bad certificate")), "MISCONFIGURED", id="tls-untrusted"),
    pytest.param(raw(200, "<html>captive portal</html>"), "UPSTREAM_REJECTED", id="200-html"),
    pytest.param((200, {"expiration": TOKEN["expiration"]}, {}), "UPSTREAM_REJECTED", id="200-no-token"),
    pytest.param((200, {**TOKEN, "link_token": ""}, {}), "UPSTREAM_REJECTED", id="200-empty-token"),
    pytest.param((200, {**TOKEN, "link_token": None}, {}), "UPSTREAM_REJECTED", id="200-null-token"),
    pytest.param((200, {**TOKEN, "link_token": 42}, {}), "UPSTREAM_REJECTED", id="200-number-token"),
    pytest.param((200, {"link_token": TOKEN["link_token"]}, {}), "UPSTREAM_REJECTED", id="200-no-expiration"),
    pytest.param((200, [TOKEN], {}), "UPSTREAM_REJECTED", id="200-list"),
    pytest.param((201, TOKEN, {}), "UPSTREAM_REJECTED", id="201"),
    pytest.param(raw(200, "[" * 20_000), "UPSTREAM_REJECTED", id="200-nested-json"),
    pytest.param(raw(200, " " * (300 * 1024) + json.dumps(TOKEN)), "UPSTREAM_REJECTED", id="200-huge"),
    pytest.param(raw(400, "x" * (300 * 1024)), "UPSTREAM_REJECTED", id="400-huge"),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "code"), NOT_RETRIED)
def test_rejections_and_malformed_answers_are_not_retried(
    rsps: responses.RequestsMock, answer: Answer, code: str
) -> None:
    script(rsps, answer, OK)  # a retry would succeed: it must not happen
    clock = Clock(remaining=100.0)

    error = failure(make_client(clock), clock)

    assert len(rsps.calls) == 1
    assert error.attempts == 1
    assert clock.sleeps == []
    assert error.error.rule.problem_code == code


def test_malformed_success_keeps_the_status_for_the_log(rsps: responses.RequestsMock) -> None:
    clock = scripted(rsps, (200, {"expiration": TOKEN["expiration"]}, {}))
    error = failure(make_client(clock), clock)
    assert error.error.http_status == 200
    assert "not a link token" in error.cause


# --- backoff ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 7, 42, 2024])
@pytest.mark.parametrize(
    "policy",
    [POLICY, RetryPolicy(backoff_base=1.5, backoff_cap=2.0), RetryPolicy(backoff_base=0.05)],
    ids=["default", "capped", "small"],
)
def test_backoff_is_full_jitter_within_the_exponential_bound(
    rsps: responses.RequestsMock, seed: int, policy: RetryPolicy
) -> None:
    clock = scripted(rsps, raw(503, "busy"), remaining=100.0)

    failure(make_client(clock, policy, seed), clock)

    replica = random.Random(seed)
    bounds = [min(policy.backoff_cap, policy.backoff_base * 2**n) for n in (1, 2)]
    assert clock.sleeps == pytest.approx([replica.uniform(0, bound) for bound in bounds])
    for slept, bound in zip(clock.sleeps, bounds, strict=True):
        assert 0 <= slept <= bound


def test_backoff_is_jittered_across_containers(rsps: responses.RequestsMock) -> None:
    script(rsps, raw(503, "busy"))
    first_sleeps = set()
    for seed in range(20):
        clock = Clock(remaining=100.0)
        failure(make_client(clock, seed=seed), clock)
        first_sleeps.add(round(clock.sleeps[0], 6))
    assert len(first_sleeps) == 20  # no two containers retry in lockstep


# --- Retry-After ------------------------------------------------------------------------------


def rate_limited(retry_after: str) -> Answer:
    return plaid_error(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", **{"Retry-After": retry_after})


@pytest.mark.parametrize("seconds", [1, 2])
def test_retry_after_within_the_limit_is_waited_for(
    rsps: responses.RequestsMock, seconds: int
) -> None:
    clock = scripted(rsps, rate_limited(str(seconds)), OK)

    token = create(make_client(clock), clock)

    assert token.attempts == 2
    [slept] = clock.sleeps
    assert seconds <= slept <= max(seconds, POLICY.backoff_base * 2)


@pytest.mark.parametrize(("seconds", "max_retry_after"), [(3, 2.0), (30, 2.0), (6, 5.0)])
def test_longer_retry_after_is_passed_on_instead_of_waited_for(
    rsps: responses.RequestsMock, seconds: int, max_retry_after: float
) -> None:
    clock = scripted(rsps, rate_limited(str(seconds)), OK, remaining=100.0)
    policy = RetryPolicy(max_retry_after=max_retry_after)

    error = failure(make_client(clock, policy), clock)

    assert (len(rsps.calls), clock.sleeps) == (1, [])
    assert error.retry_after == seconds
    assert error.error.rule.problem_code == "RATE_LIMITED"


@pytest.mark.parametrize("header", ["Wed, 25 Nov 2026 18:00:00 GMT", "soon", "-1", "1.5"])
def test_retry_after_that_is_not_whole_seconds_is_ignored(
    rsps: responses.RequestsMock, header: str
) -> None:
    clock = scripted(rsps, rate_limited(header), OK)

    assert create(make_client(clock), clock).attempts == 2
    [slept] = clock.sleeps
    assert 0 <= slept <= POLICY.backoff_base * 2  # plain jitter


def test_retry_after_with_unicode_digits_does_not_crash(rsps: responses.RequestsMock) -> None:
    """'²'.isdigit() is True but int('²') raises: the header must not escape as a ValueError."""
    clock = scripted(rsps, rate_limited("²"), OK)
    assert create(make_client(clock), clock).attempts == 2


# --- the deadline -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remaining", "attempts"),
    [
        (100.0, 3),
        (2 * FULL_ATTEMPT, 3),  # the clock never moves: each retry needs 8.5 s to remain
        (FULL_ATTEMPT, 3),
        (FULL_ATTEMPT - 0.01, 1),
        (1.0, 1),
    ],
)
def test_a_retry_starts_only_if_a_full_attempt_fits(
    rsps: responses.RequestsMock, remaining: float, attempts: int
) -> None:
    clock = scripted(rsps, raw(503, "busy"), remaining=remaining)
    no_jitter = RetryPolicy(backoff_base=0.0)

    error = failure(make_client(clock, no_jitter), clock)

    assert error.attempts == len(rsps.calls) == attempts


@pytest.mark.parametrize(("margin", "attempts"), [(0.001, 2), (-0.001, 1)])
def test_the_backoff_counts_against_the_deadline(
    rsps: responses.RequestsMock, margin: float, attempts: int
) -> None:
    script(rsps, raw(503, "busy"), OK)
    delay = random.Random(7).uniform(0, POLICY.backoff_base * 2)
    clock = Clock(remaining=FULL_ATTEMPT + delay + margin)
    client = make_client(clock, seed=7)

    if attempts == 1:
        assert failure(client, clock).attempts == 1
    else:
        assert create(client, clock).attempts == 2
    assert len(rsps.calls) == attempts


def test_attempts_that_use_up_the_time_stop_the_retries(rsps: responses.RequestsMock) -> None:
    clock = Clock(remaining=20.0)

    def slow_503(_request: Any) -> tuple[int, dict[str, str], str]:
        clock.remaining -= 6.0  # each attempt runs into the 6 s read timeout's worth
        return 503, {}, "busy"

    rsps.add_callback(responses.POST, URL, callback=slow_503)

    error = failure(make_client(clock), clock)

    # 20 -> 14 (retry fits: 14 >= delay + 8.5) -> ~8 (does not fit): two attempts
    assert error.attempts == len(rsps.calls) == 2


@pytest.mark.parametrize(
    "remaining", [100.0, 2 * FULL_ATTEMPT, FULL_ATTEMPT, FULL_ATTEMPT - 0.1, 5.0, 3.0, 1.0, 0.6]
)
def test_first_attempt_timeouts_are_clamped_to_what_remains(
    rsps: responses.RequestsMock, remaining: float
) -> None:
    clock = scripted(rsps, OK, remaining=remaining)

    token = create(make_client(clock), clock)

    assert token.attempts == 1  # the first attempt always runs ...
    # responses records the send() keywords on the request it matched.
    connect, read = rsps.calls[0].request.req_kwargs["timeout"]  # type: ignore[attr-defined]
    if remaining >= FULL_ATTEMPT:
        assert (connect, read) == pytest.approx((POLICY.connect_timeout, POLICY.read_timeout))
    assert 0 < connect <= POLICY.connect_timeout
    assert 0 < read <= POLICY.read_timeout
    # ... and even a slow connect followed by a slow read ends before the safety margin.
    assert connect + read <= remaining - POLICY.safety_margin + 1e-9


@pytest.mark.parametrize("remaining", [POLICY.safety_margin, 0.2, 0.0, -3.0])
def test_no_time_left_is_a_timeout_without_calling_plaid(
    rsps: responses.RequestsMock, remaining: float
) -> None:
    clock = scripted(rsps, OK, remaining=remaining)

    error = failure(make_client(clock), clock)

    assert len(rsps.calls) == 0
    assert error.attempts == 0
    assert error.error.rule.problem_code == "UPSTREAM_TIMEOUT"


# --- the session ------------------------------------------------------------------------------


def test_one_session_is_reused_until_reset(
    rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = scripted(rsps, OK)
    client = make_client(clock)
    create(client, clock)
    first = client.session
    assert client.session is first
    closed: list[bool] = []
    monkeypatch.setattr(first, "close", lambda: closed.append(True))
    rng_state = client._rng.getstate()

    client.reset()

    assert closed == [True]
    assert client._session is None
    assert client._rng.getstate() != rng_state  # reseeded: jitter is not shared after restore
    create(client, clock)
    assert client.session is not first


@pytest.mark.parametrize(
    ("env", "verify", "proxies"),
    [
        ({}, True, {}),
        ({"REQUESTS_CA_BUNDLE": "/ca/requests.pem"}, "/ca/requests.pem", {}),
        ({"CURL_CA_BUNDLE": "/ca/curl.pem"}, "/ca/curl.pem", {}),
        ({"REQUESTS_CA_BUNDLE": "/ca/a.pem", "CURL_CA_BUNDLE": "/ca/b.pem"}, "/ca/a.pem", {}),
        ({"HTTPS_PROXY": "http://proxy:3128"}, True, {"https": "http://proxy:3128"}),
        ({"https_proxy": "http://proxy:3128"}, True, {"https": "http://proxy:3128"}),
    ],
)
def test_session_takes_ca_bundle_and_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], verify: Any, proxies: dict[str, str]
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    session = PlaidClient(BASE_URL).session

    assert session.verify == verify
    assert session.proxies == proxies
    assert session.trust_env is False


def test_a_session_after_reset_sees_the_new_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/ca/before-snapshot.pem")
    client = PlaidClient(BASE_URL)
    assert client.session.verify == "/ca/before-snapshot.pem"

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/ca/after-restore.pem")
    client.reset()

    assert client.session.verify == "/ca/after-restore.pem"


def test_every_attempt_is_traced_in_its_own_span(rsps: responses.RequestsMock) -> None:
    clock = scripted(rsps, raw(503, "busy"), raw(503, "busy"), OK)
    spans: list[str] = []

    @contextmanager
    def span(name: str) -> Iterator[None]:
        spans.append(name)
        yield

    client = PlaidClient(BASE_URL, POLICY, span=span, sleep=clock.sleep)
    create(client, clock)

    assert spans == ["plaid /link/token/create"] * 3


def test_latency_covers_all_attempts(
    rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = iter([100.0, 100.25])
    monkeypatch.setattr("linktoken.plaid_client.time.perf_counter", lambda: next(ticks))
    clock = scripted(rsps, raw(503, "busy"), OK)

    token = create(make_client(clock), clock)

    assert token.latency_ms == 250.0


def test_an_oversized_answer_is_rejected_not_buffered(rsps: responses.RequestsMock) -> None:
    # A proxy's error page or a runaway body: bounded memory, not retried, not a token.
    clock = scripted(rsps, raw(200, "x" * (MAX_ANSWER_BYTES + 1)))

    error = failure(make_client(clock), clock)

    assert (error.error.rule.problem_code, error.attempts) == ("UPSTREAM_REJECTED", 1)
    assert error.error.http_status == 200
    assert len(rsps.calls) == 1


def test_the_plaid_span_carries_method_url_and_status(rsps: responses.RequestsMock) -> None:
    # The requests library is not patched for X-Ray: this span is what shows Plaid in a trace.
    clock = scripted(rsps, raw(503, "busy"), OK)
    recorded: list[dict[str, object]] = []

    class Span:
        def __init__(self) -> None:
            self.meta: dict[str, object] = {}
            recorded.append(self.meta)

        def put_http_meta(self, key: str, value: object) -> None:
            self.meta[key] = value

    @contextmanager
    def span(_name: str) -> Iterator[Span]:
        yield Span()

    create(PlaidClient(BASE_URL, POLICY, span=span, sleep=clock.sleep), clock)

    assert recorded == [
        {"method": "POST", "url": URL, "status": 503},
        {"method": "POST", "url": URL, "status": 200},
    ]
