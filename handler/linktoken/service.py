"""Creating a link token for one user: credentials, request, Plaid call, error mapping.

Knows nothing about Lambda or HTTP: it takes an identity, the options and a clock of the
remaining time, and returns a `LinkToken` or raises a `Problem`.
"""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from linktoken.config import Config
from linktoken.identity import client_user_id
from linktoken.link_options import LinkOptions
from linktoken.plaid_client import LinkToken, PlaidCallError, PlaidClient
from linktoken.plaid_request import build_link_token_request
from linktoken.problems import Problem
from linktoken.secret_store import PlaidCredentials, SecretStore

DEFAULT_RETRY_AFTER_SECONDS = 2

# What the app is told, per outcome; Plaid's own message stays in the log.
_APP_DETAIL = {
    "UPSTREAM_REJECTED": (
        "Plaid rejected the link token request because of this service's configuration; "
        "the app cannot fix this. Report the request_id to the service's operators."
    ),
    "RATE_LIMITED": "Plaid is rate limiting this service; retry after the Retry-After delay.",
    "UPSTREAM_UNAVAILABLE": "Plaid is unavailable right now; retry shortly.",
    "UPSTREAM_TIMEOUT": "Plaid did not answer in time; retry shortly.",
    "MISCONFIGURED": (
        "The service cannot reach Plaid securely; its operators have the details. "
        "Report the request_id."
    ),
}


class LinkTokenService:
    """Ties the secret store, the request builder and the Plaid client together."""

    def __init__(self, config: Config, secrets: SecretStore, plaid: PlaidClient) -> None:
        self.config = config
        self.secrets = secrets
        self.plaid = plaid

    def create(
        self, sub: str, options: LinkOptions, remaining_seconds: Callable[[], float]
    ) -> LinkToken:
        """Create a link token; on INVALID_API_KEYS re-read the secret once (rotation)."""
        credentials = self.secrets.get()
        try:
            token = self._call(credentials, sub, options, remaining_seconds)
        except PlaidCallError as first:
            if not first.error.rule.refresh_secret:
                raise to_problem(first) from None
            fresh = self.secrets.get(refresh=True)
            if fresh == credentials:
                raise to_problem(first, note="a fresh read returned the same keys") from None
            try:
                token = self._call(fresh, sub, options, remaining_seconds)
            except PlaidCallError as second:
                raise to_problem(
                    second,
                    extra_attempts=first.attempts,
                    extra_ms=first.latency_ms,
                    note="rejected again after a fresh secret read",
                ) from None
            return replace(
                token,
                attempts=token.attempts + first.attempts,
                latency_ms=round(token.latency_ms + first.latency_ms, 1),
            )
        return token

    def _call(
        self,
        credentials: PlaidCredentials,
        sub: str,
        options: LinkOptions,
        remaining_seconds: Callable[[], float],
    ) -> LinkToken:
        user_id = client_user_id(sub, credentials.user_id_hmac_key)
        body = build_link_token_request(self.config, options, user_id)
        return self.plaid.create_link_token(body, credentials, remaining_seconds)


def to_problem(
    exc: PlaidCallError, extra_attempts: int = 0, extra_ms: float = 0.0, note: str | None = None
) -> Problem:
    """Our problem for a failed Plaid call, with Plaid's fields kept for the log line."""
    error = exc.error
    code = error.rule.problem_code
    retry_after = None
    if code == "RATE_LIMITED":
        retry_after = exc.retry_after or DEFAULT_RETRY_AFTER_SECONDS
    log: dict[str, Any] = {
        "plaid_status": error.http_status or None,
        "plaid_error_type": error.error_type,
        "plaid_error_code": error.error_code,
        "plaid_error_message": error.error_message,
        "plaid_request_id": error.request_id,
        "attempts": exc.attempts + extra_attempts,
        "plaid_latency_ms": round(exc.latency_ms + extra_ms, 1),
    }
    return Problem(
        code,
        _APP_DETAIL.get(code, "Plaid could not create a link token."),
        cause=exc.cause + (f" ({note})" if note else ""),
        retry_after=retry_after,
        plaid_request_id=error.request_id,
        plaid_error_code=error.error_code,
        log=log,
    )
