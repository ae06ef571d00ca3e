"""`linktoken.service.LinkTokenService` with fakes: rotation, HMAC identity, Plaid's body."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
from typing import Any

import pytest
from conftest import CLIENT_ID, HMAC_KEY, SECRET, body_of, make_event, plaid_schema, secret_json

from linktoken.config import Config, load_config
from linktoken.identity import user_ref
from linktoken.link_options import LinkOptions
from linktoken.plaid_client import LinkToken, PlaidCallError
from linktoken.plaid_errors import READ_TIMEOUT, TLS_UNTRUSTED, PlaidError, classify
from linktoken.plaid_request import build_link_token_request
from linktoken.plaid_values import COUNTRY_CODES, LANGUAGES, LINK_PRODUCTS
from linktoken.problems import Problem
from linktoken.secret_store import PlaidCredentials
from linktoken.service import LinkTokenService, Outcome

REQUEST_SCHEMA = "link_token_create_request.schema.json"
KEYS = PlaidCredentials(CLIENT_ID, SECRET)
ROTATED = PlaidCredentials(CLIENT_ID, "rotated-secret-value-2")
WEB = LinkOptions("web", ("transactions",), "en")


class FakeSecrets:
    """Hands out `versions[0]`; each forced refresh moves to the next version (or stays)."""

    def __init__(self, *versions: PlaidCredentials) -> None:
        self.versions = list(versions)
        self.refreshes: list[bool] = []
        self.reads = 0

    def get(self, refresh: bool = False) -> PlaidCredentials:
        self.refreshes.append(refresh)
        self.reads += 1
        if refresh and len(self.versions) > 1:
            self.versions.pop(0)
        return self.versions[0]

    @property
    def cached(self) -> PlaidCredentials | None:
        return self.versions[0] if self.refreshes else None


class FakePlaid:
    """Plays the scripted outcomes in order; records what it was asked."""

    def __init__(self, *outcomes: LinkToken | PlaidCallError) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[dict[str, Any], PlaidCredentials]] = []

    def create_link_token(
        self, body: dict[str, Any], credentials: PlaidCredentials, remaining: Any
    ) -> LinkToken:
        assert remaining() == 12.5  # the service passes the invocation's clock through
        self.calls.append((body, credentials))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, PlaidCallError):
            raise outcome
        return outcome


def token(attempts: int = 1, latency_ms: float = 40.0) -> LinkToken:
    return LinkToken("link-sandbox-abc", "2026-11-25T18:00:00Z", "reqOK", attempts, latency_ms)


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


def config(**env: str) -> Config:
    return load_config({"PLAID_SECRET_ID": "plaid", "PLAID_CLIENT_NAME": "Acme", **env})


def service(secrets: FakeSecrets, plaid: FakePlaid, cfg: Config | None = None) -> Any:
    return LinkTokenService(cfg or config(), secrets, plaid)  # type: ignore[arg-type]


def create(svc: LinkTokenService, sub: str = "user-0001", options: LinkOptions = WEB) -> Outcome:
    return svc.create(sub, options, lambda: 12.5)


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
            "Plaid rejected the link token request because of this service's configuration; "
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


# --- client_user_id ---------------------------------------------------------------------------


HMAC_KEYS = PlaidCredentials(CLIENT_ID, SECRET, user_id_hmac_key=HMAC_KEY.encode())


def sent_user_ids(credentials: PlaidCredentials, *subs: str) -> list[str]:
    plaid = FakePlaid(*(token() for _ in subs))
    svc = service(FakeSecrets(credentials), plaid)
    for sub in subs:
        create(svc, sub)
    return [body["user"]["client_user_id"] for body, _ in plaid.calls]


def test_client_user_id_is_the_sub_without_an_hmac_key() -> None:
    assert sent_user_ids(KEYS, "user-0001") == ["user-0001"]


def test_client_user_id_is_a_stable_hmac_of_the_sub_with_a_key() -> None:
    sub = "ada.lovelace@example.com"

    first, again, other = sent_user_ids(HMAC_KEYS, sub, sub, "grace.hopper@example.com")

    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert first == again
    assert first != other
    assert first == hmac.new(HMAC_KEY.encode(), sub.encode(), hashlib.sha256).hexdigest()


def test_hmac_depends_on_the_key() -> None:
    other_key = PlaidCredentials(CLIENT_ID, SECRET, user_id_hmac_key=b"another-key-of-16+ chars")
    assert sent_user_ids(HMAC_KEYS, "u1") != sent_user_ids(other_key, "u1")


def test_raw_sub_is_neither_sent_to_plaid_nor_logged(
    invoke: Any, plaid: Any, aws: Any, output: Any
) -> None:
    aws.put_secret_value(
        SecretId="plaid-link-token/test", SecretString=secret_json(user_id_hmac_key=HMAC_KEY)
    )
    sub = "ada.lovelace@example.com"

    response = invoke(make_event({}, sub=sub))

    assert response["statusCode"] == 200
    [request] = plaid.requests
    sent = json.loads(request["body"])["user"]["client_user_id"]
    assert sent == hmac.new(HMAC_KEY.encode(), sub.encode(), hashlib.sha256).hexdigest()
    assert sub.encode() not in request["body"]
    assert sub not in json.dumps(request["headers"])
    assert sub not in output.read()
    assert sub not in json.dumps(body_of(response))
    [line] = output.logs("link_token_created")
    assert line["user_ref"] == user_ref(sub, HMAC_KEY.encode())  # keyed: no list reverses it
    assert line["user_ref"] != hashlib.sha256(sub.encode()).hexdigest()[:16]


# --- the body sent to Plaid -------------------------------------------------------------------


FULL = {
    "PLAID_PRODUCTS": "transactions,auth",
    "PLAID_COUNTRY_CODES": "US,CA",
    "PLAID_REDIRECT_URI": "https://app.example.com/oauth",
    "PLAID_ANDROID_PACKAGE_NAME": "com.example.app",
    "PLAID_WEBHOOK_URL": "https://hooks.example.com/plaid",
}
BASE_BODY = {
    "client_name": "Acme",
    "language": "fr",
    "country_codes": ["US", "CA"],
    "user": {"client_user_id": "user-0001"},
    "products": ["auth"],
}
REDIRECT = {"redirect_uri": FULL["PLAID_REDIRECT_URI"]}
PACKAGE = {"android_package_name": FULL["PLAID_ANDROID_PACKAGE_NAME"]}
WEBHOOK = {"webhook": FULL["PLAID_WEBHOOK_URL"]}


def without(*names: str) -> dict[str, str]:
    return {k: v for k, v in FULL.items() if k not in names}


@pytest.mark.parametrize(
    ("env", "platform", "extra"),
    [
        (FULL, "web", {**REDIRECT, **WEBHOOK}),
        (FULL, "ios", {**REDIRECT, **WEBHOOK}),
        (FULL, "android", {**PACKAGE, **WEBHOOK}),
        (without("PLAID_WEBHOOK_URL"), "web", REDIRECT),
        (without("PLAID_WEBHOOK_URL"), "ios", REDIRECT),
        (without("PLAID_WEBHOOK_URL"), "android", PACKAGE),
        (without("PLAID_REDIRECT_URI"), "web", WEBHOOK),
        (without("PLAID_REDIRECT_URI"), "ios", WEBHOOK),
        (without("PLAID_REDIRECT_URI", "PLAID_WEBHOOK_URL"), "android", PACKAGE),
        (without("PLAID_REDIRECT_URI", "PLAID_WEBHOOK_URL", "PLAID_ANDROID_PACKAGE_NAME"), "web", {}),
    ],
)  # fmt: skip
def test_plaid_body_per_platform(env: dict[str, str], platform: str, extra: dict[str, str]) -> None:
    plaid = FakePlaid(token())
    svc = service(FakeSecrets(KEYS), plaid, config(**env))

    create(svc, options=LinkOptions(platform, ("auth",), "fr"))

    [(body, credentials)] = plaid.calls
    assert body == {**BASE_BODY, **extra}
    assert credentials == KEYS
    assert not {"client_id", "secret"} & set(body)


def every_builder_body() -> list[dict[str, Any]]:
    """Bodies across platforms, configurations, each product, country and language."""
    configs = [config(**FULL), config(**without("PLAID_REDIRECT_URI", "PLAID_WEBHOOK_URL"))]
    configs.append(config(PLAID_COUNTRY_CODES=",".join(sorted(COUNTRY_CODES))))
    bodies = []
    for cfg, platform in itertools.product(configs, ("web", "ios", "android")):
        if platform == "android" and cfg.android_package_name is None:
            continue
        options = LinkOptions(platform, cfg.products, cfg.language)
        bodies.append(build_link_token_request(cfg, options, "user-0001"))
    everything = config(PLAID_PRODUCTS=",".join(sorted(LINK_PRODUCTS)))
    for product in sorted(LINK_PRODUCTS):
        options = LinkOptions("web", (product,), "en")
        bodies.append(build_link_token_request(everything, options, "u"))
    for language in sorted(LANGUAGES):
        options = LinkOptions("web", ("transactions",), language)
        bodies.append(build_link_token_request(config(), options, "h" * 64))
    return bodies


@pytest.fixture(scope="module")
def request_validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(plaid_schema(REQUEST_SCHEMA).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_every_body_the_builder_produces_matches_plaids_schema(request_validator: Any) -> None:
    bodies = every_builder_body()
    assert len(bodies) > len(LINK_PRODUCTS) + len(LANGUAGES)

    problems = [
        (body, error.message) for body in bodies for error in request_validator.iter_errors(body)
    ]

    assert problems == []


def test_languages_are_the_ones_plaids_schema_lists() -> None:
    description = json.loads(plaid_schema(REQUEST_SCHEMA).read_text())["properties"]["language"][
        "description"
    ]
    # The spec has no enum for `language`; its description lists them as (`'xx'`).
    assert set(re.findall(r"\(`'([a-z]{2})'`\)", description)) == LANGUAGES


@pytest.mark.parametrize(
    "change",
    [
        {"products": ["balance_transfer_x"]},
        {"country_codes": ["XX"]},
        {"client_name": ""},
        {"user": {"client_user_id": 42}},
    ],
)
def test_the_schema_check_is_not_vacuous(request_validator: Any, change: dict[str, Any]) -> None:
    assert not request_validator.is_valid({**BASE_BODY, **change})
