"""Faults, end to end, through the real HTTP stacks.

Plaid is `infra/doubles/plaid_faults.py` over TLS (a loopback CA the handler's session trusts
through REQUESTS_CA_BUNDLE); Secrets Manager is moto in server mode, or, for what moto cannot
do (access denied, throttling, slowness), `infra/doubles/secrets_faults.py`, which speaks the
same wire protocol. The real `app.lambda_handler` answers, with real backoff sleeps and a
Lambda context whose remaining time runs down like the deployed function's (20 s).

Each case is a fresh container. It checks what the app gets (status, problem code), how long
it took against the budget of docs/behaviour.md, the log line's `cause`, the EMF metrics, the
Plaid calls and the secret reads; then the same warm container must serve a good request,
on the connection it already had whenever the fault left that connection usable.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.doubles.lambda_runtime import LambdaContext
from infra.doubles.loopback import LoopbackTls, make_loopback_tls
from infra.doubles.plaid_faults import (
    PlaidFaults,
    Reply,
    Reset,
    Silent,
    Trickle,
    error_body,
    huge_body,
)
from infra.doubles.secrets_faults import SecretsFaults, SmError, SmSlow
from tests.conftest import CLIENT_ID, SECRET, Output, make_event
from tests.helpers_app import closed_port

FUNCTION_TIMEOUT_MS = 20_000  # template.yaml
SAFETY_MARGIN_S = 0.5  # docs/behaviour.md
# Expected values are written here, never read from the code under test: each problem code's
# status and retryable (docs/errors.md's table), and each fault's `cause` in the log line.
PROBLEM_STATUS = {
    "INVALID_REQUEST": (400, False),
    "UNAUTHENTICATED": (401, False),
    "PAYLOAD_TOO_LARGE": (413, False),
    "UNSUPPORTED_MEDIA_TYPE": (415, False),
    "INTERNAL_ERROR": (500, False),
    "MISCONFIGURED": (500, False),
    "RATE_LIMITED": (429, True),
    "UPSTREAM_REJECTED": (502, False),
    "UPSTREAM_UNAVAILABLE": (503, True),
    "UPSTREAM_TIMEOUT": (504, True),
}
TLS_UNTRUSTED = (
    "Plaid's TLS certificate did not verify: REQUESTS_CA_BUNDLE lacks Plaid's root CA, or an "
    "intercepting proxy presents its own certificate"
)
ROTATED_SECRET = "plaid-secret-rotated-3a9e-never-log"
FIXED_SECRET = "plaid-secret-fixed-b71c-never-log"
CANARIES = (SECRET, ROTATED_SECRET, FIXED_SECRET)


def secret_doc(secret: str = SECRET, **fields: Any) -> str:
    return json.dumps({"client_id": CLIENT_ID, "secret": secret, **fields})


# ------------------------------------------------------------------ the world -------------
@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoopbackTls, LoopbackTls]:
    """The CA the handler trusts, and another one it does not."""
    root = Path(tmp_path_factory.mktemp("faults-tls"))
    return make_loopback_tls(root / "trusted"), make_loopback_tls(root / "rogue", "rogue CA")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's Secrets Manager as an HTTP server on loopback (the real botocore stack)."""
    from infra.doubles.moto_server import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def plaid(tls: tuple[LoopbackTls, LoopbackTls]) -> Iterator[PlaidFaults]:
    with PlaidFaults(tls[0].server_context(), client_id=CLIENT_ID, secret=SECRET) as double:
        yield double


