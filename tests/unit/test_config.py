"""`linktoken.config.load_config`: every variable, and the cold start with a bad environment."""

from __future__ import annotations

from typing import Any

import pytest

from infra.doubles.lambda_runtime import LambdaContext
from linktoken.config import Config, ConfigError, load_config
from linktoken.plaid_values import LINK_PRODUCTS
from tests.conftest import body_of, make_event
from tests.helpers_app import cold_started_app

REQUIRED = {"PLAID_SECRET_ID": "plaid/link", "PLAID_CLIENT_NAME": "Acme"}


def config(**env: str) -> Config:
    return load_config({**REQUIRED, **env})


def refused(**env: str) -> str:
    """The ConfigError message for this environment (on top of the required variables)."""
    with pytest.raises(ConfigError) as raised:
        load_config({k: v for k, v in {**REQUIRED, **env}.items() if v is not None})
    return str(raised.value)


# --- required variables and defaults ------------------------------------------------------


def test_defaults_when_only_required_variables_are_set() -> None:
    cfg = load_config(REQUIRED)

    assert cfg == Config(
        secret_id="plaid/link",
        client_name="Acme",
        plaid_env="sandbox",
        base_url="https://sandbox.plaid.com",
        products=("transactions",),
        country_codes=("US",),
        language="en",
        redirect_uri=None,
        android_package_name=None,
        webhook_url=None,
        secret_ttl_seconds=300,
    )


@pytest.mark.parametrize("value", [None, "", "   "])
@pytest.mark.parametrize("name", ["PLAID_SECRET_ID", "PLAID_CLIENT_NAME"])
def test_required_variable_missing_or_blank_is_refused(name: str, value: str | None) -> None:
    env: dict[str, Any] = {**REQUIRED, name: value}
    assert name in refused(**env)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a" * 30, "a" * 30),
        ("x", "x"),
        ("  Acme Bank  ", "Acme Bank"),  # surrounding whitespace is not part of the name
        ("é" * 30, "é" * 30),  # characters, not bytes
    ],
)
def test_client_name_up_to_30_characters_is_accepted(name: str, expected: str) -> None:
    assert config(PLAID_CLIENT_NAME=name).client_name == expected


def test_client_name_of_31_characters_is_refused() -> None:
    message = refused(PLAID_CLIENT_NAME="a" * 31)
    assert "PLAID_CLIENT_NAME" in message
    assert "30" in message


def test_secret_id_may_be_an_arn() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:plaid/link-AbCdEf"
    assert config(PLAID_SECRET_ID=arn).secret_id == arn


# --- PLAID_ENV --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "env", "base_url"),
    [
        ("sandbox", "sandbox", "https://sandbox.plaid.com"),
        ("production", "production", "https://production.plaid.com"),
        ("  Production ", "production", "https://production.plaid.com"),
        ("SANDBOX", "sandbox", "https://sandbox.plaid.com"),
        ("", "sandbox", "https://sandbox.plaid.com"),
    ],
)
def test_plaid_env_selects_plaid_host(value: str, env: str, base_url: str) -> None:
    cfg = config(PLAID_ENV=value)
    assert (cfg.plaid_env, cfg.base_url) == (env, base_url)


@pytest.mark.parametrize("value", ["development", "Development"])
def test_development_is_refused_because_plaid_retired_it(value: str) -> None:
    message = refused(PLAID_ENV=value)
    assert "PLAID_ENV" in message
    assert "June 2024" in message
    assert "retired" in message


@pytest.mark.parametrize("value", ["staging", "prod", "sandbox,production", "tartan"])
def test_unknown_plaid_env_is_refused(value: str) -> None:
    message = refused(PLAID_ENV=value)
    assert "PLAID_ENV" in message
    assert "sandbox" in message and "production" in message


