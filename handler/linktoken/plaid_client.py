"""Calling Plaid (`/link/token/create`, the Item endpoints): one kept-alive session, timeouts,
bounded retries.

Retry policy (documented in docs/behaviour.md):
- retried: connection errors, read timeouts, HTTP 5xx and 429 (and Plaid errors whose rule says
  so); never other 4xx. A call that is not idempotent at Plaid (`/item/public_token/exchange`:
  a public token is exchanged once) is retried only when Plaid cannot have acted on it: a 429,
  or a connection that was never made.
- at most `max_attempts` attempts, exponential backoff with full jitter
  (sleep = uniform(0, min(cap, base * 2**n))), at least Plaid's Retry-After when it sends one.
- an attempt is started only if a full attempt (connect + read timeout) plus the backoff still
  fits in the invocation's remaining time minus a safety margin, so the function always answers
  before its own timeout and API Gateway's 30 s. The first attempt always runs, its timeouts
  clamped to what remains.
- an attempt never outlasts its connect + read timeout: the status line, the headers and the
  body are all read against that deadline, not only with requests' read timeout (which bounds
  each socket read, so a server sending a byte at a time could hold the call indefinitely).
"""

import json
import os
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import requests
import urllib3

from linktoken import __version__
from linktoken.answer_body import (
    ACCEPT_ENCODING,
    AnswerDeadline,
    AnswerTooLarge,
    UnreadableEncoding,
    read_answer,
)
from linktoken.deadline_http import DeadlineAdapter, attempt_deadline
from linktoken.plaid_errors import (
    ANSWER_TOO_LARGE,
    ANSWER_UNREADABLE,
    CONNECT_FAILED,
    NO_TIME,
    READ_TIMEOUT,
    TLS_UNTRUSTED,
    PlaidError,
    Rule,
    classify,
)
from linktoken.secret_store import PlaidCredentials
from linktoken.xray import Span, no_span

