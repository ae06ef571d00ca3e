"""`linktoken.service.LinkTokenService` with fakes: rotated keys get one refresh and one retry,
Plaid's other errors leave the secret alone, and Plaid's message goes to the log, not the app.
"""

from __future__ import annotations

import json

import pytest

from linktoken.plaid_client import PlaidCallError
from linktoken.plaid_errors import classify
from linktoken.problems import Problem
from linktoken.secret_store import PlaidCredentials
from linktoken.service import LinkTokenService
from tests.conftest import (
    CLIENT_ID,
    SECRET,
)
from tests.helpers_service import KEYS, FakePlaid, FakeSecrets, create, service, token

ROTATED = PlaidCredentials(CLIENT_ID, "rotated-secret-value-2")


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


def failed(svc: LinkTokenService) -> Problem:
    with pytest.raises(Problem) as raised:
        create(svc)
    return raised.value


# --- INVALID_API_KEYS and rotation ------------------------------------------------------------


def test_rotated_keys_get_one_refresh_and_one_retry() -> None:
    secrets = FakeSecrets(KEYS, ROTATED)
    plaid = FakePlaid(bad_keys(latency_ms=30.0), token(attempts=1, latency_ms=45.5))

    result = create(service(secrets, plaid))

    assert result.link_token == "link-sandbox-abc"
    assert secrets.refreshes == [False, True]
    assert [credentials for _, credentials in plaid.calls] == [KEYS, ROTATED]
    assert (result.attempts, result.latency_ms) == (2, 75.5)


def test_same_keys_after_refresh_means_no_second_call() -> None:
    secrets = FakeSecrets(KEYS, PlaidCredentials(CLIENT_ID, SECRET))  # equal, not identical
    plaid = FakePlaid(bad_keys(), token())

    problem = failed(service(secrets, plaid))

    assert len(plaid.calls) == 1
    assert secrets.refreshes == [False, True]
    assert (problem.code, problem.status, problem.plaid_error_code) == (
        "UPSTREAM_REJECTED",
        502,
        "INVALID_API_KEYS",
    )
    assert "same keys" in (problem.cause or "")
    assert problem.log["attempts"] == 1


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

    problem = failed(service(secrets, plaid))

    assert len(plaid.calls) == 2  # never a third call, never a second refresh
    assert secrets.refreshes == [False, True]
    assert problem.code == code
    assert problem.log["attempts"] == attempts
    assert problem.log["plaid_latency_ms"] == 50.0
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

    problem = failed(service(secrets, plaid))

    assert secrets.refreshes == [False]
    assert len(plaid.calls) == 1
    assert problem.plaid_error_code == error.error.error_code
    assert problem.log["attempts"] == error.attempts


def test_rate_limit_without_retry_after_gets_a_default() -> None:
    plaid = FakePlaid(plaid_failure(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", 3))
    problem = failed(service(FakeSecrets(KEYS), plaid))
    assert problem.code == "RATE_LIMITED"
    assert isinstance(problem.retry_after, int) and problem.retry_after > 0


def test_plaid_message_goes_to_the_log_not_to_the_app() -> None:
    plaid = FakePlaid(plaid_failure(400, "INVALID_REQUEST", "INVALID_FIELD"))

    problem = failed(service(FakeSecrets(KEYS), plaid))

    assert problem.log["plaid_error_message"] == "INVALID_FIELD message"
    assert "INVALID_FIELD message" not in json.dumps(problem.body("req-1"))
