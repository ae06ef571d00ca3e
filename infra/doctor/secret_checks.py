"""Offline: the Plaid secret the configuration points to, read with the caller's AWS setup.

Reading goes through the service's own `SecretStore` (same client, same error causes) and its
JSON is judged by `secret_problems`, the rules `parse_secret` applies. Every value found in the
secret except the client id is registered with the report as never-to-be-printed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from infra.doctor.findings import Finding, Report
from linktoken.problems import Problem
from linktoken.secret_store import (
    PlaidCredentials,
    SecretStore,
    make_secrets_client,
    parse_secret,
    secret_problems,
)
from linktoken.service import NO_HMAC_KEY_CAUSE

GROUP = "secret"
_FIELDS = {"client_id", "secret", "user_id_hmac_key"}
_ENVIRONMENT_NAMED = re.compile(r"sandbox|prod|development|\bdev\b", re.IGNORECASE)


def check_secret(
    secret_id: str,
    report: Report,
    client_factory: Callable[[], Any] = make_secrets_client,
    require_hmac_key: bool = True,
) -> PlaidCredentials | None:
    """Read and judge the secret; the credentials when they are usable.

    A secret without `user_id_hmac_key` works, but is a problem unless `require_hmac_key` is
    off (the local setup's secret, whose users are development tokens)."""
    fill = f"store the keys with infra/scripts/put-plaid-secret.sh --secret-id {secret_id}"
    try:
        text = SecretStore(secret_id, 0, client_factory).read_secret_string()
    except Problem as exc:
        report.add(
            Finding(
                GROUP,
                "readable",
                "problem",
                f"{exc.cause} (read with your AWS profile and region, not the function's role)",
                f"check PLAID_SECRET_ID and the region; if the secret exists but is empty, {fill}",
            )
        )
        return None
    doc = _hide_values(text, report)
    report.add(
        Finding(GROUP, "readable", "ok", f"{secret_id} read with your AWS profile and region")
    )
    problems = secret_problems(text)
    for problem in problems:
        # A key the script cannot keep is replaced; every other problem is fixed by storing anew.
        hmac_fix = "--hmac-key new (every user's client_user_id at Plaid changes)"
        fix = f"{fill} {hmac_fix}" if "'user_id_hmac_key'" in problem else fill
        report.add(
            Finding(
                GROUP,
                "shape",
                "problem",
                f"secret {secret_id!r} {problem}",
                f'{fix} (JSON {{"client_id": "...", "secret": "..."}})',
            )
        )
    if isinstance(doc, dict):
        report.add(*_environment_named_fields(doc))
    if problems:
        return None
    credentials = parse_secret(text, secret_id)
    hmac = "set" if credentials.user_id_hmac_key else "not set (client_user_id is the JWT sub)"
    report.add(
        Finding(
            GROUP,
            "shape",
            "ok",
            f"client_id {mask_client_id(credentials.client_id)}, secret set, "
            f"user_id_hmac_key {hmac}",
        )
    )
    if credentials.user_id_hmac_key is None and require_hmac_key:
        report.add(_no_hmac_key(secret_id))
    return credentials


def _no_hmac_key(secret_id: str) -> Finding:
    # The function keeps working without a key (existing secrets are not broken), but the JWT
    # sub goes to Plaid as is, and identity providers often put an email address there.
    return Finding(
        GROUP,
        "user_id_hmac_key",
        "problem",
        "not set: Plaid receives the raw JWT sub as client_user_id (often an email address; "
        "Plaid asks for no personal data there), and user_ref in the logs is an unkeyed "
        "SHA-256 of it that a list of candidate emails reverses; update mode and the Items "
        f"functions refuse every request without it (500 MISCONFIGURED: {NO_HMAC_KEY_CAUSE})",
        f"infra/scripts/put-plaid-secret.sh --secret-id {secret_id} generates one when it "
        "stores the keys (every user's client_user_id at Plaid then changes, once)",
    )


def keys_environment_unknown() -> Finding:
    """What can honestly be said offline about which environment the keys are for."""
    return Finding(
        GROUP,
        "keys' environment",
        "skip",
        "not told by the keys themselves: Plaid's client_id is the same in every environment "
        "and its sandbox and production secrets are different values with no documented "
        "marker",
        "add --live: one call to Plaid says whether they match PLAID_ENV",
    )


def mask_client_id(client_id: str) -> str:
    """Enough to recognise it, not to use it: `****5e1f`."""
    return "****" + (client_id[-4:] if len(client_id) >= 12 else "")


def _hide_values(text: str | None, report: Report) -> Any:
    """Register every value of the secret (the whole text when it is not JSON) as sensitive."""
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        report.hide(text)  # perhaps a bare secret stored without its JSON
        return None
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key != "client_id" and isinstance(value, str):
                report.hide(value, value.strip())
    else:
        report.hide(text)
    return doc


def _environment_named_fields(doc: dict[str, Any]) -> list[Finding]:
    """Extra fields named for an environment (`sandbox_secret`, `production`...): the service
    reads only `secret`, so the wrong one may be in it."""
    named = sorted(k for k in doc if k not in _FIELDS and _ENVIRONMENT_NAMED.search(k))
    if not named:
        return []
    return [
        Finding(
            GROUP,
            "field names",
            "warn",
            f"the secret also holds {named}; the service reads only 'client_id' and 'secret'",
            "make sure 'secret' holds the PLAID_ENV environment's secret",
        )
    ]
