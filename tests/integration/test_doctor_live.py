"""`make doctor --live`: the network path and one real call per platform, against the loopback
Plaid stand-in (plain and TLS), each Plaid answer translated into its fix."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.doubles.loopback import make_loopback_tls
from infra.doubles.plaid_standin import PlaidStandIn, Scripted, plaid_error
from linktoken.plaid_errors import BY_ERROR_CODE, BY_ERROR_TYPE
from tests.conftest import SECRET, SECRET_ID
from tests.helpers_app import closed_port
from tests.helpers_doctor import finding, good_secret, moto, moto_url, put_secret, run_doctor

__all__ = ["moto", "moto_url"]  # fixtures

WEB = "link token (web/ios)"
ANDROID = "link token (android)"


@pytest.fixture
def live(moto: str, plaid: PlaidStandIn, monkeypatch: pytest.MonkeyPatch) -> PlaidStandIn:
    """A good secret, the stand-in as Plaid, a redirect URI and an Android package."""
    put_secret(good_secret())
    monkeypatch.setenv("PLAID_BASE_URL", plaid.base_url)
    monkeypatch.setenv("PLAID_PRODUCTS", "transactions,auth")
    monkeypatch.setenv("PLAID_REDIRECT_URI", "https://app.example.com/oauth")
    monkeypatch.setenv("PLAID_ANDROID_PACKAGE_NAME", "com.example.app")
    return plaid


def twice(plaid: PlaidStandIn, *answers: Scripted) -> None:
    """run_doctor runs doctor twice (text, then --json): each run gets the same answers, one
    per platform (web/iOS first, then Android)."""
    plaid.script(*answers, *answers)


def test_good_configuration_gets_a_token_per_platform_shown_masked(live: PlaidStandIn) -> None:
    code, text, doc = run_doctor("--live")

    assert code == 0, text
    assert finding(doc, WEB)["status"] == "ok"
    assert finding(doc, ANDROID)["status"] == "ok"
    assert re.search(r"link-sandbox-\*\*\*\*[0-9a-f]{4} ", text)
    assert not re.search(r"link-sandbox-[0-9a-f]{8}-", text + json.dumps(doc))  # never whole
    assert "belong to PLAID_ENV=sandbox" in finding(doc, WEB)["detail"]
    # One call per platform per run: web/iOS with the redirect URI, Android with the package.
    bodies = [json.loads(r["body"]) for r in live.requests]
    assert len(bodies) == 4
    assert bodies[0]["redirect_uri"] == "https://app.example.com/oauth"
    assert "android_package_name" not in bodies[0]
    assert bodies[1]["android_package_name"] == "com.example.app"
    assert "redirect_uri" not in bodies[1]
    assert [finding(doc, c)["status"] for c in ("DNS", "TCP", "TLS")] == ["ok", "ok", "skip"]


def test_no_android_package_means_no_android_call(
    live: PlaidStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLAID_ANDROID_PACKAGE_NAME")

    code, _text, doc = run_doctor("--live")

    assert code == 0
    assert ANDROID not in {f["check"] for f in doc["findings"]}
    assert len(live.requests) == 2


def test_keys_from_another_environment_are_named(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in knows other keys than the secret holds: Plaid's INVALID_API_KEYS."""
    put_secret(good_secret())
    with PlaidStandIn(client_id="other-env-client", secret="other-env-secret") as plaid:
        monkeypatch.setenv("PLAID_BASE_URL", plaid.base_url)
        code, _text, doc = run_doctor("--live")

    assert code == 1
    web = finding(doc, WEB)
    assert web["status"] == "problem"
    assert "INVALID_API_KEYS" in web["detail"]
    assert web["fix"] == BY_ERROR_CODE["INVALID_API_KEYS"].fix
    assert "another Plaid environment" in web["detail"]


