"""Offline: the variables the function reads, judged by the function's own rules.

`linktoken.config.check_environment` runs every rule `load_config` runs, so each wrong variable
is named (not just the first) in the words the function's log line would use. What only doctor
adds: where to fix each variable, and a secret ID whose name says another Plaid environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from infra.doctor.findings import Finding
from linktoken.config import SETTINGS, Config, check_environment, load_config, raw_value

GROUP = "configuration"

# Where each value is set when deployed: the SAM template's parameter of the same meaning.
_FIXES: dict[str, str] = {
    "PLAID_SECRET_ID": "set PLAID_SECRET_ID to the Plaid secret's name or ARN (PlaidSecretId)",
    "PLAID_CLIENT_NAME": "set PLAID_CLIENT_NAME to the app's name, 1-30 characters "
    "(PlaidClientName)",
    "PLAID_ENV": "set PLAID_ENV to sandbox or production (PlaidEnv)",
    "PLAID_PRODUCTS": "list Link products only in PLAID_PRODUCTS, comma-separated; leave out "
    "balance, it comes with any product (PlaidProducts)",
    "PLAID_COUNTRY_CODES": "list ISO country codes Plaid serves in PLAID_COUNTRY_CODES "
    "(PlaidCountryCodes)",
    "PLAID_LANGUAGE": "set PLAID_LANGUAGE to one of Link's languages (PlaidLanguage)",
    "PLAID_REDIRECT_URI": "use an https URL without query string or fragment (http://localhost "
    "in sandbox only), registered in the Dashboard's Allowed redirect URIs (PlaidRedirectUri)",
    "PLAID_ANDROID_PACKAGE_NAME": "set the Android app's package name, like com.example.app "
    "(PlaidAndroidPackageName)",
    "PLAID_WEBHOOK_URL": "set an absolute https URL, or nothing (PlaidWebhookUrl)",
    "PLAID_BASE_URL": "unset PLAID_BASE_URL: it is for tests and local runs against a loopback "
    "stand-in",
    "PLAID_SECRET_TTL_SECONDS": "set a whole number of seconds, 0-86400 (PlaidSecretTtlSeconds)",
}

# Words in a secret's name that say which Plaid environment its keys are for.
_ENVIRONMENT_WORDS: dict[str, str] = {
    "prod": "production",
    "production": "production",
    "prd": "production",
    "sandbox": "sandbox",
    "sbx": "sandbox",
}


def check_configuration(environ: Mapping[str, str]) -> tuple[Config | None, list[Finding]]:
    """One finding per variable; the `Config` when every rule passed."""
    values, errors = check_environment(environ)
    wrong = {setting.variable: error for setting, error in errors}
    findings: list[Finding] = []
    for setting in SETTINGS:
        variable = setting.variable
        if variable in wrong:
            fix = _FIXES[variable]
            findings.append(Finding(GROUP, variable, "problem", str(wrong[variable]), fix))
        else:
            shown = _shown(raw_value(environ, variable), values.get(setting.field))
            findings.append(Finding(GROUP, variable, "ok", shown))
    secret_id = raw_value(environ, "PLAID_SECRET_ID")
    plaid_env = values.get("plaid_env")
    if secret_id and isinstance(plaid_env, str):
        findings.append(secret_id_environment(secret_id, plaid_env))
    return (None if errors else load_config(environ)), findings


def secret_id_environment(secret_id: str, plaid_env: str) -> Finding:
    """A secret named for one environment while PLAID_ENV says the other is a likely cause of
    INVALID_API_KEYS (Plaid's sandbox and production secrets are different values)."""
    words = {_ENVIRONMENT_WORDS.get(word) for word in re.split(r"[^a-z0-9]+", secret_id.lower())}
    named = words - {None}
    check = "secret ID vs PLAID_ENV"
    if len(named) != 1:
        return Finding(
            GROUP, check, "ok", f"the secret's name does not say an environment ({secret_id})"
        )
    said = named.pop()
    if said == plaid_env:
        return Finding(GROUP, check, "ok", f"{secret_id} and PLAID_ENV={plaid_env} agree")
    return Finding(
        GROUP,
        check,
        "warn",
        f"the secret {secret_id!r} is named for {said} but PLAID_ENV={plaid_env}",
        f"point PLAID_SECRET_ID at the {plaid_env} keys' secret, or set PLAID_ENV={said}",
    )


def _shown(raw: str | None, value: object) -> str:
    """The value as set, or what not setting it means."""
    if raw is not None:
        return raw
    if isinstance(value, tuple):
        value = ",".join(value)
    return f"(not set: {value})" if value is not None else "(not set)"