PLAID_VERSION = "2020-09-14"
USER_AGENT = f"plaid-link-token-service/{__version__} python-requests/{requests.__version__}"
LINK_TOKEN_PATH = "/link/token/create"  # noqa: S105 - a URL path, not a password  # nosec B105
MAX_ANSWER_BYTES = 256 * 1024  # a link token answer is < 1 KiB; bound memory on a bad answer


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Timeouts and retry bounds, in seconds."""

    max_attempts: int = 3
    connect_timeout: float = 2.0
    read_timeout: float = 6.0
    backoff_base: float = 0.2
    backoff_cap: float = 2.0
    safety_margin: float = 0.5  # kept back to log, emit metrics and answer
    max_retry_after: float = 2.0  # longest Plaid Retry-After we wait for inside one invocation

    @property
    def attempt_seconds(self) -> float:
        return self.connect_timeout + self.read_timeout


@dataclass(frozen=True, slots=True)
class LinkToken:
    """A created link token and how getting it went."""

    link_token: str
    expiration: str
    request_id: str | None
    attempts: int
    latency_ms: float


@dataclass(frozen=True, slots=True)
class PlaidAnswer:
    """A successful answer of any endpoint: its JSON object and how getting it went."""

    doc: dict[str, Any]
    request_id: str | None
    attempts: int
    latency_ms: float


# What makes a 200 answer the one asked for, by endpoint: anything else is UNPARSEABLE.
Accept = Callable[[dict[str, Any]], bool]


def _is_link_token(doc: dict[str, Any]) -> bool:
    token, expiration = doc.get("link_token"), doc.get("expiration")
    return isinstance(token, str) and bool(token) and isinstance(expiration, str)


def _any_object(_doc: dict[str, Any]) -> bool:
    return True


class PlaidCallError(Exception):
    """The call failed for good: `error` says how, `attempts` and `latency_ms` what it cost."""

    def __init__(
        self,
        error: PlaidError,
        attempts: int,
        latency_ms: float,
        retry_after: int | None = None,
        cause: str | None = None,
    ) -> None:
        super().__init__(error.rule.problem_code)
        self.error = error
        self.attempts = attempts
        self.latency_ms = latency_ms
        self.retry_after = retry_after
        self.cause = cause or error.rule.cause


class PlaidClient:
    """Creates link tokens; reuse one instance per container so the TLS connection is kept.

    Example:
        >>> client = PlaidClient("https://sandbox.plaid.com")              # doctest: +SKIP
        >>> token = client.create_link_token(body, credentials, lambda: 10.0)
        >>> token.link_token
        'link-sandbox-...'
    """

    def __init__(
        self,
        base_url: str,
        policy: RetryPolicy | None = None,
        span: Span = no_span,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + LINK_TOKEN_PATH
        self.policy = policy or RetryPolicy()
        self._span = span
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography  # nosec B311
        self._session: requests.Session | None = None

    def reset(self) -> None:
        """Drop the session and reseed jitter (after a SnapStart restore)."""
        if self._session is not None:
            self._session.close()
        self._session = None
        self._rng.seed()

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = _new_session(self.url)
        return self._session

    def create_link_token(
        self,
        body: Mapping[str, Any],
        credentials: PlaidCredentials,
        remaining_seconds: Callable[[], float],
    ) -> LinkToken:
        """POST the body; return the token or raise `PlaidCallError` once retries are spent."""
        answer = self.call(
            LINK_TOKEN_PATH, body, credentials, remaining_seconds, accept=_is_link_token
        )
        return LinkToken(
            answer.doc["link_token"],
            answer.doc["expiration"],
            answer.request_id,
            answer.attempts,
            answer.latency_ms,
        )

    def call(
        self,
        path: str,
        body: Mapping[str, Any],
        credentials: PlaidCredentials,
        remaining_seconds: Callable[[], float],
        *,
        accept: Accept = _any_object,
        idempotent: bool = True,
    ) -> PlaidAnswer:
        """POST `body` to `path`; the 200 answer that `accept` takes, or `PlaidCallError` once
        retries are spent. `idempotent=False` retries only what Plaid cannot have acted on."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers = {"PLAID-CLIENT-ID": credentials.client_id, "PLAID-SECRET": credentials.secret}
        url = self.base_url + path
        policy = self.policy
        started = time.perf_counter()
        last: tuple[PlaidError, int | None] | None = None
        attempt = 0
        while attempt < policy.max_attempts:
            if last is not None:
                error, retry_after = last
                if not _may_retry(error, idempotent) or (retry_after or 0) > policy.max_retry_after:
                    break  # not transient, or Plaid asks for a longer pause than we can wait
                delay = self._backoff(attempt, retry_after)
                if remaining_seconds() < delay + policy.attempt_seconds + policy.safety_margin:
                    break  # another full attempt would not fit: answer now
                self._sleep(delay)
            budget = remaining_seconds() - policy.safety_margin
            if budget <= 0:
                raise PlaidCallError(PlaidError(NO_TIME, 0), attempt, _ms_since(started))
            # Connect and read timeouts together never exceed what remains: worst case is a
            # slow connect followed by a slow read.
            connect = min(policy.connect_timeout, budget / 2)
            timeout = (connect, min(policy.read_timeout, budget - connect))
            attempt += 1
            outcome = self._attempt(url, path, payload, headers, timeout, accept)
            if isinstance(outcome, dict):
                request_id = outcome.get("request_id")
                return PlaidAnswer(
                    outcome,
                    request_id if isinstance(request_id, str) else None,
                    attempt,
                    _ms_since(started),
                )
            last = outcome
        assert last is not None  # for mypy: the loop ran at least once (max_attempts >= 1)  # nosec B101
        error, retry_after = last
        raise PlaidCallError(error, attempt, _ms_since(started), retry_after)

    def _backoff(self, attempts_made: int, retry_after: int | None) -> float:
        """Full jitter; never shorter than a Retry-After we are willing to wait for."""
        policy = self.policy
        delay = self._rng.uniform(
            0, min(policy.backoff_cap, policy.backoff_base * 2**attempts_made)
        )
        if retry_after:
            delay = max(delay, min(float(retry_after), policy.max_retry_after))
        return delay

    def _attempt(
        self,
        url: str,
        path: str,
        payload: bytes,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        accept: Accept,
    ) -> dict[str, Any] | tuple[PlaidError, int | None]:
        try:
            response, content = self._exchange(url, path, payload, headers, timeout)
        except _TRANSPORT_ERRORS as exc:
            return PlaidError(_transport_rule(exc), 0, never_connected=_never_connected(exc)), None
        if isinstance(content, Rule):
            return PlaidError(content, response.status_code), None
        try:
            doc = json.loads(content)
        except (ValueError, RecursionError):
            doc = None
        if response.status_code == 200 and isinstance(doc, dict) and accept(doc):
            return doc
        return classify(response.status_code, doc), _retry_after(response)

    def _exchange(
        self,
        url: str,
        path: str,
        payload: bytes,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
    ) -> tuple[requests.Response, bytes | Rule]:
        """One POST; the whole answer (status line, headers, body) is read against a deadline
        for the attempt, because requests' read timeout bounds each socket read and a
        trickling answer could hold us. An answer that arrived but cannot be used comes back as
        the rule that says why."""
        deadline = time.monotonic() + timeout[0] + timeout[1]
        with self._span("plaid " + path) as span:
            _http_meta(span, method="POST", url=url)
            with attempt_deadline(deadline):  # taken by the response this POST reads
                response = self.session.post(
                    url, data=payload, headers=headers, timeout=timeout, stream=True
                )
            _http_meta(span, status=response.status_code)
            try:
                content = read_answer(
                    response.raw,
                    response.headers.get("Content-Encoding"),
                    MAX_ANSWER_BYTES,
                    deadline,
                )
            except _ANSWER_ERRORS as exc:
                response.close()  # a half-read connection cannot be reused
                return response, _answer_rule(exc)
            except BaseException:
                response.close()
                raise
            response.raw.release_conn()  # read to the end: back to the pool
            return response, content


