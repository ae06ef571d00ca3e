"""`linktoken.plaid_request.build_link_token_request`: the body sent to Plaid per platform and
configuration, and every body it can build checked against Plaid's own request schema.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from linktoken.link_options import LinkOptions
from linktoken.plaid_request import build_link_token_request
from linktoken.plaid_values import COUNTRY_CODES, LANGUAGES, LINK_PRODUCTS
from tests.conftest import (
    plaid_schema,
)
from tests.helpers_service import KEYS, FakePlaid, FakeSecrets, config, create, service, token

REQUEST_SCHEMA = "link_token_create_request.schema.json"


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
