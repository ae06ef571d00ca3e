"""Offline: the variables the function reads, judged by the function's own rules.

`linktoken.config.check_environment` runs every rule `load_config` runs, so each wrong variable
is named (not just the first) in the words the function's log line would use, with the fix each
setting carries. What only doctor adds: a secret ID whose name says another Plaid environment,
and what a missing ITEMS_TABLE / ITEMS_KEY_ID means for the function at hand (the rules accept
either unset; update mode and the Items functions need both).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from infra.doctor.findings import Finding, Status
from infra.doctor.roles import Role
from linktoken.config import SETTINGS, Config, Setting, check_environment, load_config, raw_value

GROUP = "configuration"
# The Items table and key: both or neither, as far as the rules go.
ITEMS_SETTINGS: tuple[Setting, ...] = tuple(
    s for s in SETTINGS if s.field in ("items_table", "items_key_id")
)

# Words in a secret's name that say which Plaid environment its keys are for.
_ENVIRONMENT_WORDS: dict[str, str] = {
    "prod": "production",
    "production": "production",
    "prd": "production",
    "sandbox": "sandbox",
    "sbx": "sandbox",
}


def check_configuration(
    environ: Mapping[str, str], role: Role | None = None
) -> tuple[Config | None, list[Finding]]:
    """One finding per variable; the `Config` when every rule passed. `role`: the function
    the variables are for (None: not known, as for the shell's variables)."""
    values, errors = check_environment(environ)
    wrong = {setting.variable: error for setting, error in errors}
    items_unset = [s for s in ITEMS_SETTINGS if raw_value(environ, s.variable) is None]
    findings: list[Finding] = []
    for setting in SETTINGS:
        variable = setting.variable
        if variable in wrong:
            findings.append(Finding(GROUP, variable, "problem", str(wrong[variable]), setting.fix))
        elif setting in items_unset:
            findings.append(_items_unset(setting, role, environ, not errors))
        else:
            shown = _shown(raw_value(environ, variable), values.get(setting.field))
            findings.append(Finding(GROUP, variable, "ok", shown))
    secret_id = raw_value(environ, "PLAID_SECRET_ID")
    plaid_env = values.get("plaid_env")
    if secret_id and isinstance(plaid_env, str):
        findings.append(secret_id_environment(secret_id, plaid_env))
    return (None if errors else load_config(environ)), findings


def _items_unset(
    setting: Setting, role: Role | None, environ: Mapping[str, str], valid: bool
) -> Finding:
    """A problem for a function that needs the Items table and key, a warning for one that
    needs them for update mode only (or an unknown one: the shell's variables)."""
    pair = " and ".join(s.variable for s in ITEMS_SETTINGS)
    detail = (
        f"{setting.variable} not set: update mode (POST /link-token with an item_id) and the "
        f"Items routes (POST /items, GET /items, DELETE /items/{{item_id}}) need both {pair}"
    )
    status: Status = "warn"
    if role is None:
        detail += (
            "; without them the link-token function creates new-Item link tokens only and the "
            "Items functions answer every request 500 MISCONFIGURED"
        )
    elif not role.needs_items:
        detail += (
            f"; without them {role.title} creates new-Item link tokens only: update mode "
            "answers 500 MISCONFIGURED"
        )
    else:
        status = "problem"
        detail += f"; without them {role.title} answers every request 500 MISCONFIGURED"
        said = _items_function_error(environ) if valid else None
        if said:
            detail += f" (its configuration_invalid line: {said})"
    return Finding(GROUP, setting.variable, status, detail, setting.fix)


def _items_function_error(environ: Mapping[str, str]) -> str | None:
    """What an Items function's init says of this environment, in its own words. Called only
    when every rule passed and a setting of the pair is unset: the container refuses the
    environment before it builds any client."""
    from plaiditems.container import build_items_container

    return build_items_container(environ).config_error


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
