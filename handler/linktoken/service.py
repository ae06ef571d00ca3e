"""Creating a link token for one user: credentials, request, Plaid call, error mapping.

Knows nothing about Lambda or HTTP: it takes an identity, the options and a clock of the
remaining time, and returns an `Outcome`: the token or the problem, and what getting it cost
(Plaid attempts and latency, secret reads), which is all the endpoint reports.
"""

from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

from linktoken.config import Config
from linktoken.identity import client_user_id, owner_key, user_ref
from linktoken.link_options import LinkOptions
from linktoken.plaid_client import LinkToken, PlaidCallError, PlaidClient
from linktoken.plaid_request import build_link_token_request, build_update_link_token_request
from linktoken.problems import Problem
from linktoken.secret_store import PlaidCredentials, SecretStore

DEFAULT_RETRY_AFTER_SECONDS = 2


NO_HMAC_KEY_CAUSE = (
    "the secret has no user_id_hmac_key: Items are stored under the user's keyed pseudonym "
    "(infra/scripts/put-plaid-secret.sh adds a key)"
)


# Update mode's access to a stored Item (`plaiditems.access`): (owner, item_id) -> its access token,
# and whether Link should offer account selection; raises `Problem` (ITEM_NOT_FOUND for an Item
# the owner does not have).
ItemOpener = Callable[[str, str], tuple[str, bool]]


# A NamedTuple, not a dataclass: a tenth of the import time (the cold start pays it).
class Outcome(NamedTuple):
    """One request's result: `token` or `problem`, never both, and what it cost.

    `attempts` and `plaid_latency_ms` are None when Plaid was not called; `bug` is the
    unexpected exception behind an INTERNAL_ERROR, kept for the log line's traceback.
    """

    token: LinkToken | None
    problem: Problem | None
    attempts: int | None
    plaid_latency_ms: float | None
    secret_reads: int
    user_ref: str | None
    bug: Exception | None = None


class _PlaidFailed(Exception):
    """A Plaid call failed for good: the problem for the app and what the calls cost."""

    def __init__(self, problem: Problem, attempts: int, latency_ms: float) -> None:
        super().__init__(problem.code)
        self.problem = problem
        self.attempts = attempts
        self.latency_ms = latency_ms


class LinkTokenService:
    """Ties the secret store, the request builder and the Plaid client together."""

    def __init__(
        self,
        config: Config,
        secrets: SecretStore,
        plaid: PlaidClient,
        open_item: ItemOpener | None = None,
    ) -> None:
        self.config = config
        self.secrets = secrets
        self.plaid = plaid
        self.open_item = open_item

    def create(
        self, sub: str, options: LinkOptions, remaining_seconds: Callable[[], float]
    ) -> Outcome:
        """Create a link token; never raises (an unexpected exception is INTERNAL_ERROR)."""
        reads = self.secrets.reads
        token: LinkToken | None = None
        problem: Problem | None = None
        bug: Exception | None = None
        attempts: int | None = None
        latency_ms: float | None = None
        try:
            token = self._create(sub, options, remaining_seconds)
            attempts, latency_ms = token.attempts, token.latency_ms
        except _PlaidFailed as failed:
            problem, attempts, latency_ms = failed.problem, failed.attempts, failed.latency_ms
        except Problem as raised:
            problem = raised
        except Exception as exc:  # a bug: the endpoint logs its traceback
            problem, bug = Problem("INTERNAL_ERROR"), exc
        return Outcome(
            token,
            problem,
            attempts,
            latency_ms,
            self.secrets.reads - reads,
            self.user_ref(sub),
            bug,
        )

    def user_ref(self, sub: str) -> str | None:
        """The user's pseudonym for the log, keyed when the secret has a key. Before the secret
        was ever read, whether it has one is unknown: then None rather than an unkeyed hash
        that a list of emails could reverse."""
        credentials = self.secrets.cached
        return user_ref(sub, credentials.user_id_hmac_key) if credentials else None

    def reset(self) -> None:
        """Forget credentials, connections and jitter state (SnapStart after-restore hook)."""
        self.secrets.forget()
        self.secrets.prepare()  # a fresh client, still before the first request
        self.plaid.reset()

    def _create(
        self, sub: str, options: LinkOptions, remaining_seconds: Callable[[], float]
    ) -> LinkToken:
        """The token; on INVALID_API_KEYS re-read the secret once (rotation). Raises `Problem`
        (the secret) or `_PlaidFailed` (Plaid)."""
        credentials = self.secrets.get()
        try:
            token = self._call(credentials, sub, options, remaining_seconds)
        except PlaidCallError as first:
            if not first.error.rule.refresh_secret:
                raise _failed(first) from None
            fresh = self.secrets.get(refresh=True)
            if fresh == credentials:
                raise _failed(first, note="a fresh read returned the same keys") from None
            try:
                token = self._call(fresh, sub, options, remaining_seconds)
            except PlaidCallError as second:
                raise _failed(
                    second, earlier=first, note="rejected again after a fresh secret read"
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
        if options.item_id is None:
            body = build_link_token_request(self.config, options, user_id)
        else:
            access_token, account_selection = self._open(sub, options.item_id, credentials)
            body = build_update_link_token_request(
                self.config, options, user_id, access_token, account_selection
            )
        return self.plaid.create_link_token(body, credentials, remaining_seconds)

    def _open(self, sub: str, item_id: str, credentials: PlaidCredentials) -> tuple[str, bool]:
        if self.open_item is None:
            raise Problem(
                "MISCONFIGURED",
                cause="update mode needs ITEMS_TABLE and ITEMS_KEY_ID (the stack sets both)",
            )
        if credentials.user_id_hmac_key is None:
            raise Problem("MISCONFIGURED", cause=NO_HMAC_KEY_CAUSE)
        return self.open_item(owner_key(sub, credentials.user_id_hmac_key), item_id)


def _failed(
    exc: PlaidCallError, earlier: PlaidCallError | None = None, note: str | None = None
) -> _PlaidFailed:
    attempts = exc.attempts + (earlier.attempts if earlier else 0)
    latency_ms = round(exc.latency_ms + (earlier.latency_ms if earlier else 0.0), 1)
    return _PlaidFailed(to_problem(exc, note), attempts, latency_ms)


def to_problem(exc: PlaidCallError, note: str | None = None) -> Problem:
    """Our problem for a failed Plaid call, with Plaid's fields kept for the log line; the
    app's detail is the rule's own, else its problem code's."""
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
    }
    return Problem(
        code,
        error.rule.detail or "",
        cause=exc.cause + (f" ({note})" if note else ""),
        retry_after=retry_after,
        plaid_request_id=error.request_id,
        plaid_error_code=error.error_code,
        log=log,
    )
