"""`make doctor` offline: every wrong variable and secret named with its fix, a good
configuration passing, the secret never printed (moto server plays Secrets Manager)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from linktoken.config import SETTINGS, ConfigError, load_config
from linktoken.service import NO_HMAC_KEY_CAUSE
from tests.conftest import CLIENT_ID, HMAC_KEY, ROOT, SECRET, SECRET_ID
from tests.helpers_doctor import (
    ITEMS_KEY_ID,
    ITEMS_TABLE,
    finding,
    good_secret,
    moto,
    moto_url,
    put_secret,
    run_doctor,
    statuses,
)

__all__ = ["moto", "moto_url"]  # fixtures


def test_good_configuration_passes_and_shows_the_client_id_masked(moto: str) -> None:
    put_secret(good_secret())

    code, text, doc = run_doctor()

    assert code == 0, text
    assert doc["ok"] is True and doc["problems"] == 0
    assert {f["status"] for f in doc["findings"]} <= {"ok", "skip"}
    assert "****" + CLIENT_ID[-4:] in text
    assert CLIENT_ID not in text
    assert "0 problem(s)" in text
    # Offline, the keys' environment is honestly not known: it says so and points at --live.
    keys = finding(doc, "keys' environment")
    assert keys["status"] == "skip" and "--live" in keys["fix"]


@pytest.mark.parametrize(
    ("env", "variable", "said", "fix"),
    [
        ({"PLAID_ENV": "development"}, "PLAID_ENV", "retired", "sandbox or production"),
        ({"PLAID_ENV": "staging"}, "PLAID_ENV", "must be one of", "sandbox or production"),
        ({"PLAID_PRODUCTS": "transactions,balance"}, "PLAID_PRODUCTS", "'balance'", "balance"),
        ({"PLAID_PRODUCTS": "transactions,loans"}, "PLAID_PRODUCTS", "loans", "Link products"),
        ({"PLAID_COUNTRY_CODES": "US,XX"}, "PLAID_COUNTRY_CODES", "XX", "country codes"),
        ({"PLAID_LANGUAGE": "tlh"}, "PLAID_LANGUAGE", "tlh", "Link's languages"),
        ({"PLAID_CLIENT_NAME": "n" * 31}, "PLAID_CLIENT_NAME", "1-30", "1-30 characters"),
        (
            {"PLAID_REDIRECT_URI": "http://app.example.com/oauth"},
            "PLAID_REDIRECT_URI",
            "must be an https URL",
            "Allowed redirect URIs",
        ),
        (
            {"PLAID_REDIRECT_URI": "https://app.example.com/oauth?next=1"},
            "PLAID_REDIRECT_URI",
            "query string",
            "without query string",
        ),
        (
            {"PLAID_REDIRECT_URI": "http://localhost:3000/oauth", "PLAID_ENV": "production"},
            "PLAID_REDIRECT_URI",
            "only accepted in sandbox",
            "http://localhost",
        ),
        (
            {"PLAID_ANDROID_PACKAGE_NAME": "my app"},
            "PLAID_ANDROID_PACKAGE_NAME",
            "com.example.app",
            "package name",
        ),
        ({"PLAID_BASE_URL": "https://evil.example"}, "PLAID_BASE_URL", "plaid.com", "unset"),
        ({"ITEMS_TABLE": "t"}, "ITEMS_TABLE", "DynamoDB table name", "Items table's name"),
        ({"ITEMS_KEY_ID": "my key"}, "ITEMS_KEY_ID", "KMS key id", "ItemsKey"),
    ],
)
def test_each_misconfiguration_is_named_with_its_fix(
    moto: str,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    variable: str,
    said: str,
    fix: str,
) -> None:
    put_secret(good_secret())
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    code, text, doc = run_doctor()

    assert code == 1
    found = finding(doc, variable)
    assert found["status"] == "problem"
    assert said in found["detail"]
    assert fix in found["fix"]
    assert f"problem  {found['detail']}" in text
    assert f"fix      {found['fix']}" in text
    # One source of truth: the words are exactly those the function's own load_config uses.
    with pytest.raises(ConfigError) as raised:
        load_config({"PLAID_SECRET_ID": SECRET_ID, "PLAID_CLIENT_NAME": "Test App", **env})
    assert found["detail"] == str(raised.value)


def test_every_wrong_variable_is_named_not_only_the_first(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_secret(good_secret())
    wrong = {
        "PLAID_CLIENT_NAME": "n" * 40,
        "PLAID_ENV": "development",
        "PLAID_PRODUCTS": "balance",
        "PLAID_REDIRECT_URI": "https://app.example.com/cb#frag",
    }
    for name, value in wrong.items():
        monkeypatch.setenv(name, value)

    code, _text, doc = run_doctor()

    assert code == 1
    problems = {f["check"] for f in doc["findings"] if f["status"] == "problem"}
    assert problems == set(wrong)
    assert doc["problems"] == len(wrong)


def test_missing_secret_id_is_named_and_nothing_is_read(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLAID_SECRET_ID")

    code, _text, doc = run_doctor()

    assert code == 1
    assert finding(doc, "PLAID_SECRET_ID")["status"] == "problem"
    assert "readable" not in statuses(doc)


@pytest.mark.parametrize("created_empty", [False, True])
def test_missing_secret_is_named_with_how_to_fill_it(moto: str, created_empty: bool) -> None:
    if created_empty:  # the stack creates its secret without a value
        put_secret(None)

    code, _text, doc = run_doctor()

    assert code == 1
    readable = finding(doc, "readable")
    assert readable["status"] == "problem"
    assert "ResourceNotFoundException" in readable["detail"]
    assert f"put-plaid-secret.sh --secret-id {SECRET_ID}" in readable["fix"]


def test_empty_secret_fields_are_each_named(moto: str) -> None:
    put_secret(json.dumps({"client_id": " ", "secret": "", "user_id_hmac_key": "short"}))

    code, _text, doc = run_doctor()

    assert code == 1
    shape = [f for f in doc["findings"] if f["check"] == "shape"]
    assert [f["status"] for f in shape] == ["problem"] * 3
    details = " ".join(f["detail"] for f in shape)
    for field in ("'client_id' is missing or empty", "'secret' is missing or empty"):
        assert field in details
    assert "at least 16 characters" in details
    assert "put-plaid-secret.sh" in shape[0]["fix"]


@pytest.mark.parametrize(
    "secret_string",
    [
        SECRET,  # the bare secret, stored without its JSON
        json.dumps([SECRET]),
        json.dumps({"client_id": CLIENT_ID, "secret": SECRET, "user_id_hmac_key": 12345}),
        json.dumps({"client_id": CLIENT_ID, "secret": SECRET, "user_id_hmac_key": HMAC_KEY[:9]}),
    ],
)
def test_malformed_secret_is_named_and_its_values_never_printed(
    moto: str, secret_string: str
) -> None:
    put_secret(secret_string)

    code, text, doc = run_doctor()  # run_doctor scans both outputs for SECRET and HMAC_KEY

    assert code == 1
    assert finding(doc, "shape")["status"] == "problem"
    assert HMAC_KEY[:9] not in text


def test_a_secret_without_hmac_key_is_a_problem_with_its_fix(moto: str) -> None:
    """It works, but Plaid gets the raw JWT sub (often an email) as client_user_id."""
    put_secret(json.dumps({"client_id": CLIENT_ID, "secret": SECRET}))

    code, text, doc = run_doctor()

    assert code == 1
    assert doc["problems"] == 1
    missing = finding(doc, "user_id_hmac_key")
    assert missing["status"] == "problem"
    assert "raw JWT sub" in missing["detail"] and "client_user_id" in missing["detail"]
    assert f"put-plaid-secret.sh --secret-id {SECRET_ID}" in missing["fix"]
    assert f"fix      {missing['fix']}" in text
    # Update mode and the Items functions refuse to work without it, in their own words.
    assert NO_HMAC_KEY_CAUSE in missing["detail"]
    assert finding(doc, "shape")["status"] == "ok"  # the function can still use it


def test_a_secret_with_hmac_key_has_no_key_finding(moto: str) -> None:
    put_secret(good_secret())

    _code, _text, doc = run_doctor()

    assert "user_id_hmac_key" not in {f["check"] for f in doc["findings"]}


def test_a_key_without_utf8_bytes_is_named_not_a_crash(moto: str) -> None:
    # JSON can escape a lone surrogate, which has no UTF-8 bytes to key an HMAC with.
    put_secret(good_secret(user_id_hmac_key=HMAC_KEY + "\udc00"))  # json.dumps escapes it

    code, _text, doc = run_doctor()

    assert code == 1
    shape = finding(doc, "shape")
    assert shape["status"] == "problem"
    assert "'user_id_hmac_key' is not valid Unicode" in shape["detail"]
    assert "--hmac-key new" in shape["fix"]


def test_secret_named_for_the_other_environment_is_a_warning(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "plaid/production-keys"
    put_secret(good_secret(), name=name)
    monkeypatch.setenv("PLAID_SECRET_ID", name)

    code, _text, doc = run_doctor()

    assert code == 0  # a warning, not a problem: names can mislead
    warned = finding(doc, "secret ID vs PLAID_ENV")
    assert warned["status"] == "warn"
    assert "production" in warned["detail"] and "PLAID_ENV=sandbox" in warned["detail"]

    monkeypatch.setenv("PLAID_ENV", "production")
    _code, _text, doc = run_doctor()
    assert finding(doc, "secret ID vs PLAID_ENV")["status"] == "ok"


def test_secret_holding_keys_named_for_environments_is_a_warning(moto: str) -> None:
    put_secret(good_secret(production_secret=SECRET + "-prod", sandbox_secret=SECRET))

    code, _text, doc = run_doctor()

    assert code == 0
    warned = finding(doc, "field names")
    assert warned["status"] == "warn"
    assert "production_secret" in warned["detail"] and "sandbox_secret" in warned["detail"]


def test_the_items_table_and_key_are_shown(moto: str) -> None:
    put_secret(good_secret())

    _code, text, doc = run_doctor()

    assert finding(doc, "ITEMS_TABLE") == {
        "group": "configuration",
        "check": "ITEMS_TABLE",
        "status": "ok",
        "detail": ITEMS_TABLE,
    }
    assert finding(doc, "ITEMS_KEY_ID")["detail"] == ITEMS_KEY_ID
    assert f"ok       ITEMS_KEY_ID: {ITEMS_KEY_ID}" in text


@pytest.mark.parametrize(
    "unset", [("ITEMS_TABLE",), ("ITEMS_KEY_ID",), ("ITEMS_TABLE", "ITEMS_KEY_ID")]
)
def test_a_missing_items_setting_is_a_warning_saying_what_needs_both(
    moto: str, monkeypatch: pytest.MonkeyPatch, unset: tuple[str, ...]
) -> None:
    """The rules accept either unset: the link-token function still creates new-Item tokens.
    Which function the shell's variables are for is not known: the warning says what each
    function does without them (an Items function's own check is a problem: --function)."""
    put_secret(good_secret())
    for name in unset:
        monkeypatch.delenv(name)

    code, text, doc = run_doctor()

    assert code == 0, text
    for name in unset:
        found = finding(doc, name)
        assert found["status"] == "warn"
        assert found["detail"].startswith(f"{name} not set: update mode")
        assert "need both ITEMS_TABLE and ITEMS_KEY_ID" in found["detail"]
        assert "Items routes (POST /items, GET /items, DELETE /items/{item_id})" in found["detail"]
        assert "new-Item link tokens only" in found["detail"]
        # One source of truth: the setting's own fix.
        assert found["fix"] == next(s.fix for s in SETTINGS if s.variable == name)
        assert f"warn     {found['detail']}" in text
    for name in {"ITEMS_TABLE", "ITEMS_KEY_ID"} - set(unset):
        assert finding(doc, name)["status"] == "ok"


def test_every_variable_the_function_reads_has_a_fix() -> None:
    assert [s.variable for s in SETTINGS if len(s.fix.strip()) < 20] == []


def test_findings_are_grouped_one_line_per_check(moto: str) -> None:
    put_secret(good_secret())

    _code, text, doc = run_doctor()

    groups = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert groups[1:3] == ["configuration", "secret"]
    checks = [line for line in text.splitlines() if line.startswith("  ")]
    fixes = [line for line in checks if line.startswith("  fix ")]
    assert len(checks) - len(fixes) == len(doc["findings"])
    assert len(fixes) == 1  # all is well: only the skipped keys' environment says what to do


def test_make_doctor_runs_as_a_command_with_its_exit_code(moto: str) -> None:
    """What the Makefile's `doctor` target runs, as a separate process."""
    put_secret(good_secret())

    good = _doctor_process()
    bad = _doctor_process(PLAID_PRODUCTS="balance")

    assert (good.returncode, json.loads(good.stdout)["ok"]) == (0, True), good.stderr
    assert (bad.returncode, json.loads(bad.stdout)["problems"]) == (1, 1), bad.stderr
    for forbidden in (SECRET, HMAC_KEY):
        assert forbidden not in good.stdout + good.stderr + bad.stdout + bad.stderr


def _doctor_process(**env: str) -> subprocess.CompletedProcess[str]:
    """`python -m infra.doctor --json`, as the Makefile runs it."""
    return subprocess.run(
        [sys.executable, "-m", "infra.doctor", "--json"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_with_nothing_configured_the_local_setup_is_checked(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh machine: `make doctor` checks what `make serve` runs with, on its own stand-ins
    (Secrets Manager seeded with the stand-in's keys, Plaid the loopback stand-in)."""
    for name in (
        "PLAID_SECRET_ID",
        "PLAID_CLIENT_NAME",
        "ITEMS_TABLE",
        "ITEMS_KEY_ID",
        "PLAID_WEBHOOK_PATH",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)

    code, text, doc = run_doctor("--live")

    assert code == 0, text
    assert "as make serve runs it" in text
    assert finding(doc, "PLAID_SECRET_ID")["detail"].endswith(
        "plaid-link-token-dev/plaid-credentials"
    )
    assert finding(doc, "readable")["status"] == "ok"
    assert finding(doc, "link token (web/ios)")["status"] == "ok"
    assert "user_id_hmac_key" not in statuses(doc)  # development tokens' subs: no key needed
    assert dict(os.environ) == before  # the stand-ins' settings did not leak into the process
