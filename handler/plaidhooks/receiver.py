"""`POST /webhooks/plaid`, apart from Lambda: verify the webhook, enqueue it, say what happened.

Verification comes before anything is parsed; a webhook that fails it is refused (401) and
never reaches the queue. One that passes is answered 200 only once SQS has it: a failure to
look the key up or to enqueue is a 5xx, so that Plaid delivers it again.
"""

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from linktoken.plaid_client import PlaidCallError, PlaidClient
from linktoken.problems import Problem
from linktoken.secret_store import SecretStore
from linktoken.service import to_problem
from plaidhooks.health_rules import item_id_of, short_text
from plaidhooks.queue import NO_ITEM_GROUP, QueuedWebhook, WebhookQueue
from plaidhooks.signature import Rejected, verify
from plaidhooks.verification_keys import KeyCache, KeyUnavailable

KEY_PATH: Final = "/webhook_verification_key/get"
# Plaid's answers that mean "no such key" rather than "you may not ask".
_NOT_KEYS: Final = frozenset(
    {"INVALID_API_KEYS", "UNAUTHORIZED_ENVIRONMENT", "INVALID_ENVIRONMENT"}
)


@dataclass(slots=True)
class ReceiverOutcome:
    status: int
    problem: Problem | None = None
    log: dict[str, Any] = field(default_factory=dict)
    secret_reads: int = 0
    rejected: str | None = None  # the verification step that failed
    bug: Exception | None = None


def _is_key(doc: Mapping[str, Any]) -> bool:
    key = doc.get("key")
    return isinstance(key, dict) and isinstance(key.get("kid"), str)


class WebhookReceiver:
    def __init__(
        self,
        secrets: SecretStore,
        plaid: PlaidClient,
        queue: WebhookQueue,
        keys: KeyCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secrets = secrets
        self.plaid = plaid
        self.queue = queue
        self.keys = keys or KeyCache()
        self._clock = clock

    def receive(
        self, body: bytes, token: str | None, remaining: Callable[[], float]
    ) -> ReceiverOutcome:
        reads = self.secrets.reads
        log: dict[str, Any] = {}
        try:
            outcome = self._receive(body, token, remaining, log)
        except Problem as problem:
            outcome = ReceiverOutcome(problem.status, problem, log)
        except Exception as exc:  # a bug: the endpoint logs its traceback
            outcome = ReceiverOutcome(500, Problem("INTERNAL_ERROR"), log, bug=exc)
        outcome.secret_reads = self.secrets.reads - reads
        return outcome

    def reset(self) -> None:
        """Forget credentials and connections (SnapStart after-restore hook)."""
        self.secrets.forget()
        self.secrets.prepare()
        self.plaid.reset()
        self.queue.close()

    def _receive(
        self, body: bytes, token: str | None, remaining: Callable[[], float], log: dict[str, Any]
    ) -> ReceiverOutcome:
        try:
            verified = verify(
                token, body, lambda kid: self._key(kid, remaining, log), self._clock()
            )
        except Rejected as rejected:
            log.update(reason=rejected.reason, kid=rejected.kid)
            problem = Problem("WEBHOOK_UNVERIFIED", cause=f"verification: {rejected.reason}")
            return ReceiverOutcome(401, problem, log, rejected=rejected.reason)
        log.update(kid=verified.kid, signed_at=verified.signed_at)
        webhook = _webhook_object(body)
        item_id = item_id_of(webhook)
        log.update(
            webhook_type=short_text(webhook.get("webhook_type")),
            webhook_code=short_text(webhook.get("webhook_code")),
            item_id=item_id,
        )
        message = QueuedWebhook(body.decode("utf-8"), item_id or NO_ITEM_GROUP, verified.signed_at)
        log["message_id"] = self.queue.send(message)
        return ReceiverOutcome(200, None, log)

    def _key(
        self, kid: str, remaining: Callable[[], float], log: dict[str, Any]
    ) -> Mapping[str, Any] | None:
        def fetch(key_id: str) -> Mapping[str, Any] | None:
            log["key_lookup"] = True
            credentials = self.secrets.get()
            try:
                answer = self.plaid.call(
                    KEY_PATH, {"key_id": key_id}, credentials, remaining, accept=_is_key
                )
            except PlaidCallError as exc:
                error = exc.error
                log["plaid_request_id"] = error.request_id
                if (
                    400 <= error.http_status < 500
                    and error.http_status != 429
                    and error.error_type in {"INVALID_INPUT", "INVALID_REQUEST"}
                    and error.error_code not in _NOT_KEYS
                ):
                    return None  # Plaid gives no key of that id
                raise to_problem(exc) from None
            log["plaid_request_id"] = answer.request_id
            key: dict[str, Any] = answer.doc["key"]
            return key if key.get("kid") == key_id else None

        try:
            return self.keys.key_for(kid, fetch)
        except KeyUnavailable as exc:
            raise Problem("UPSTREAM_UNAVAILABLE", cause=f"webhook key lookup: {exc}") from None


def _webhook_object(body: bytes) -> dict[str, Any]:
    """The verified body as a JSON object (Plaid sends nothing else)."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Problem("INVALID_REQUEST", "The webhook body is not JSON.") from None
    if not isinstance(doc, dict):
        raise Problem("INVALID_REQUEST", "The webhook body must be a JSON object.")
    return doc