@dataclass
class Exchange:
    """One invocation, as the app and the operator see it."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    seconds: float
    summary: dict[str, Any]
    metrics: dict[str, list[Any]]
    plaid_requests: int
    secret_reads: int

    def metric(self, name: str) -> list[Any]:
        return self.metrics.get(name, [])

    def value(self, name: str) -> float:
        """The metric's total over this invocation's EMF documents."""
        total = 0.0
        for doc in self.metric(name):
            value = doc[name]
            total += sum(value) if isinstance(value, list) else value
        return total


@dataclass
class Container:
    """One Lambda container: what the handler builds once, invoked again and again."""

    built: Any
    plaid: PlaidFaults
    output: Output
    secret_id: str = ""
    log: list[Exchange] = field(default_factory=list)

    def invoke(self, remaining_ms: int = FUNCTION_TIMEOUT_MS) -> Exchange:
        import app

        app.CONTAINER = self.built
        requests_before = self.plaid.request_count
        reads_before = self.built.service.secrets.reads
        seen = len(self.output.read())
        started = time.monotonic()
        response = app.lambda_handler(make_event({}), LambdaContext(remaining_ms=remaining_ms))
        seconds = time.monotonic() - started
        # JSON lines only: a server thread of another test may still print a traceback here
        # (infra/conformance/ric.py is where the handler's output must be all JSON).
        text = self.output.read()[seen:]
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        summaries = [
            line
            for line in lines
            if line.get("message") in {"link_token_created", "link_token_failed"}
        ]
        assert len(summaries) == 1, f"one summary log line per request, got {summaries}"
        metrics: dict[str, list[Any]] = {}
        for doc in lines:
            for directive in doc.get("_aws", {}).get("CloudWatchMetrics", []):
                for metric in directive["Metrics"]:
                    metrics.setdefault(metric["Name"], []).append(doc)
        exchange = Exchange(
            status=response["statusCode"],
            headers=response["headers"],
            body=json.loads(response["body"]),
            seconds=seconds,
            summary=summaries[0],
            metrics=metrics,
            plaid_requests=self.plaid.request_count - requests_before,
            secret_reads=self.built.service.secrets.reads - reads_before,
        )
        self.log.append(exchange)
        return exchange


@pytest.fixture
def container(
    plaid: PlaidFaults,
    tls: tuple[LoopbackTls, LoopbackTls],
    output: Output,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Container]:
    """A container factory: Secrets Manager at `endpoint`, the secret `secret_id`."""
    import app
    from linktoken.container import build_container
    from linktoken.observability import trace_span

    monkeypatch.setattr(app, "CONTAINER", app.CONTAINER)  # restored after the test
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0].ca_pem))

    def make(endpoint: str, secret_id: str) -> Container:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint)
        env = {
            "PLAID_SECRET_ID": secret_id,
            "PLAID_CLIENT_NAME": "Faults Test",
            "PLAID_BASE_URL": plaid.base_url,
        }
        built = build_container(env, span=trace_span)
        assert built.service is not None, built.config_error
        return Container(built, plaid, output, secret_id)

    return make


@pytest.fixture
def secrets(moto_endpoint: str) -> Any:
    import botocore.session

    return botocore.session.get_session().create_client(
        "secretsmanager", endpoint_url=moto_endpoint
    )


@pytest.fixture
def warm(secrets: Any, moto_endpoint: str, container: Callable[..., Container]) -> Container:
    """A container on moto's Secrets Manager that has served one good request."""
    secret_id = new_secret(secrets, secret_doc())
    warm = container(moto_endpoint, secret_id)
    assert_ok(warm.invoke(), reads=1)
    assert warm.plaid.connections == 1
    return warm


def new_secret(secrets: Any, value: str | None = None) -> str:
    """A fresh secret id in moto (created with `value`, or absent when None)."""
    secret_id = f"plaid-link-token/faults-{uuid.uuid4().hex[:8]}"
    if value is not None:
        secrets.create_secret(Name=secret_id, SecretString=value)
    return secret_id


# --------------------------------------------------------------------- checks --------------
def assert_ok(exchange: Exchange, attempts: int = 1, reads: int = 0) -> None:
    assert exchange.status == 200, exchange.body
    assert exchange.body["link_token"].startswith("link-sandbox-")
    assert exchange.summary["message"] == "link_token_created"
    assert exchange.summary["attempts"] == attempts
    assert exchange.plaid_requests == attempts
    assert exchange.secret_reads == reads
    assert len(exchange.metric("LinkTokenCreated")) == 1
    assert not exchange.metric("LinkTokenFailed")
    assert exchange.value("SecretsFetched") == reads
    assert exchange.value("PlaidRetries") == attempts - 1


