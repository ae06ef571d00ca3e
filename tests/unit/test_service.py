"""`linktoken.service.LinkTokenService` with fakes: rotated keys get one refresh and one retry,
Plaid's other errors leave the secret alone, Plaid's message goes to the log, not the app, and
the outcome carries what the endpoint reports (attempts, latency, secret reads, pseudonym).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from linktoken.plaid_client import LinkToken, PlaidCallError
from linktoken.plaid_errors import READ_TIMEOUT, TLS_UNTRUSTED, PlaidError, classify
from linktoken.problems import Problem
from linktoken.secret_store import PlaidCredentials
from linktoken.service import LinkTokenService, Outcome
from tests.conftest import CLIENT_ID, HMAC_KEY, SECRET
from tests.helpers_service import KEYS, FakePlaid, FakeSecrets, create, service, token

ROTATED = PlaidCredentials(CLIENT_ID, "rotated-secret-value-2")
HMAC_KEYS = PlaidCredentials(CLIENT_ID, SECRET, user_id_hmac_key=HMAC_KEY.encode())


def plaid_failure(
    status: int,
    error_type: str,
    error_code: str,
    attempts: int = 1,
    latency_ms: float = 30.0,
    retry_after: int | None = None,
) -> PlaidCallError:
    body = {
        "error_type": error_type,
        "error_code": error_code,
        "error_message": f"{error_code} message",
        "request_id": f"req-{error_code[:10]}-{attempts}",
    }
    return PlaidCallError(classify(status, body), attempts, latency_ms, retry_after)


def bad_keys(attempts: int = 1, latency_ms: float = 30.0) -> PlaidCallError:
    return plaid_failure(400, "INVALID_INPUT", "INVALID_API_KEYS", attempts, latency_ms)


def created(svc: LinkTokenService) -> tuple[LinkToken, Outcome]:
    outcome = create(svc)
    assert outcome.token is not None and outcome.problem is None, outcome
    return outcome.token, outcome


def failed(svc: LinkTokenService) -> tuple[Problem, Outcome]:
    outcome = create(svc)
    assert outcome.token is None and outcome.problem is not None, outcome
    return outcome.problem, outcome


# --- INVALID_API_KEYS and rotation ------------------------------------------------------------


def test_rotated_keys_get_one_refresh_and_one_retry() -> None:
    secrets = FakeSecrets(KEYS, ROTATED)
    plaid = FakePlaid(bad_keys(latency_ms=30.0), token(attempts=1, latency_ms=45.5))

    result, outcome = created(service(secrets, plaid))

    assert result.link_token == "link-sandbox-abc"
    assert secrets.refreshes == [False, True]
    assert [credentials for _, credentials in plaid.calls] == [KEYS, ROTATED]
    assert (result.attempts, result.latency_ms) == (2, 75.5)
    assert (outcome.attempts, outcome.plaid_latency_ms, outcome.secret_reads) == (2, 75.5, 2)


def test_same_keys_after_refresh_means_no_second_call() -> None:
    secrets = FakeSecrets(KEYS, PlaidCredentials(CLIENT_ID, SECRET))  # equal, not identical
    plaid = FakePlaid(bad_keys(), token())

    problem, outcome = failed(service(secrets, plaid))

    assert len(plaid.calls) == 1
    assert secrets.refreshes == [False, True]
    assert (problem.code, problem.status, problem.plaid_error_code) == (
        "UPSTREAM_REJECTED",
        502,
        "INVALID_API_KEYS",
    )
    assert "same keys" in (problem.cause or "")
    assert outcome.attempts == 1


@pytest.mark.parametrize(
    ("second", "code", "attempts", "retry_after"),
    [
        (bad_keys(attempts=1, latency_ms=20.0), "UPSTREAM_REJECTED", 2, None),
        (plaid_failure(500, "API_ERROR", "INTERNAL_SERVER_ERROR", 3, 20.0), "UPSTREAM_UNAVAILABLE", 4, None),
        (plaid_failure(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", 3, 20.0, 7), "RATE_LIMITED", 4, 7),
    ],
)  # fmt: skip
def test_second_failure_is_reported_with_summed_attempts(
    second: PlaidCallError, code: str, attempts: int, retry_after: int | None
) -> None:
    secrets = FakeSecrets(KEYS, ROTATED)
    plaid = FakePlaid(bad_keys(attempts=1, latency_ms=30.0), second)

    problem, outcome = failed(service(secrets, plaid))

    assert len(plaid.calls) == 2  # never a third call, never a second refresh
    assert secrets.refreshes == [False, True]
    assert problem.code == code
    assert outcome.attempts == attempts
    assert outcome.plaid_latency_ms == 50.0
    assert problem.log["plaid_error_code"] == second.error.error_code
    assert problem.plaid_request_id == second.error.request_id
    assert problem.retry_after == retry_after
    assert "fresh secret read" in (problem.cause or "")


@pytest.mark.parametrize(
    "error",
    [
        plaid_failure(400, "INVALID_INPUT", "INVALID_PRODUCT"),
        plaid_failure(400, "INVALID_REQUEST", "INVALID_FIELD"),
        plaid_failure(400, "INVALID_INPUT", "UNAUTHORIZED_ENVIRONMENT"),
        plaid_failure(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", 3),
        plaid_failure(503, "API_ERROR", "PLANNED_MAINTENANCE", 3),
    ],
    ids=lambda e: e.error.error_code,
)
def test_other_plaid_errors_do_not_touch_the_secret(error: PlaidCallError) -> None:
    secrets = FakeSecrets(KEYS, ROTATED)
    plaid = FakePlaid(error, token())

    problem, outcome = failed(service(secrets, plaid))

    assert secrets.refreshes == [False]
    assert len(plaid.calls) == 1
    assert problem.plaid_error_code == error.error.error_code
    assert outcome.attempts == error.attempts


def test_rate_limit_without_retry_after_gets_a_default() -> None:
    plaid = FakePlaid(plaid_failure(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", 3))
    problem, _outcome = failed(service(FakeSecrets(KEYS), plaid))
    assert problem.code == "RATE_LIMITED"
    assert isinstance(problem.retry_after, int) and problem.retry_after > 0


def test_plaid_message_goes_to_the_log_not_to_the_app() -> None:
    plaid = FakePlaid(plaid_failure(400, "INVALID_REQUEST", "INVALID_FIELD"))

    problem, _outcome = failed(service(FakeSecrets(KEYS), plaid))

    assert problem.log["plaid_error_message"] == "INVALID_FIELD message"
    assert "INVALID_FIELD message" not in json.dumps(problem.body("req-1"))


def test_the_outcome_carries_the_secret_reads_and_the_users_pseudonym() -> None:
    secrets = FakeSecrets(HMAC_KEYS)
    svc = service(secrets, FakePlaid(token(attempts=2, latency_ms=12.5)))

    _token, outcome = created(svc)

    assert (outcome.attempts, outcome.plaid_latency_ms, outcome.secret_reads) == (2, 12.5, 1)
    expected = hmac.new(HMAC_KEY.encode(), b"user_ref:user-0001", hashlib.sha256).hexdigest()[:16]
    assert outcome.user_ref == expected


def test_a_failure_before_plaid_has_no_plaid_cost() -> None:
    class Unreadable(FakeSecrets):
        def get(self, refresh: bool = False) -> PlaidCredentials:
            self.reads += 1
            raise Problem("UPSTREAM_UNAVAILABLE", "x", cause="Secrets Manager unreachable: E")

    problem, outcome = failed(service(Unreadable(KEYS), FakePlaid()))

    assert problem.code == "UPSTREAM_UNAVAILABLE"
    assert (outcome.attempts, outcome.plaid_latency_ms, outcome.secret_reads) == (None, None, 1)
    assert outcome.user_ref is None  # the secret was never read: no keyed pseudonym yet
    assert outcome.bug is None


def test_a_bug_in_the_service_is_an_internal_error_outcome_with_the_exception() -> None:
    class Broken(FakePlaid):
        def create_link_token(self, *_args: Any) -> LinkToken:
            raise RuntimeError("kaboom")

    problem, outcome = failed(service(FakeSecrets(KEYS), Broken()))

    assert (problem.code, problem.detail) == (
        "INTERNAL_ERROR",
        "Unexpected error; report the request_id.",
    )
    assert isinstance(outcome.bug, RuntimeError)
    assert outcome.secret_reads == 1


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (
            plaid_failure(400, "INVALID_INPUT", "INVALID_PRODUCT"),
            "Plaid rejected the service's request because of this service's configuration; "
            "the app cannot fix this. Report the request_id to the service's operators.",
        ),
        (
            plaid_failure(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", 3),
            "Plaid is rate limiting this service; retry after the Retry-After delay.",
        ),
        (
            plaid_failure(503, "API_ERROR", "PLANNED_MAINTENANCE", 3),
            "Plaid is unavailable right now; retry shortly.",
        ),
        (
            PlaidCallError(PlaidError(TLS_UNTRUSTED, 0), 1, 3.0),
            "The service cannot reach Plaid securely; its operators have the details. "
            "Report the request_id.",
        ),
        (
            PlaidCallError(PlaidError(READ_TIMEOUT, 0), 2, 16000.0),
            "Plaid did not answer in time; retry shortly.",
        ),
    ],
    ids=["rejected", "rate-limited", "unavailable", "tls", "timeout"],
)
def test_the_app_is_told_the_rules_detail_else_its_codes(
    error: PlaidCallError, detail: str
) -> None:
    problem, _outcome = failed(service(FakeSecrets(KEYS), FakePlaid(error)))
    assert problem.detail == detail