def _may_retry(error: PlaidError, idempotent: bool) -> bool:
    """Worth another attempt: transient, and for a call Plaid acts on only once, one that
    Plaid cannot have seen (a 429, or a connection never made)."""
    if not error.retryable:
        return False
    return idempotent or error.http_status == 429 or error.never_connected


def _never_connected(exc: BaseException) -> bool:
    """No connection was made, so no request was sent: a connect timeout or a refusal."""
    return isinstance(exc, requests.exceptions.ConnectTimeout) or _caused_by(
        exc, urllib3.exceptions.NewConnectionError
    )


def _http_meta(span: Any, **meta: object) -> None:
    """Put HTTP facts on a tracing span that takes them (X-Ray's `put_http_meta`)."""
    put = getattr(span, "put_http_meta", None)
    if put is not None:
        for key, value in meta.items():
            put(key, value)


def _retry_after(response: requests.Response) -> int | None:
    raw = response.headers.get("Retry-After", "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def proxies_for(url: str) -> dict[str, str]:
    """The proxies requests itself would use for `url`, from the process environment:
    lower-case variables before upper-case ones, NO_PROXY honoured."""
    return dict(requests.utils.get_environ_proxies(url))


def _new_session(url: str) -> requests.Session:
    session = requests.Session()
    adapter = DeadlineAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)  # loopback stand-ins
    # trust_env makes requests re-read proxies and ~/.netrc on every call; resolve once what it
    # would honour for this one URL: the CA bundle, and the proxy with requests' own rules
    # (lower-case variables first, as the standard library reads them; NO_PROXY respected).
    session.trust_env = False
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if ca_bundle:
        session.verify = ca_bundle
    session.proxies = proxies_for(url)
    session.headers.update(
        {
            "Accept-Encoding": ACCEPT_ENCODING,
            "Content-Type": "application/json",
            "Plaid-Version": PLAID_VERSION,
            "User-Agent": USER_AGENT,
        }
    )
    return session


def _transport_rule(exc: BaseException) -> Rule:
    """The rule for a transport failure: a certificate that did not verify, else by kind."""
    if _caused_by(exc, ssl.SSLCertVerificationError):
        return TLS_UNTRUSTED
    return next(rule for kinds, rule in _TRANSPORT_RULES if isinstance(exc, kinds))


def _caused_by(exc: BaseException, kind: type[BaseException], depth: int = 8) -> bool:
    """Whether `kind` is somewhere in the chain requests and urllib3 wrap errors in."""
    if isinstance(exc, kind):
        return True
    if depth == 0:
        return False
    inner = [exc.__cause__, exc.__context__, getattr(exc, "reason", None), *exc.args]
    return any(
        _caused_by(item, kind, depth - 1) for item in inner if isinstance(item, BaseException)
    )


# Transport failures, most specific first (ConnectTimeout is a ConnectionError; the rules are
# plaid_errors'); the last row catches the rest: a TLS handshake cut short, a connection reset
# mid-answer, a broken chunked body... all transient, so retried.
_TRANSPORT_RULES: Final[tuple[tuple[tuple[type[BaseException], ...], Rule], ...]] = (
    ((requests.exceptions.ConnectTimeout,), CONNECT_FAILED),
    (
        (
            requests.exceptions.ReadTimeout,
            urllib3.exceptions.ReadTimeoutError,
            TimeoutError,
            AnswerDeadline,
        ),
        READ_TIMEOUT,
    ),
    (
        (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError),
        CONNECT_FAILED,
    ),
)
# Answers that arrived but cannot be used.
_ANSWER_RULES: Final[dict[type[Exception], Rule]] = {
    AnswerTooLarge: ANSWER_TOO_LARGE,
    UnreadableEncoding: ANSWER_UNREADABLE,
}
_ANSWER_ERRORS = tuple(_ANSWER_RULES)
_TRANSPORT_ERRORS = tuple(kind for kinds, _rule in _TRANSPORT_RULES for kind in kinds)


def _answer_rule(exc: Exception) -> Rule:
    """The rule for an answer that cannot be used; its cause ends with the reason, when the
    exception gives one (corrupt, cut short, data after the end), so the log line names it."""
    rule = _ANSWER_RULES[type(exc)]
    return replace(rule, cause=f"{rule.cause}: {exc}") if str(exc) else rule