def assert_problem(exchange: Exchange, code: str, cause: str, reads: int = 0) -> None:
    """The app's problem, the operator's log line and the metrics agree on one code."""
    status, retryable = PROBLEM_STATUS[code]
    assert exchange.status == status, exchange.body
    assert exchange.body["code"] == code
    assert exchange.body["retryable"] is retryable
    assert exchange.headers["Content-Type"] == "application/problem+json"
    assert "link_token" not in exchange.body
    summary = exchange.summary
    assert summary["message"] == "link_token_failed"
    assert summary["error_code"] == code
    assert summary["status"] == status
    assert cause in summary["cause"], summary["cause"]
    (failed,) = exchange.metric("LinkTokenFailed")
    assert failed["ErrorCode"] == code
    assert exchange.value("SecretsFetched") == reads
    assert exchange.secret_reads == reads


def assert_no_canary(output: Output) -> None:
    text = output.read()
    for canary in CANARIES:
        assert canary not in text


# ------------------------------------------------------------------ Plaid faults -----------
@dataclass(frozen=True)
class PlaidCase:
    """A scripted Plaid misbehaviour and everything it must produce."""

    name: str
    actions: tuple[Any, ...]
    code: str | None  # None: the retries absorbed the fault, the app gets its token
    cause: str
    attempts: int
    within_s: float  # the answer's time budget (docs/behaviour.md)
    at_least_s: float = 0.0
    remaining_ms: int = FUNCTION_TIMEOUT_MS
    keeps_connection: bool = True  # the fault leaves the kept-alive connection usable
    retry_after: str | None = None