# --- lists: products, countries, language -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "field", "expected"),
    [
        ("PLAID_PRODUCTS", " auth ,transactions,, auth ", "products", ("auth", "transactions")),
        ("PLAID_PRODUCTS", "AUTH,Identity", "products", ("auth", "identity")),
        ("PLAID_PRODUCTS", "transactions,transactions", "products", ("transactions",)),
        ("PLAID_COUNTRY_CODES", " us, GB ,US,ca ", "country_codes", ("US", "GB", "CA")),
        ("PLAID_COUNTRY_CODES", "de", "country_codes", ("DE",)),
    ],
)
def test_lists_ignore_whitespace_case_and_duplicates(
    name: str, raw: str, field: str, expected: tuple[str, ...]
) -> None:
    assert getattr(config(**{name: raw}), field) == expected


def test_every_plaid_values_product_is_accepted() -> None:
    raw = ",".join(sorted(LINK_PRODUCTS))
    assert set(config(PLAID_PRODUCTS=raw).products) == LINK_PRODUCTS


@pytest.mark.parametrize(
    ("name", "raw", "named"),
    [
        ("PLAID_PRODUCTS", "transactions,telepathy", "telepathy"),
        ("PLAID_PRODUCTS", "balance", "balance"),  # always available, never a Link product
        ("PLAID_PRODUCTS", "transactions, balance", "balance"),
        ("PLAID_PRODUCTS", " , ,", "at least one"),
        ("PLAID_COUNTRY_CODES", "US,XX", "XX"),
        ("PLAID_COUNTRY_CODES", "USA", "USA"),
        ("PLAID_COUNTRY_CODES", ",", "at least one"),
        ("PLAID_LANGUAGE", "klingon", "klingon"),
        ("PLAID_LANGUAGE", "en,fr", "en,fr"),  # one language, not a list
        ("PLAID_LANGUAGE", "ja", "ja"),
    ],
)
def test_values_plaid_does_not_accept_are_refused(name: str, raw: str, named: str) -> None:
    message = refused(**{name: raw})
    assert name in message
    assert named in message


@pytest.mark.parametrize(("raw", "expected"), [("FR", "fr"), (" es ", "es"), ("", "en")])
def test_language_is_normalised(raw: str, expected: str) -> None:
    assert config(PLAID_LANGUAGE=raw).language == expected


# --- PLAID_REDIRECT_URI -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "plaid_env"),
    [
        ("https://app.example.com/oauth", "sandbox"),
        ("https://app.example.com/oauth", "production"),
        ("https://app.example.com:8443/plaid/oauth-return.html", "production"),
        ("http://localhost:3000/oauth", "sandbox"),
        ("http://localhost/oauth", "sandbox"),
    ],
)
def test_redirect_uri_accepted(uri: str, plaid_env: str) -> None:
    assert config(PLAID_REDIRECT_URI=uri, PLAID_ENV=plaid_env).redirect_uri == uri


@pytest.mark.parametrize(
    ("uri", "plaid_env", "why"),
    [
        ("https://app.example.com/oauth?state=1", "sandbox", "query"),
        ("https://app.example.com/oauth?", "sandbox", "query"),
        ("https://app.example.com/oauth#done", "sandbox", "fragment"),
        ("https://app.example.com/oauth#", "sandbox", "fragment"),
        ("http://localhost:3000/oauth", "production", "sandbox"),
        ("http://app.example.com/oauth", "sandbox", "https"),
        ("http://127.0.0.1:3000/oauth", "sandbox", "https"),  # only the name localhost
        ("ftp://app.example.com/oauth", "sandbox", "https"),
        ("https:///oauth", "sandbox", "https"),
        ("app.example.com/oauth", "sandbox", "https"),
    ],
)
def test_redirect_uri_refused(uri: str, plaid_env: str, why: str) -> None:
    message = refused(PLAID_REDIRECT_URI=uri, PLAID_ENV=plaid_env)
    assert "PLAID_REDIRECT_URI" in message
    assert why in message


# --- PLAID_ANDROID_PACKAGE_NAME, PLAID_WEBHOOK_URL ------------------------------------------


@pytest.mark.parametrize("name", ["com.example.app", "com.Example_1.app2", "io.a.b.c.d"])
def test_android_package_name_accepted(name: str) -> None:
    assert config(PLAID_ANDROID_PACKAGE_NAME=name).android_package_name == name