@pytest.mark.parametrize(
    ("answer", "status", "fix_says"),
    [
        (
            plaid_error(400, "INVALID_REQUEST", "INVALID_FIELD", "redirect_uri must be registered"),
            "problem",
            "Allowed redirect URIs",
        ),
        (
            plaid_error(
                400,
                "INVALID_INPUT",
                "INVALID_LINK_CUSTOMIZATION",
                "link customization has no use case",
            ),
            "problem",
            "Link use case",
        ),
        (
            plaid_error(400, "INVALID_REQUEST", "INVALID_FIELD", "no Link use case is configured"),
            "problem",
            "Link use case",
        ),
        (
            plaid_error(400, "INVALID_INPUT", "INVALID_PRODUCT", "auth is not enabled"),
            "problem",
            "enable the product",
        ),
        (
            plaid_error(400, "INVALID_INPUT", "PRODUCTS_NOT_SUPPORTED", "not supported"),
            "problem",
            "PLAID_PRODUCTS",
        ),
        (
            plaid_error(400, "INVALID_INPUT", "UNAUTHORIZED_ENVIRONMENT", "not authorized"),
            "problem",
            "request access",
        ),
        (
            plaid_error(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", "too many requests"),
            "warn",
            "not your configuration",
        ),
        (
            plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR", "internal error"),
            "warn",
            "not your configuration",
        ),
        (
            plaid_error(400, "INVALID_REQUEST", "PLANNED_MAINTENANCE", "maintenance"),
            "warn",
            "not your configuration",
        ),
    ],
)
def test_each_plaid_answer_is_translated_into_its_fix(
    live: PlaidStandIn, answer: Scripted, status: str, fix_says: str
) -> None:
    twice(live, answer, Scripted(200, _token()))

    code, text, doc = run_doctor("--live")

    web = finding(doc, WEB)
    assert web["status"] == status
    assert fix_says in web["fix"]
    assert answer.body["error_code"] in web["detail"]
    assert answer.body["request_id"] in web["detail"]  # to quote to Plaid support
    assert code == (1 if status == "problem" else 0)
    assert finding(doc, ANDROID)["status"] == "ok"
    assert f"fix      {web['fix']}" in text


def test_a_missing_use_case_is_named_as_the_functions_log_line_names_it(
    live: PlaidStandIn,
) -> None:
    answer = plaid_error(400, "INVALID_REQUEST", "INVALID_FIELD", "no Link use case is configured")
    twice(live, answer, Scripted(200, _token()))

    _code, _text, doc = run_doctor("--live")

    assert (
        ": Plaid wants a Link use case (Data Transparency Messaging) that is not set up in the "
        "Dashboard for these countries and language [sent "
    ) in finding(doc, WEB)["detail"]


def test_fix_comes_from_the_service_error_table(live: PlaidStandIn) -> None:
    twice(
        live, plaid_error(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT", "slow"), Scripted(200, _token())
    )
    _code, _text, doc = run_doctor("--live")
    assert finding(doc, WEB)["fix"] == BY_ERROR_TYPE["RATE_LIMIT_EXCEEDED"].fix


def test_unreachable_plaid_is_named_as_such(moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    put_secret(good_secret())
    with closed_port() as port:
        monkeypatch.setenv("PLAID_BASE_URL", f"http://127.0.0.1:{port}")
        code, text, doc = run_doctor("--live")

    assert code == 1
    assert finding(doc, "TCP")["status"] == "problem"
    assert "Plaid unreachable" in finding(doc, "TCP")["detail"]
    web = finding(doc, WEB)
    assert web["status"] == "problem"
    assert web["detail"].startswith("Plaid unreachable")
    assert "Plaid unreachable" in text


@pytest.fixture
def tls_plaid(tmp_path: Path) -> Iterator[tuple[PlaidStandIn, Path]]:
    from tests.conftest import CLIENT_ID

    tls = make_loopback_tls(tmp_path / "tls")
    with PlaidStandIn(client_id=CLIENT_ID, secret=SECRET, tls=tls.server_context()) as plaid:
        yield plaid, tls.ca_pem


def test_tls_that_verifies_is_ok(
    moto: str, tls_plaid: tuple[PlaidStandIn, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    plaid, ca = tls_plaid
    put_secret(good_secret())
    monkeypatch.setenv("PLAID_BASE_URL", plaid.base_url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))

    code, _text, doc = run_doctor("--live")

    assert code == 0
    assert finding(doc, "TLS")["status"] == "ok"
    assert "verified" in finding(doc, "TLS")["detail"]
    assert finding(doc, WEB)["status"] == "ok"


def test_certificate_that_does_not_verify_is_named_as_ca_bundle_or_interception(
    moto: str, tls_plaid: tuple[PlaidStandIn, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in's certificate is signed by a CA the bundle lacks: what an intercepting
    proxy looks like from the function."""
    import certifi

    plaid, _ca = tls_plaid
    put_secret(good_secret())
    monkeypatch.setenv("PLAID_BASE_URL", plaid.base_url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())

    code, _text, doc = run_doctor("--live")

    assert code == 1
    tls = finding(doc, "TLS")
    assert tls["status"] == "problem"
    assert "does not verify" in tls["detail"]
    assert "loopback CA (not Plaid)" in tls["detail"]  # who signed what was presented
    assert "intercepting" in tls["fix"] and "REQUESTS_CA_BUNDLE" in tls["fix"]
    web = finding(doc, WEB)
    assert web["status"] == "problem" and "certificate did not verify" in web["detail"]


def test_proxy_variables_are_read_by_the_services_rule(
    live: PlaidStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://user:pw@127.0.0.1:9")  # would refuse: never used
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    _code, text, doc = run_doctor("--live")

    proxy = finding(doc, "proxy")
    assert proxy["status"] == "ok" and "NO_PROXY" in proxy["detail"]
    assert finding(doc, WEB)["status"] == "ok"  # the call went direct, as the service's would
    assert "user:pw" not in text


def test_a_proxy_the_service_would_use_is_named_without_its_credentials() -> None:
    from infra.doctor.network import check_proxy

    found = check_proxy(
        "https://sandbox.plaid.com",
        {"HTTPS_PROXY": "http://user:pw@proxy.internal:3128", "NO_PROXY": "localhost"},
    )

    assert found.status == "warn" and "proxy.internal:3128" in found.detail
    assert "user:pw" not in found.detail
    assert (
        check_proxy(
            "https://sandbox.plaid.com", {"https_proxy": "http://p:1", "no_proxy": ".plaid.com"}
        ).status
        == "ok"
    )


def test_secret_echoed_by_plaid_or_a_proxy_is_redacted(live: PlaidStandIn) -> None:
    echoed = plaid_error(400, "INVALID_INPUT", "INVALID_API_KEYS", f"bad secret {SECRET}")
    twice(live, echoed, Scripted(200, _token()))

    code, text, _doc = run_doctor("--live")  # run_doctor asserts SECRET is in neither output

    assert code == 1
    assert "bad secret [redacted]" in text


def test_live_with_a_broken_configuration_does_not_call_plaid(
    live: PlaidStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAID_ENV", "development")

    code, _text, doc = run_doctor("--live")

    assert code == 1
    assert finding(doc, "link token")["status"] == "skip"
    assert live.requests == []


def _token() -> dict[str, Any]:
    return {"link_token": "link-sandbox-0000", "expiration": "2030-01-01T00:00:00Z"}


def test_a_stack_calls_plaid_once_for_the_configuration_its_functions_share(
    live: PlaidStandIn,
) -> None:
    """Three functions with the same PLAID_* and secret: one call per platform, for the first;
    the others say so. A function with its own configuration gets its own calls."""
    from tests.helpers_doctor import ITEMS_KEY_ID, ITEMS_TABLE, create_stack

    env = {
        "PLAID_SECRET_ID": SECRET_ID,
        "PLAID_CLIENT_NAME": "Acme",
        "PLAID_BASE_URL": live.base_url,
        "ITEMS_TABLE": ITEMS_TABLE,
        "ITEMS_KEY_ID": ITEMS_KEY_ID,
    }
    create_stack(
        "live-stack",
        {
            "LinkTokenFunction": ("app.lambda_handler", env),
            "ItemExchangeFunction": ("exchange_app.lambda_handler", env),
            "ItemsFunction": ("items_app.lambda_handler", {**env, "PLAID_PRODUCTS": "auth"}),
        },
    )

    _code, _text, doc = run_doctor("--stack", "live-stack", "--live")

    calls = {f["function"]: f for f in doc["findings"] if f["check"] in (WEB, "link token")}
    assert calls["LinkTokenFunction"]["status"] == "ok"
    assert calls["ItemExchangeFunction"]["status"] == "skip"
    assert (
        "the same configuration and secret as LinkTokenFunction's"
        in (calls["ItemExchangeFunction"]["detail"])
    )
    assert calls["ItemsFunction"]["status"] == "ok"  # its own products: its own call
    products = [json.loads(r["body"])["products"] for r in live.requests]
    assert products == [["transactions"], ["auth"]] * 2  # text run, then --json run
