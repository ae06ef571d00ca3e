"""Offline: the variables the function reads, judged by the function's own rules.

`linktoken.config.check_environment` runs every rule `load_config` runs, so each wrong variable
is named (not just the first) in the words the function's log line would use, with the fix each
setting carries. What only doctor adds: a secret ID whose name says another Plaid environment,
what a missing ITEMS_TABLE / ITEMS_KEY_ID / WEBHOOK_QUEUE_URL means for the function at hand
(the rules accept each unset; update mode and the Items functions need the pair, the webhook
processor the table, the receiver the queue), and link tokens that would carry no webhook.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from infra.doctor.findings import Finding
from infra.doctor.roles import ITEMS_PAIR, Role
from linktoken.config import SETTINGS, Config, Setting, check_environment, load_config, raw_value

GROUP = "configuration"
# The Items table and key: both or neither, as far as the rules go.
ITEMS_SETTINGS: tuple[Setting, ...] = tuple(s for s in SETTINGS if s.variable in ITEMS_PAIR)
# Accepted unset by the rules; needed by one function (the receiver).
QUEUE_SETTING: Setting = next(s for s in SETTINGS if s.variable == "WEBHOOK_QUEUE_URL")

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
    findings: list[Finding] = []
    for setting in SETTINGS:
        variable = setting.variable
        unset = raw_value(environ, variable) is None
        if variable in wrong:
            findings.append(Finding(GROUP, variable, "problem", str(wrong[variable]), setting.fix))
        elif unset and setting in (*ITEMS_SETTINGS, QUEUE_SETTING):
            findings.append(_unset(setting, role, environ, not errors))
        else:
            shown = _shown(raw_value(environ, variable), values.get(setting.field))
            findings.append(Finding(GROUP, variable, "ok", shown))
    secret_id = raw_value(environ, "PLAID_SECRET_ID")
    plaid_env = values.get("plaid_env")
    if secret_id and isinstance(plaid_env, str):
        findings.append(secret_id_environment(secret_id, plaid_env))
    if role is None or role.items_for_update_mode:
        findings.extend(_no_webhook(environ))
    return (None if errors else load_config(environ)), findings


def _unset(setting: Setting, role: Role | None, environ: Mapping[str, str], valid: bool) -> Finding:
    """A setting the rules accept unset: a problem for a function that requires it, else what
    not having it means for this function."""
    if role is not None and setting.variable in role.requires:
        return _required(setting, role, environ, valid)
    if setting in ITEMS_SETTINGS and (role is None or role.items_for_update_mode):
        return _items_unset(setting, role)
    user = "the webhook receiver" if setting is QUEUE_SETTING else "the Items functions"
    used = f"{role.title} does not use it" if role else f"only {user} needs it"
    return Finding(GROUP, setting.variable, "ok", f"(not set: {used})")


def _required(setting: Setting, role: Role, environ: Mapping[str, str], valid: bool) -> Finding:
    needed = " and ".join(sorted(role.requires))
    detail = (
        f"{setting.variable} not set: {role.title} needs {needed}; without "
        f"{'them' if len(role.requires) > 1 else 'it'} it {role.misconfigured}"
    )
    if setting in ITEMS_SETTINGS and role.requires == ITEMS_PAIR:
        detail = f"{_items_need(setting)}; without them {role.title} {role.misconfigured}"
    said = role.init_error(environ) if valid and role.init_error else None
    if said:
        detail += f" (its configuration_invalid line: {said})"
    return Finding(GROUP, setting.variable, "problem", detail, setting.fix)


def _no_webhook(environ: Mapping[str, str]) -> list[Finding]:
    """Link tokens carry the stack's receiver (PLAID_WEBHOOK_PATH) or PLAID_WEBHOOK_URL; with
    neither, Plaid sends new Items no webhook and their health never changes."""
    if raw_value(environ, "PLAID_WEBHOOK_URL") or raw_value(environ, "PLAID_WEBHOOK_PATH"):
        return []
    return [
        Finding(
            GROUP,
            "webhook",
            "warn",
            "neither PLAID_WEBHOOK_PATH nor PLAID_WEBHOOK_URL is set: link tokens carry no "
            "webhook, so Plaid sends the Items they make no webhooks and their health never "
            "changes (a login that expires is not seen until the user's next request fails)",
            next(s.fix for s in SETTINGS if s.variable == "PLAID_WEBHOOK_PATH"),
        )
    ]


def _items_unset(setting: Setting, role: Role | None) -> Finding:
    """A warning for the link-token function, which needs the table and key for update mode
    only (or an unknown one: the shell's variables)."""
    detail = _items_need(setting)
    if role is None:
        detail += (
            "; without them the link-token function creates new-Item link tokens only and the "
            "Items functions answer every request 500 MISCONFIGURED"
        )
    else:
        detail += (
            f"; without them {role.title} creates new-Item link tokens only: update mode "
            "answers 500 MISCONFIGURED"
        )
    return Finding(GROUP, setting.variable, "warn", detail, setting.fix)


def _items_need(setting: Setting) -> str:
    pair = " and ".join(s.variable for s in ITEMS_SETTINGS)
    return (
        f"{setting.variable} not set: update mode (POST /link-token with an item_id) and the "
        f"Items routes (POST /items, GET /items, DELETE /items/{{item_id}}) need both {pair}"
    )


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
