"""`linktoken.plaid_errors`: the table from Plaid's errors to the service's problem codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from linktoken import plaid_errors
from linktoken.plaid_errors import (
    BY_ERROR_CODE,
    BY_ERROR_TYPE,
    UNKNOWN_ERROR,
    UNPARSEABLE,
    Rule,
    classify,
)
from linktoken.problems import PROBLEM_TYPES
from tests.conftest import plaid_schema

# Every lookup table in the module (BY_ERROR_CODE, BY_ERROR_TYPE, BY_HTTP_STATUS, ...), found
# by name so that a new table cannot slip past these tests.
TABLES: dict[str, dict[Any, Rule]] = {
    name: table
    for name, table in vars(plaid_errors).items()
    if name.startswith("BY_") and isinstance(table, dict)
}

# The status the service's error table gives each row (through the app-facing code behind it).
EXPECTED_STATUS: dict[str, dict[Any, int]] = {
    "BY_ERROR_CODE": {
        "INVALID_API_KEYS": 502,
        "UNAUTHORIZED_ENVIRONMENT": 502,
        "INVALID_PRODUCT": 502,
        "PRODUCTS_NOT_SUPPORTED": 502,
        "INVALID_FIELD": 502,
        "INVALID_LINK_CUSTOMIZATION": 502,
        "MISSING_FIELDS": 502,
        "UNKNOWN_FIELDS": 502,
        "INVALID_BODY": 502,
        "INVALID_HEADERS": 502,
        "UNAUTHORIZED_ROUTE_ACCESS": 502,
        "INVALID_PUBLIC_TOKEN": 400,  # the exchange: the app's public token, not the service
        "INVALID_ACCESS_TOKEN": 502,
        "ITEM_NOT_FOUND": 404,  # removed at Plaid: the app's Item is gone
        "PLANNED_MAINTENANCE": 503,
        "INTERNAL_SERVER_ERROR": 503,
    },
    "BY_ERROR_TYPE": {
        "RATE_LIMIT_EXCEEDED": 429,
        "API_ERROR": 503,
        "INVALID_REQUEST": 502,
        "INVALID_INPUT": 502,
    },
    "BY_HTTP_STATUS": {429: 429},
    "BY_STATUS_CLASS": {5: 503},  # any 5xx without a Plaid error object
    "BY_MESSAGE_HINT": {"use case": 502},  # a rejection whose message names a missing use case
}
ROWS = [
    pytest.param(table, key, status, id=f"{table}-{key}")
    for table, expected in EXPECTED_STATUS.items()
    for key, status in expected.items()
]
STATUS_CODE = {
    400: "INVALID_PUBLIC_TOKEN",
    404: "ITEM_NOT_FOUND",
    429: "RATE_LIMITED",
    502: "UPSTREAM_REJECTED",
    503: "UPSTREAM_UNAVAILABLE",
}


def test_every_table_is_covered_here() -> None:
    assert set(TABLES) == set(EXPECTED_STATUS)


@pytest.mark.parametrize("table", sorted(EXPECTED_STATUS))
def test_every_row_of_the_table_is_covered_here(table: str) -> None:
    assert set(TABLES[table]) == set(EXPECTED_STATUS[table])


@pytest.mark.parametrize(("table", "key", "status"), ROWS)
def test_each_row_maps_to_a_known_code_with_the_issue_status(
    table: str, key: Any, status: int
) -> None:
    rule = TABLES[table][key]

    assert rule.problem_code in PROBLEM_TYPES
    assert rule.problem_code == STATUS_CODE[status]
    assert PROBLEM_TYPES[rule.problem_code].status == status
    # Retried within the invocation exactly when the app is told it may retry.
    assert rule.retry is PROBLEM_TYPES[rule.problem_code].retryable
    assert rule.cause.strip()


@pytest.mark.parametrize("rule", [UNKNOWN_ERROR, UNPARSEABLE], ids=["unknown", "unparseable"])
def test_fallback_rules_are_502_and_final(rule: Rule) -> None:
    assert PROBLEM_TYPES[rule.problem_code].status == 502
    assert (rule.retry, rule.refresh_secret) == (False, False)


def test_only_invalid_api_keys_refreshes_the_secret() -> None:
    refreshing = [
        key for table in TABLES.values() for key, rule in table.items() if rule.refresh_secret
    ]
    assert refreshing == ["INVALID_API_KEYS"]


def test_table_statuses_cover_the_issue_codes() -> None:
    codes = {rule.problem_code for table in TABLES.values() for rule in table.values()}
    assert codes == {
        "RATE_LIMITED",
        "UPSTREAM_REJECTED",
        "UPSTREAM_UNAVAILABLE",
        "INVALID_PUBLIC_TOKEN",
        "ITEM_NOT_FOUND",
    }
    assert PROBLEM_TYPES["UPSTREAM_TIMEOUT"].status == 504  # timeouts come from the client


# --- precedence -------------------------------------------------------------------------------


def error_body(error_type: Any, error_code: Any, **extra: Any) -> dict[str, Any]:
    return {
        "error_type": error_type,
        "error_code": error_code,
        "error_message": "message for the operator",
        "display_message": None,
        "request_id": "Q7xbIhRbvmSdVmr",
        **extra,
    }


def by_status(status: int) -> tuple[str, bool]:
    """What an answer without a usable Plaid error object becomes: (our code, retried)."""
    if status == 429:
        return "RATE_LIMITED", True
    if 500 <= status <= 599:
        return "UPSTREAM_UNAVAILABLE", True
    return "UPSTREAM_REJECTED", False


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        # error_code wins over error_type ...
        (429, error_body("RATE_LIMIT_EXCEEDED", "INVALID_FIELD"), BY_ERROR_CODE["INVALID_FIELD"]),
        (400, error_body("INVALID_INPUT", "INTERNAL_SERVER_ERROR"), BY_ERROR_CODE["INTERNAL_SERVER_ERROR"]),
        # ... error_type wins over the HTTP status ...
        (500, error_body("INVALID_REQUEST", "SOMETHING_NEW"), BY_ERROR_TYPE["INVALID_REQUEST"]),
        (400, error_body("RATE_LIMIT_EXCEEDED", "SOMETHING_NEW"), BY_ERROR_TYPE["RATE_LIMIT_EXCEEDED"]),
        # ... the HTTP status decides when neither is known ...
        (503, error_body("NEW_TYPE", "SOMETHING_NEW"), by_status(503)),
        (520, error_body("NEW_TYPE", "SOMETHING_NEW"), by_status(520)),
        (429, error_body("NEW_TYPE", "SOMETHING_NEW"), by_status(429)),
        # ... and an unknown error at any other status is final.
        (400, error_body("NEW_TYPE", "SOMETHING_NEW"), UNKNOWN_ERROR),
        (418, error_body(None, "SOMETHING_NEW"), UNKNOWN_ERROR),
    ],
)  # fmt: skip
def test_error_code_then_error_type_then_http_status(
    status: int, body: dict[str, Any], expected: Rule | tuple[str, bool]
) -> None:
    error = classify(status, body)

    if isinstance(expected, Rule):
        assert error.rule is expected
    else:
        assert (error.rule.problem_code, error.rule.retry) == expected
    assert error.http_status == status
    assert error.error_code == body["error_code"]
    assert error.request_id == body["request_id"]
    assert error.error_message == body["error_message"]


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "<html>502 Bad Gateway</html>",
        b"\x00\x01",
        ["INVALID_FIELD"],
        42,
        {},
        {"error_type": "RATE_LIMIT_EXCEEDED"},  # no error_code: not a Plaid error object
        {"error_code": 7, "error_type": "INVALID_INPUT"},
        {"error_code": None, "error_type": "API_ERROR"},
        {"message": "Internal server error"},  # an AWS/CDN-style body
    ],
)
@pytest.mark.parametrize(
    "status", [200, 400, 404, 418, 429, 500, 501, 502, 503, 504, 507, 520, 599]
)
def test_unparseable_answers_use_the_http_status(payload: Any, status: int) -> None:
    error = classify(status, payload)

    assert (error.rule.problem_code, error.rule.retry) == by_status(status)
    assert error.http_status == status
    assert (error.error_type, error.error_code, error.error_message, error.request_id) == (
        None,
        None,
        None,
        None,
    )


def test_unparseable_non_5xx_answer_says_so_in_the_cause() -> None:
    assert classify(200, "<html>captive portal</html>").rule is UNPARSEABLE


@pytest.mark.parametrize(
    ("status", "error_type", "error_code", "message"),
    [
        (400, "INVALID_REQUEST", "INVALID_FIELD", "no Link use case is configured"),
        (400, "INVALID_INPUT", "INVALID_LINK_CUSTOMIZATION", "link customization has no Use Case"),
        (400, "INVALID_REQUEST", "SOMETHING_NEW", "use case missing for US"),
    ],
)
def test_a_rejection_naming_a_missing_use_case_says_so(
    status: int, error_type: str, error_code: str, message: str
) -> None:
    error = classify(status, error_body(error_type, error_code, error_message=message))

    assert error.rule.problem_code == "UPSTREAM_REJECTED"
    assert "Link use case" in error.rule.cause
    assert "Data Transparency Messaging" in error.rule.fix
    assert error.error_code == error_code  # Plaid's own fields stay as sent


@pytest.mark.parametrize(
    ("status", "error_type", "error_code"),
    [
        (400, "INVALID_INPUT", "INVALID_API_KEYS"),  # still refreshes the secret
        (429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT"),  # still transient
        (503, "API_ERROR", "PLANNED_MAINTENANCE"),
    ],
)
def test_a_use_case_message_does_not_change_refreshing_or_transient_rules(
    status: int, error_type: str, error_code: str
) -> None:
    body = error_body(error_type, error_code, error_message="mentions a use case anyway")
    assert "use case" not in classify(status, body).rule.cause.lower()


def test_every_rule_is_listed_once_with_a_fix() -> None:
    rules = plaid_errors.all_rules()

    assert len(rules) == len(set(rules))
    causes = [rule.cause for rule in rules]
    assert len(causes) == len(set(causes))  # a log line's cause names one rule
    for name in ("READ_TIMEOUT", "CONNECT_FAILED", "TLS_UNTRUSTED", "NO_TIME"):
        assert getattr(plaid_errors, name) in rules
    assert all(rule.fix.strip() for rule in rules)


def test_empty_or_non_string_fields_are_dropped() -> None:
    error = classify(
        400, error_body(["INVALID_INPUT"], "INVALID_API_KEYS", error_message="", request_id=7)
    )
    assert error.rule is BY_ERROR_CODE["INVALID_API_KEYS"]
    assert (error.error_type, error.error_message, error.request_id) == (None, None, None)


# --- real Plaid error bodies, checked against Plaid's own schema ------------------------------


def real(
    http_status: int, error_type: str, error_code: str, message: str, expected: int, **extra: Any
) -> Any:
    """An error body as Plaid sends it (request ids in Plaid's 15-character form)."""
    body = {
        "error_type": error_type,
        "error_code": error_code,
        "error_message": message,
        "display_message": None,
        "request_id": (error_code.replace("_", "") + "x" * 15)[:15],
        **extra,
    }
    return pytest.param(http_status, body, expected, id=error_code)


REAL_ERRORS = [
    real(400, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret provided", 502,
         causes=[], status=None, suggested_action=None,
         documentation_url="https://plaid.com/docs/errors/invalid-input/#invalid_api_keys"),
    real(400, "INVALID_INPUT", "UNAUTHORIZED_ENVIRONMENT",
         "you are not authorized to create items for this environment", 502),
    real(400, "INVALID_REQUEST", "INVALID_FIELD",
         "OAuth redirect URI must be configured in the developer dashboard. "
         "See https://dashboard.plaid.com/team/api", 502, error_code_reason=None),
    real(400, "INVALID_REQUEST", "INVALID_PRODUCT",
         'client is not authorized to access the following products: ["identity_verification"]',
         502),
    real(400, "INVALID_REQUEST", "MISSING_FIELDS",
         "the following required fields are missing: client_name", 502),
    real(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT",
         "rate limit exceeded for attempts to access this item. please try again later", 429),
    real(500, "API_ERROR", "INTERNAL_SERVER_ERROR", "an unexpected error occurred", 503),
    real(503, "API_ERROR", "PLANNED_MAINTENANCE",
         "the Plaid API is temporarily unavailable due to planned maintenance", 503,
         display_message="Plaid is temporarily unavailable. Please try again later."),
]  # fmt: skip


@pytest.fixture(scope="module")
def plaid_error_validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(plaid_schema("plaid_error.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize(("http_status", "body", "status"), REAL_ERRORS)
def test_real_plaid_errors_are_valid_and_map_as_the_issue_says(
    plaid_error_validator: Any, http_status: int, body: dict[str, Any], status: int
) -> None:
    plaid_error_validator.validate(body)

    error = classify(http_status, body)

    assert PROBLEM_TYPES[error.rule.problem_code].status == status
    assert error.request_id == body["request_id"]
    assert error.error_message == body["error_message"]


@pytest.mark.parametrize(
    "body",
    [
        {"error_type": "NOT_A_PLAID_TYPE", "error_code": "X", "error_message": "m", "display_message": None},
        {"error_type": "API_ERROR", "error_message": "m", "display_message": None},
        {"error_type": "API_ERROR", "error_code": 500, "error_message": "m", "display_message": None},
    ],
)  # fmt: skip
def test_the_schema_check_is_not_vacuous(plaid_error_validator: Any, body: dict[str, Any]) -> None:
    assert not plaid_error_validator.is_valid(body)


def test_the_stand_in_speaks_plaid_errors(plaid_error_validator: Any) -> None:
    from infra.doubles.plaid_standin import plaid_error

    scripted = plaid_error(400, "INVALID_INPUT", "INVALID_API_KEYS", "invalid keys")
    plaid_error_validator.validate(scripted.body)
    assert classify(scripted.status, scripted.body).rule is BY_ERROR_CODE["INVALID_API_KEYS"]