@pytest.mark.parametrize(
    "name", ["example", "com.", ".com.example", "com..app", "1com.app", "com.1app", "com.ex-ample"]
)
def test_android_package_name_refused(name: str) -> None:
    assert "PLAID_ANDROID_PACKAGE_NAME" in refused(PLAID_ANDROID_PACKAGE_NAME=name)


@pytest.mark.parametrize(
    ("url", "plaid_env"),
    [
        ("https://hooks.example.com/plaid", "sandbox"),
        ("https://hooks.example.com/plaid", "production"),
        ("http://hooks.example.com:8080/plaid?x=1", "sandbox"),
        ("http://127.0.0.1:8080/plaid", "sandbox"),  # a local run's loopback receiver
        ("http://hooks.example.com/plaid", None),  # PLAID_ENV unset: sandbox
    ],
)
def test_webhook_accepted(url: str, plaid_env: str | None) -> None:
    env = {"PLAID_WEBHOOK_URL": url} | ({"PLAID_ENV": plaid_env} if plaid_env else {})
    assert config(**env).webhook_url == url


@pytest.mark.parametrize("url", ["hooks.example.com/plaid", "/plaid", "ftp://hooks.example.com"])
def test_webhook_refused(url: str) -> None:
    assert "PLAID_WEBHOOK_URL" in refused(PLAID_WEBHOOK_URL=url)


@pytest.mark.parametrize(
    "url",
    ["http://hooks.example.com/plaid", "HTTP://hooks.example.com/plaid", "http://localhost/x"],
)
def test_webhook_over_http_is_refused_in_production(url: str) -> None:
    """Production webhooks carry real Items' events: never in clear text."""
    message = refused(PLAID_WEBHOOK_URL=url, PLAID_ENV="production")
    assert message == "PLAID_WEBHOOK_URL must be https outside sandbox (http:// is refused)"


# --- PLAID_SECRET_TTL_SECONDS -----------------------------------------------------------------


@pytest.mark.parametrize(("raw", "ttl"), [("0", 0), ("1", 1), (" 60 ", 60), ("86400", 86_400)])
def test_ttl_within_bounds(raw: str, ttl: int) -> None:
    assert config(PLAID_SECRET_TTL_SECONDS=raw).secret_ttl_seconds == ttl


@pytest.mark.parametrize("raw", ["-1", "86401", "1.5", "5m", "abc"])
def test_ttl_out_of_bounds_or_not_a_number_is_refused(raw: str) -> None:
    assert "PLAID_SECRET_TTL_SECONDS" in refused(PLAID_SECRET_TTL_SECONDS=raw)