MAINTENANCE = error_body(503, "API_ERROR", "PLANNED_MAINTENANCE", "planned maintenance")
INTERNAL = error_body(500, "API_ERROR", "INTERNAL_SERVER_ERROR", "an unexpected error occurred")
RATE_LIMIT = error_body(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", "too many requests")
READ_TIMEOUT = "Plaid did not answer within the read timeout"
CONNECT_FAILED = "could not connect to Plaid"
UNPARSEABLE = "Plaid's answer is not a link token nor a Plaid error"

PLAID_CASES = [
    PlaidCase("500 then success", (INTERNAL,), None, "", attempts=2, within_s=2),
    PlaidCase(
        "500 persistently",
        (INTERNAL,) * 3,
        "UPSTREAM_UNAVAILABLE",
        "Plaid had an internal error",
        attempts=3,
        within_s=2,
    ),
    PlaidCase(
        "503 PLANNED_MAINTENANCE",
        (MAINTENANCE,) * 3,
        "UPSTREAM_UNAVAILABLE",
        "Plaid is in planned maintenance",
        attempts=3,
        within_s=2,
    ),
    PlaidCase(
        "429 with Retry-After: 1",
        (Reply(RATE_LIMIT.status, RATE_LIMIT.body, {"Retry-After": "1"}),) * 3,
        "RATE_LIMITED",
        "Plaid rate limit exceeded",
        attempts=3,
        within_s=3.5,
        at_least_s=2.0,  # Plaid's pause honoured between attempts
        retry_after="1",
    ),
    PlaidCase(
        "429 with Retry-After: 30 (longer than an invocation waits)",
        (Reply(RATE_LIMIT.status, RATE_LIMIT.body, {"Retry-After": "30"}),),
        "RATE_LIMITED",
        "Plaid rate limit exceeded",
        attempts=1,
        within_s=1,
        retry_after="30",
    ),
    PlaidCase(
        "429 without Retry-After or body",
        (Reply(429, b""),) * 3,
        "RATE_LIMITED",
        "Plaid answered 429 without an error body",
        attempts=3,
        within_s=2,
        retry_after="2",
    ),
    PlaidCase(
        "reset mid-response, then success",
        (Reset(),),
        None,
        "",
        attempts=2,
        within_s=2,
        keeps_connection=False,
    ),
    PlaidCase(
        "reset mid-response persistently",
        (Reset(),) * 3,
        "UPSTREAM_UNAVAILABLE",
        CONNECT_FAILED,
        attempts=3,
        within_s=2,
        keeps_connection=False,
    ),
    PlaidCase(
        "accepted then silent: read timeouts, answered before the deadline",
        (Silent(), Silent()),
        "UPSTREAM_TIMEOUT",
        READ_TIMEOUT,
        attempts=2,
        at_least_s=12.0,  # two 6 s read timeouts; a third attempt would not fit
        within_s=14.0,
        keeps_connection=False,
    ),
    PlaidCase(
        "status line and headers a byte every 0.5 s: the attempt ends at its deadline",
        (Trickle(interval=0.5),),  # ~50 s of headers, each read well within the read timeout
        "UPSTREAM_TIMEOUT",
        READ_TIMEOUT,
        attempts=1,
        remaining_ms=12_000,  # one attempt (2 s connect + 6 s read) fits, a second does not
        at_least_s=7.5,  # the attempt's 8 s deadline ...
        within_s=10.0,  # ... not the function's timeout
        keeps_connection=False,
    ),
    PlaidCase(
        "a second gzip member after the answer",
        (
            Reply(
                200,
                gzip.compress(
                    b'{"link_token": "link-sandbox-1", "expiration": "2030-01-01T00:00:00Z"}'
                )
                + gzip.compress(b"{}"),
                {"Content-Encoding": "gzip"},
            ),
        ),
        "UPSTREAM_REJECTED",
        "cannot read: data follows the end of the compressed answer",
        attempts=1,
        within_s=1,  # the body came whole (Content-Length): the connection stays usable
    ),
    PlaidCase(
        "HTML with 200",
        (
            Reply(
                200, b"<html><body>Service Unavailable</body></html>", {"Content-Type": "text/html"}
            ),
        ),
        "UPSTREAM_REJECTED",
        UNPARSEABLE,
        attempts=1,
        within_s=1,
    ),
    PlaidCase(
        "truncated JSON with 200",
        (Reply(200, b'{"link_token": "link-sandbox-0b1c", "expira'),),
        "UPSTREAM_REJECTED",
        UNPARSEABLE,
        attempts=1,
        within_s=1,
    ),
    PlaidCase(
        "200 without link_token",
        (Reply(200, {"expiration": "2030-01-01T00:00:00Z", "request_id": "r1"}),),
        "UPSTREAM_REJECTED",
        UNPARSEABLE,
        attempts=1,
        within_s=1,
    ),
    PlaidCase(
        "a very large body (1 MiB)",
        (huge_body(),),
        "UPSTREAM_REJECTED",
        "larger than any link token answer",
        attempts=1,
        within_s=1,
        keeps_connection=False,  # not read to the end: the connection cannot be reused
    ),
    PlaidCase(
        "slow enough that only one attempt fits",
        (Reply(503, b"", delay=1.0),),
        "UPSTREAM_UNAVAILABLE",
        "Plaid (or a proxy in front of it) answered a 5xx",
        attempts=1,
        remaining_ms=9_000,  # 8 s left after the first answer: less than a full attempt
        at_least_s=1.0,
        within_s=2.0,
    ),
]


@pytest.mark.parametrize("case", PLAID_CASES, ids=lambda case: case.name)
def test_plaid_fault(case: PlaidCase, plaid: PlaidFaults, warm: Container, output: Output) -> None:
    plaid.script(*case.actions)
    fault = warm.invoke(remaining_ms=case.remaining_ms)
    assert case.at_least_s <= fault.seconds <= case.within_s, fault.seconds
    assert fault.seconds < case.remaining_ms / 1000 - SAFETY_MARGIN_S  # before the deadline
    assert fault.plaid_requests == case.attempts
    if case.code is None:
        assert_ok(fault, attempts=case.attempts)
    else:
        assert_problem(fault, case.code, case.cause)
        assert fault.summary["attempts"] == case.attempts
        assert fault.value("PlaidRetries") == case.attempts - 1
        assert fault.headers.get("Retry-After") == case.retry_after

    again = warm.invoke()
    assert_ok(again)
    if case.keeps_connection:
        assert plaid.connections == 1, "the kept-alive connection was not reused"
    else:
        assert plaid.connections > 1
    assert_no_canary(output)


def test_connection_refused_then_back(plaid: PlaidFaults, warm: Container) -> None:
    with plaid.refusing():
        fault = warm.invoke()
    assert_problem(fault, "UPSTREAM_UNAVAILABLE", CONNECT_FAILED)
    assert fault.summary["attempts"] == 3 and fault.plaid_requests == 0
    assert fault.seconds < 2  # three refused connects and two short backoffs
    assert_ok(warm.invoke())
    assert_ok(warm.invoke())
    assert plaid.connections == 2, "one new connection after the refusal, then kept alive"


def test_certificate_that_does_not_verify_fails_closed(
    plaid: PlaidFaults, tls: tuple[LoopbackTls, LoopbackTls], warm: Container
) -> None:
    attempts = 1  # not retried: only an operator can fix it (docs/errors.md)
    failed_before = plaid.failed_connections
    with plaid.presenting(tls[1].server_context()):
        fault = warm.invoke()
    assert_problem(fault, "MISCONFIGURED", TLS_UNTRUSTED)  # 500, not retryable
    assert fault.summary["attempts"] == attempts
    assert fault.plaid_requests == 0, "a request (and its credentials) crossed an unverified TLS"
    # The double notes a rejected handshake when it reads the client's alert: may lag a little.
    deadline = time.monotonic() + 30
    while plaid.failed_connections - failed_before < attempts and time.monotonic() < deadline:
        time.sleep(0.01)
    assert plaid.failed_connections - failed_before == attempts
    assert fault.seconds < 2
    rejected = plaid.connections
    assert_ok(warm.invoke())
    assert_ok(warm.invoke())
    assert plaid.connections == rejected + 1, "one new trusted connection, then kept alive"


# ---------------------------------------------------------- Secrets Manager faults ---------
@dataclass(frozen=True)
class SecretCase:
    """A secret moto can hold, wrong in one way, then fixed by the operator."""

    name: str
    value: str | None  # None: the secret does not exist
    cause: str


SECRET_CASES = [
    SecretCase("missing", None, "ResourceNotFoundException"),
    SecretCase("malformed JSON", '{"client_id": "x", "secret": ', "is not JSON"),
    SecretCase("missing key", json.dumps({"client_id": CLIENT_ID}), "'secret' is missing or empty"),
    SecretCase(
        "empty key",
        json.dumps({"client_id": "  ", "secret": SECRET}),
        "'client_id' is missing or empty",
    ),
]


@pytest.mark.parametrize("case", SECRET_CASES, ids=lambda case: case.name)
def test_unusable_secret_then_fixed(
    case: SecretCase,
    plaid: PlaidFaults,
    secrets: Any,
    moto_endpoint: str,
    container: Callable[..., Container],
) -> None:
    secret_id = new_secret(secrets, case.value)
    cold = container(moto_endpoint, secret_id)
    fault = cold.invoke()
    assert_problem(fault, "MISCONFIGURED", case.cause, reads=1)
    assert fault.plaid_requests == 0
    assert fault.seconds < 1
    if case.value is None:
        secrets.create_secret(Name=secret_id, SecretString=secret_doc())
    else:
        secrets.put_secret_value(SecretId=secret_id, SecretString=secret_doc())
    assert_ok(cold.invoke(), reads=1)
    assert_ok(cold.invoke())  # cached from now on
    assert plaid.connections == 1


@dataclass(frozen=True)
class ServiceCase:
    """Secrets Manager itself misbehaving (the double), then healthy again."""

    name: str
    actions: tuple[Any, ...]
    code: str
    cause: str
    sm_requests: int
    within_s: float
    at_least_s: float = 0.0


SERVICE_CASES = [
    ServiceCase(
        "access denied",
        (SmError("AccessDeniedException"),),
        "MISCONFIGURED",
        "AccessDeniedException: the function's role may not read the secret (IAM or key policy)",
        sm_requests=1,
        within_s=1,
    ),
    ServiceCase(
        "throttled",
        (SmError("ThrottlingException"),) * 2,
        "UPSTREAM_UNAVAILABLE",
        "Secrets Manager answered ThrottlingException",
        sm_requests=2,  # botocore's standard mode retries once
        within_s=2.5,
    ),
    ServiceCase(
        "slow beyond the read timeout",
        (SmSlow(3.0),) * 2,
        "UPSTREAM_UNAVAILABLE",
        "Secrets Manager unreachable: ReadTimeoutError",
        sm_requests=2,
        at_least_s=4.0,  # two 2 s read timeouts
        within_s=6.0,  # docs/behaviour.md: a secret read takes at most 6 s
    ),
]


@pytest.mark.parametrize("case", SERVICE_CASES, ids=lambda case: case.name)
def test_secrets_manager_fault_then_healthy(
    case: ServiceCase, plaid: PlaidFaults, container: Callable[..., Container]
) -> None:
    with SecretsFaults(secret_doc()) as sm:
        cold = container(sm.endpoint, "plaid-link-token/double")
        sm.script(*case.actions)
        fault = cold.invoke()
        assert_problem(fault, case.code, case.cause, reads=1)
        assert len(sm.requests) == case.sm_requests
        assert fault.plaid_requests == 0
        assert case.at_least_s <= fault.seconds <= case.within_s, fault.seconds
        assert_ok(cold.invoke(), reads=1)
        assert_ok(cold.invoke())
        assert len(sm.requests) == case.sm_requests + 1  # cached after the good read
        assert plaid.connections == 1


def test_secrets_manager_slow_but_in_time(
    plaid: PlaidFaults, container: Callable[..., Container]
) -> None:
    with SecretsFaults(secret_doc()) as sm:
        cold = container(sm.endpoint, "plaid-link-token/double")
        sm.script(SmSlow(1.0))
        exchange = cold.invoke()
        assert_ok(exchange, reads=1)
        assert 1.0 <= exchange.seconds < 2.0
        assert len(sm.requests) == 1


def test_secrets_manager_unreachable_then_back(
    plaid: PlaidFaults, container: Callable[..., Container]
) -> None:
    with closed_port() as port:
        cold = container(f"http://127.0.0.1:{port}", "plaid-link-token/double")
        fault = cold.invoke()
    assert_problem(
        fault, "UPSTREAM_UNAVAILABLE", "Secrets Manager unreachable: EndpointConnectionError", 1
    )
    assert fault.seconds < 3 and fault.plaid_requests == 0
    with SecretsFaults(secret_doc(), port=port):
        assert_ok(cold.invoke(), reads=1)


def test_rotation_while_warm_rereads_once(
    plaid: PlaidFaults, secrets: Any, warm: Container, output: Output
) -> None:
    secrets.put_secret_value(SecretId=warm.secret_id, SecretString=secret_doc(ROTATED_SECRET))
    plaid.accept_keys(CLIENT_ID, ROTATED_SECRET)  # the old keys are revoked

    healed = warm.invoke()
    assert_ok(healed, attempts=2, reads=1)  # rejected once, one re-read, accepted
    assert plaid.requests[-1]["headers"]["PLAID-SECRET"] == ROTATED_SECRET
    assert_ok(warm.invoke())
    assert plaid.connections == 1  # a 400 keeps the connection
    assert_no_canary(output)


def test_wrong_secret_one_reread_no_loop(
    plaid: PlaidFaults, secrets: Any, warm: Container, output: Output
) -> None:
    plaid.accept_keys(CLIENT_ID, FIXED_SECRET)  # Plaid no longer accepts the stored keys

    fault = warm.invoke()
    assert_problem(
        fault,
        "UPSTREAM_REJECTED",
        "Plaid rejected client_id/secret: keys from another Plaid environment than PLAID_ENV, "
        "a rotated or mistyped secret (a fresh read returned the same keys)",
        reads=1,
    )
    assert fault.plaid_requests == 1 and fault.summary["attempts"] == 1
    assert fault.body["plaid_error_code"] == "INVALID_API_KEYS"
    assert fault.seconds < 1

    secrets.put_secret_value(SecretId=warm.secret_id, SecretString=secret_doc(FIXED_SECRET))
    assert_ok(warm.invoke(), attempts=2, reads=1)  # the operator's fix is picked up
    assert_ok(warm.invoke())
    assert plaid.connections == 1
    assert_no_canary(output)
