"""`--live`: one real `/link/token/create` per configured platform, with the service's own
request builder, client and classification: each failure is named by the cause the function's
log line would give, with that rule's fix.

Web and iOS send the same body (the redirect URI), Android sends the package name instead, so
there is one call for web/iOS and one more when an Android package is configured. One attempt
each: doctor diagnoses, it does not retry. The link token obtained is shown masked.
"""

from __future__ import annotations

from collections.abc import Callable

from infra.doctor.findings import Finding, Status
from linktoken.config import Config
from linktoken.link_options import LinkOptions
from linktoken.observability import mask_token
from linktoken.plaid_client import PlaidCallError, PlaidClient, RetryPolicy
from linktoken.plaid_errors import PlaidError
from linktoken.plaid_request import build_link_token_request
from linktoken.secret_store import PlaidCredentials

GROUP = "plaid"
CLIENT_USER_ID = "make-doctor"  # a fixed, obviously synthetic user: no real person's id
_BUDGET_SECONDS = 10.0


def check_link_tokens(
    config: Config,
    credentials: PlaidCredentials,
    client_factory: Callable[[str], PlaidClient] | None = None,
) -> list[Finding]:
    """One call per platform the configuration serves."""
    client = (client_factory or _one_attempt_client)(config.base_url)
    platforms = [("web/ios", "web")]
    if config.android_package_name:
        platforms.append(("android", "android"))
    findings = []
    for label, platform in platforms:
        options = LinkOptions(platform, config.products, config.language)
        body = build_link_token_request(config, options, CLIENT_USER_ID)
        sent = _sent(body)
        try:
            token = client.create_link_token(body, credentials, lambda: _BUDGET_SECONDS)
        except PlaidCallError as exc:
            findings.append(_translated(label, exc.error, exc.cause, sent, config))
            continue
        findings.append(
            Finding(
                GROUP,
                f"link token ({label})",
                "ok",
                f"{mask_token(token.link_token)} from {config.base_url} in "
                f"{token.latency_ms:.0f} ms (plaid request_id {token.request_id}); the keys "
                f"belong to PLAID_ENV={config.plaid_env}{sent}",
            )
        )
    return findings


def _translated(label: str, error: PlaidError, cause: str, sent: str, config: Config) -> Finding:
    check = f"link token ({label})"
    rule = error.rule
    if error.http_status == 0:  # no answer at all: DNS, TCP, TLS or a timeout
        return Finding(
            GROUP,
            check,
            "problem",
            f"Plaid unreachable at {config.base_url}: {cause}",
            f"{rule.fix} (the network checks above say which step failed)",
        )
    message = error.error_message or ""
    answer = " ".join(
        part
        for part in (
            f"Plaid answered {error.http_status}",
            error.error_code,
            f"({message})" if message else None,
            f"request_id {error.request_id}" if error.request_id else None,
        )
        if part
    )
    # Outages and rate limits are transient: worth knowing, not a configuration problem.
    status: Status = "warn" if rule.retry else "problem"
    return Finding(GROUP, check, status, f"{answer}: {cause}{sent}", rule.fix)


def _sent(body: dict[str, object]) -> str:
    """The fields Plaid checks against the Dashboard, as they were sent."""
    shown = [
        f"{key}={body[key]}"
        for key in ("redirect_uri", "android_package_name", "products")
        if key in body
    ]
    return f" [sent {', '.join(shown)}]"


def _one_attempt_client(base_url: str) -> PlaidClient:
    return PlaidClient(base_url, policy=RetryPolicy(max_attempts=1))