# --- PLAID_BASE_URL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base_url"),
    [
        ("https://sandbox.plaid.com", "https://sandbox.plaid.com"),
        ("https://production.plaid.com/", "https://production.plaid.com"),
        ("https://plaid.com", "https://plaid.com"),
        ("HTTPS://Sandbox.Plaid.COM", "HTTPS://Sandbox.Plaid.COM"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://127.0.0.1:8443/", "https://127.0.0.1:8443"),
        ("http://127.1.2.3:9000", "http://127.1.2.3:9000"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("https://localhost", "https://localhost"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_base_url_allowed(url: str, base_url: str) -> None:
    assert config(PLAID_BASE_URL=url).base_url == base_url


@pytest.mark.parametrize(
    "url",
    [
        "http://sandbox.plaid.com",  # credentials never travel without TLS
        "https://plaid.com.evil.example",
        "https://sandboxplaid.com",
        "https://evil.example/plaid.com",
        "https://evil.example/?host=sandbox.plaid.com",
        "https://sandbox.plaid.com@evil.example",
        "https://sandbox.plaid.com.",
        "http://10.0.0.1:8080",
        "http://192.168.1.10",
        "http://0.0.0.0:8080",
        "http://169.254.169.254",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "ftp://127.0.0.1",
        "sandbox.plaid.com",
        "//sandbox.plaid.com",
    ],
)
def test_base_url_anywhere_else_is_refused(url: str) -> None:
    message = refused(PLAID_BASE_URL=url)
    assert "PLAID_BASE_URL" in message
    assert url not in message  # the refused value could carry credentials: not echoed


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example\\@sandbox.plaid.com",
        "http://evil.example\\@127.0.0.1:8080",
        "https://evil.example\\\\@sandbox.plaid.com",
    ],
)
def test_base_url_where_parsers_disagree_is_refused(url: str) -> None:
    """urlsplit reads the host after '@' (an allowed one); requests connects to evil.example."""
    import requests
    from urllib3.util import parse_url

    prepared = requests.Request("POST", url + "/link/token/create").prepare()
    assert prepared.url is not None
    assert parse_url(prepared.url).host == "evil.example"  # where the secret would really go
    assert "PLAID_BASE_URL" in refused(PLAID_BASE_URL=url)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pass@sandbox.plaid.com",
        "https://sandbox.plaid.com\t.evil.example",
        "https://evil.example\t.plaid.com",
        "https://sandbox.plaid.com /x",
        "http://127.0.0.1:8080\n/x",  # embedded: surrounding whitespace is trimmed
    ],
)
def test_base_url_with_userinfo_or_whitespace_is_refused(url: str) -> None:
    assert "PLAID_BASE_URL" in refused(PLAID_BASE_URL=url)


# --- the cold start with a bad environment ----------------------------------------------------


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PLAID_SECRET_ID": None}, "PLAID_SECRET_ID"),
        ({"PLAID_CLIENT_NAME": "n" * 31}, "PLAID_CLIENT_NAME"),
        ({"PLAID_ENV": "development"}, "PLAID_ENV"),
        ({"PLAID_PRODUCTS": "balance"}, "PLAID_PRODUCTS"),
        ({"PLAID_REDIRECT_URI": "https://app.example.com/cb?x=1"}, "PLAID_REDIRECT_URI"),
        (
            {"PLAID_ENV": "production", "PLAID_WEBHOOK_URL": "http://hooks.example.com/plaid"},
            "PLAID_WEBHOOK_URL",
        ),
        ({"PLAID_BASE_URL": "https://plaid.com.evil.example"}, "PLAID_BASE_URL"),
        ({"PLAID_SECRET_TTL_SECONDS": "forever"}, "PLAID_SECRET_TTL_SECONDS"),
    ],
)
def test_bad_environment_gives_500_misconfigured_for_every_request(
    env: dict[str, str | None], variable: str, output: Any
) -> None:
    with cold_started_app(env) as app:  # the import itself must not raise
        assert app.CONTAINER.service is None
        [init_line] = output.logs("configuration_invalid")
        assert init_line["level"] == "ERROR"
        assert variable in init_line["cause"]

        events = [make_event({}), make_event({"platform": "ios"}), make_event(raw_body="{bad")]
        responses = [app.lambda_handler(event, LambdaContext()) for event in events]

    for event, response in zip(events, responses, strict=True):
        body = body_of(response)
        assert (response["statusCode"], body["code"]) == (500, "MISCONFIGURED")
        assert body["retryable"] is False
        assert body["request_id"] == event["requestContext"]["requestId"]
    failed = output.metrics()["LinkTokenFailed"]
    assert [doc["ErrorCode"] for doc in failed] == ["MISCONFIGURED"] * len(events)
    lines = output.logs("link_token_failed")
    assert [line["correlation_id"] for line in lines] == [
        event["requestContext"]["requestId"] for event in events
    ]
    for line in lines:
        assert line["error_code"] == "MISCONFIGURED"
        assert line["level"] == "ERROR"
        assert variable in line["cause"]


def test_good_environment_after_a_bad_one_builds_the_service() -> None:
    with cold_started_app({"PLAID_ENV": "development"}) as app:
        assert app.CONTAINER.service is None
    # cold_started_app re-imported app with the process environment, which is valid.
    assert app.CONTAINER.service is not None
    assert app.CONTAINER.config_error is None
