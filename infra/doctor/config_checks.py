"""Offline: the variables the function reads, judged by the function's own rules.

`linktoken.config.check_environment` runs every rule `load_config` runs, so each wrong variable
is named (not just the first) in the words the function's log line would use, with the fix each
setting carries. What only doctor adds: a secret ID whose name says another Plaid environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from infra.doctor.findings import Finding
from linktoken.config import SETTINGS, Config, check_environment, load_config, raw_value

GROUP = "configuration"

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
            findings.append(Finding(GROUP, variable, "problem", str(wrong[variable]), setting.fix))
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
