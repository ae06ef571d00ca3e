"""The Items flow for one user: exchange, list, refresh, remove. Knows nothing about Lambda or
HTTP.

Every method returns an `ItemsOutcome`: the status and body for the app, or the problem, and
what the endpoint logs (the Item, Plaid's request id and what the calls cost).

Nothing is lost in the exchange: once Plaid has exchanged a public token, its access token is
sealed and stored, or the Item is removed at Plaid (`orphan: removed`); only when that removal
fails too is an Item left that nothing records (`orphan: left`, which alarms). A retried
request with the same public token gets the same Item: the exchange is claimed per token in
the table before Plaid is called, and completed with the Item's id.
"""

import re
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import replace
from typing import Any, Final, NamedTuple

from linktoken.config import Config
from linktoken.identity import keyed_digest, owner_key, user_ref
from linktoken.plaid_client import PlaidAnswer, PlaidCallError, PlaidClient
from linktoken.plaid_errors import NO_TIME
from linktoken.problems import Problem
from linktoken.secret_store import PlaidCredentials, SecretStore
from linktoken.service import NO_HMAC_KEY_CAUSE, to_problem
from plaiditems.item_status import health_from_item, is_item_answer
from plaiditems.link_metadata import ExchangeRequest
from plaiditems.records import ItemRecord, utc_text
from plaiditems.store import UNKNOWN, Claim, ItemStore
from plaiditems.vault import TokenVault

EXCHANGE_PATH: Final = "/item/public_token/exchange"
ITEM_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,100}$")  # Plaid's item_id: letters and digits
REMOVE_PATH: Final = "/item/remove"
ITEM_GET_PATH: Final = "/item/get"
# Longer than any function's timeout: a claim outlives the request that made it only when that
# request died, and then a retry may take it over.
EXCHANGE_LOCK_SECONDS: Final = 60
# Kept back from the exchange's Plaid call for what must follow it once Plaid has made the Item:
# seal and store it (KMS, DynamoDB: two attempts of 1 s + 2 s each, and a retry delay of up to
# 1 s, per call) or remove it at Plaid (one full attempt, 8 s), and answer (0.5 s).
CLEANUP_RESERVE_S: Final = 2 * (2 * 3.0 + 1.0) + 8.0 + 0.5
_ANSWER_LOST_CAUSE = (
    "an earlier exchange of this public_token reached Plaid but its answer never came back: "
    "Plaid made an Item this service has no access token for (item_id unknown; find it by "
    "link_session_id in the Plaid Dashboard)"
)
# Plaid's codes that mean "this Item is already gone at Plaid": removing it again is done.
ALREADY_REMOVED: Final = frozenset({"ITEM_NOT_FOUND"})


class ItemsOutcome(NamedTuple):
    """One request's result: `status` and `body` (None for 204), or `problem` (and `bug`, an
    unexpected exception behind INTERNAL_ERROR); `log` holds the summary line's fields."""

    status: int
    body: dict[str, Any] | None
    problem: Problem | None
    log: dict[str, Any]
    secret_reads: int
    headers: dict[str, str] | None = None
    bug: Exception | None = None


def _is_exchange(doc: Mapping[str, Any]) -> bool:
    return isinstance(doc.get("access_token"), str) and isinstance(doc.get("item_id"), str)


class ItemsService:
    def __init__(
        self,
        config: Config,
        secrets: SecretStore,
        plaid: PlaidClient,
        store: ItemStore,
        vault: TokenVault,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.secrets = secrets
        self.plaid = plaid
        self.store = store
        self.vault = vault
        self._clock = clock

    # ------------------------------------------------------------------ routes ---------------
    def exchange(
        self, sub: str, request: ExchangeRequest, remaining: Callable[[], float]
    ) -> ItemsOutcome:
        return self._run(sub, lambda log, key: self._exchange(sub, request, remaining, log, key))

    def list_items(self, sub: str) -> ItemsOutcome:
        def run(log: dict[str, Any], key: bytes) -> tuple[int, dict[str, Any] | None]:
            records = self.store.list_items(owner_key(sub, key))
            log["items"] = len(records)
            return 200, {"items": [record.view() for record in records]}

        return self._run(sub, run)

    def remove(self, sub: str, item_id: str, remaining: Callable[[], float]) -> ItemsOutcome:
        return self._run(sub, lambda log, key: self._remove(sub, item_id, remaining, log, key))

    def refresh(self, sub: str, item_id: str, remaining: Callable[[], float]) -> ItemsOutcome:
        """The Item's health as Plaid's `/item/get` has it now (after update mode), stored."""
        return self._run(sub, lambda log, key: self._refresh(sub, item_id, remaining, log, key))

    def reset(self) -> None:
        """Forget credentials and connections (SnapStart after-restore hook)."""
        self.secrets.forget()
        self.secrets.prepare()
        self.plaid.reset()
        self.store.close()
        self.vault.close()

    # ------------------------------------------------------------------ steps ----------------
    def _run(
        self,
        sub: str,
        step: Callable[[dict[str, Any], bytes], tuple[int, dict[str, Any] | None]],
    ) -> ItemsOutcome:
        """Credentials, then the step; every failure becomes the outcome's problem."""
        reads = self.secrets.reads
        log: dict[str, Any] = {}
        try:
            key = self._hmac_key()
            log["user_ref"] = user_ref(sub, key)
            status, body = step(log, key)
        except Problem as problem:
            return ItemsOutcome(problem.status, None, problem, log, self.secrets.reads - reads)
        except Exception as exc:  # a bug: the endpoint logs its traceback
            internal = Problem("INTERNAL_ERROR")
            return ItemsOutcome(500, None, internal, log, self.secrets.reads - reads, bug=exc)
        headers = {"Location": f"/items/{body['item_id']}"} if status == 201 and body else None
        return ItemsOutcome(status, body, None, log, self.secrets.reads - reads, headers)

    def _hmac_key(self) -> bytes:
        key = self.secrets.get().user_id_hmac_key
        if key is None:
            raise Problem("MISCONFIGURED", cause=NO_HMAC_KEY_CAUSE)
        return key

    def _exchange(
        self,
        sub: str,
        request: ExchangeRequest,
        remaining: Callable[[], float],
        log: dict[str, Any],
        key: bytes,
    ) -> tuple[int, dict[str, Any]]:
        owner = owner_key(sub, key)
        digest = keyed_digest("public_token", request.public_token, key)
        log["institution_id"] = request.institution.institution_id
        log["link_session_id"] = request.link_session_id  # finds a lost Item in the Dashboard
        claim = self.store.claim_exchange(digest, owner, int(self._clock()), EXCHANGE_LOCK_SECONDS)
        if not claim.mine:
            return 201, self._replayed(claim.owner == owner, claim, owner, log)
        try:
            self._refuse_duplicate(owner, request, log)
            answer = self._plaid(
                EXCHANGE_PATH,
                {"public_token": request.public_token},
                lambda: remaining() - CLEANUP_RESERVE_S,  # what storing or removing needs
                log,
                idempotent=False,
            )
        except Problem as problem:
            if problem.code == "INVALID_PUBLIC_TOKEN" and claim.status == UNKNOWN:
                # The earlier exchange of this token did reach Plaid: an Item exists there that
                # this service has no access token for.
                log["orphan"] = "left"
                problem.cause = _ANSWER_LOST_CAUSE
            elif problem.code == "INVALID_PUBLIC_TOKEN":
                problem.cause = _public_token_cause(request, self.config.plaid_env)
            if log.pop("outcome_unknown", False):
                log["orphan"] = "unknown"  # Plaid may have made an Item; a retry will tell
                with suppress(Problem):
                    self.store.exchange_unknown(digest)
            else:
                self._release(digest)
            raise
        access_token, item_id = answer.doc["access_token"], answer.doc["item_id"]
        log["item_id"] = item_id
        # From here on Plaid has an Item (and bills for it): store it, or remove it at Plaid.
        record = ItemRecord(
            item_id=item_id,
            institution=request.institution,
            accounts=request.accounts,
            created_at=utc_text(self._clock()),
            link_session_id=request.link_session_id,
        )
        try:
            sealed = self.vault.seal(access_token, item_id, owner)
            self.store.put_item(owner, replace(record, sealed_token=sealed))
        except Exception:  # a Problem or a bug: either way the Item must not stay at Plaid
            log["orphan"] = self._remove_orphan(access_token, remaining, log)
            self._release(digest)
            raise
        try:
            self.store.complete_exchange(digest, item_id)
        except Problem:
            log["exchange_record"] = (
                "not completed: a retry with this token gets 409 EXCHANGE_IN_PROGRESS for up to "
                f"{EXCHANGE_LOCK_SECONDS} s, then 409 DUPLICATE_ITEM naming this Item"
            )
        return 201, self._created(record, answer.request_id)

    def _remove(
        self,
        sub: str,
        item_id: str,
        remaining: Callable[[], float],
        log: dict[str, Any],
        key: bytes,
    ) -> tuple[int, dict[str, Any] | None]:
        owner, record = self._own_item(sub, item_id, key, log)
        if record.removed or not record.sealed_token:
            log["already_removed"] = True
            return 204, None
        access_token = self.vault.open(record.sealed_token, item_id, owner)
        try:
            self._plaid(REMOVE_PATH, {"access_token": access_token}, remaining, log)
        except Problem as problem:
            if problem.plaid_error_code not in ALREADY_REMOVED:
                raise
            log["plaid"] = "already removed at Plaid"
        now = self._clock()
        self.store.tombstone(owner, item_id, utc_text(now), int(now))
        return 204, None

    def _refresh(
        self,
        sub: str,
        item_id: str,
        remaining: Callable[[], float],
        log: dict[str, Any],
        key: bytes,
    ) -> tuple[int, dict[str, Any] | None]:
        owner, record = self._own_item(sub, item_id, key, log)
        if record.removed or not record.sealed_token:
            raise Problem("ITEM_NOT_FOUND", cause="no such Item for this user")
        return 200, {"item": self.recheck(owner, record, remaining, log).view()}

    def recheck(
        self,
        owner: str,
        record: ItemRecord,
        remaining: Callable[[], float],
        log: dict[str, Any],
    ) -> ItemRecord:
        """Plaid's `/item/get` health of the owner's live Item, stored as of the call: the Item
        as it is stored afterwards. Raises `Problem` when Plaid, the key or the table fails.

        The refresh after update mode uses it, and so does the webhook processor for the
        webhooks whose order matters (login required, login repaired)."""
        assert record.sealed_token  # for mypy: callers pass live Items  # nosec B101
        access_token = self.vault.open(record.sealed_token, record.item_id, owner)
        # Taken before the call: what Plaid answers is true at least from this moment on.
        observed = int(self._clock())
        answer = self._plaid(ITEM_GET_PATH, {"access_token": access_token}, remaining, log)
        if not is_item_answer(answer.doc):
            raise Problem("UPSTREAM_REJECTED", cause="/item/get answered without an item")
        health = health_from_item(answer.doc)
        log.update(previous_health=record.health, health=health)
        if health is not None and self.store.set_health(
            owner, record.item_id, health, observed, {}, utc_text(observed)
        ):
            record = replace(
                record,
                health=health,
                health_at=utc_text(observed),
                health_signed_at=observed,
                consent_expiration_time=None,
                disconnect_time=None,
            )
        else:
            record = self.store.get_item(owner, record.item_id) or record
        log["stored_health"] = record.health
        return record

    # ----------------------------------------------------------------- helpers ---------------
    def _own_item(
        self, sub: str, item_id: str, key: bytes, log: dict[str, Any]
    ) -> tuple[str, ItemRecord]:
        """The caller's owner key and their Item (a tombstone included); 404 for an id the
        caller has no Item of, or one that cannot be an item_id."""
        owner = owner_key(sub, key)
        record = self.store.get_item(owner, item_id) if ITEM_ID.fullmatch(item_id) else None
        if record is None:
            raise Problem("ITEM_NOT_FOUND", cause="no such Item for this user")
        log["item_id"] = item_id
        return owner, record

    def _plaid(
        self,
        path: str,
        body: dict[str, Any],
        remaining: Callable[[], float],
        log: dict[str, Any],
        idempotent: bool = True,
    ) -> PlaidAnswer:
        """One Plaid call; on INVALID_API_KEYS one more after a fresh secret read (rotation).
        Raises `Problem` with Plaid's fields for the log line."""
        credentials = self.secrets.get()
        try:
            return self._plaid_once(path, body, credentials, remaining, log, idempotent)
        except PlaidCallError as first:
            if not first.error.rule.refresh_secret:
                raise to_problem(first) from None
            fresh = self.secrets.get(refresh=True)
            if fresh == credentials:
                raise to_problem(first, note="a fresh read returned the same keys") from None
            try:
                return self._plaid_once(path, body, fresh, remaining, log, idempotent)
            except PlaidCallError as second:
                raise to_problem(second, note="rejected again after a fresh secret read") from None

    def _plaid_once(
        self,
        path: str,
        body: dict[str, Any],
        credentials: PlaidCredentials,
        remaining: Callable[[], float],
        log: dict[str, Any],
        idempotent: bool,
    ) -> PlaidAnswer:
        try:
            if path == EXCHANGE_PATH:
                answer = self.plaid.call(
                    path, body, credentials, remaining, accept=_is_exchange, idempotent=idempotent
                )
            else:  # any JSON object is the answer (/item/remove's is a request id)
                answer = self.plaid.call(path, body, credentials, remaining, idempotent=idempotent)
        except PlaidCallError as exc:
            _spent(log, exc.attempts, exc.latency_ms)
            if not idempotent and _may_have_acted(exc):
                log["outcome_unknown"] = True
            raise
        _spent(log, answer.attempts, answer.latency_ms)
        log["plaid_request_id"] = answer.request_id
        return answer

    def _refuse_duplicate(self, owner: str, request: ExchangeRequest, log: dict[str, Any]) -> None:
        """Plaid asks integrations not to exchange the same accounts twice."""
        masks = frozenset(account.mask for account in request.accounts)
        for record in self.store.list_items(owner):
            if record.institution.institution_id == request.institution.institution_id and (
                record.masks() == masks
            ):
                log["item_id"] = record.item_id
                raise Problem(
                    "DUPLICATE_ITEM",
                    cause="the user already has an Item with these accounts at this institution",
                    extensions={"item_id": record.item_id},
                )

    def _remove_orphan(
        self, access_token: str, remaining: Callable[[], float], log: dict[str, Any]
    ) -> str:
        """Remove at Plaid an Item that could not be stored: "removed", else "left"."""
        try:
            self._plaid(REMOVE_PATH, {"access_token": access_token}, remaining, {})
        except Problem as problem:
            log["orphan_cause"] = problem.cause
            return "left"
        return "removed"

    def _release(self, digest: str) -> None:
        with suppress(Problem):  # else the claim expires by itself (EXCHANGE_LOCK_SECONDS)
            self.store.release_exchange(digest)

    def _replayed(
        self, same_owner: bool, claim: Claim, owner: str, log: dict[str, Any]
    ) -> dict[str, Any]:
        """A public token someone already exchanged, or is exchanging."""
        if not same_owner:
            raise Problem(
                "INVALID_PUBLIC_TOKEN", cause="the public_token was exchanged for another user"
            )
        if claim.status != "COMPLETED" or not claim.item_id:
            raise Problem(
                "EXCHANGE_IN_PROGRESS", cause="another request is exchanging this public_token"
            )
        record = self.store.get_item(owner, claim.item_id)
        if record is None or record.removed:
            raise Problem(
                "INVALID_PUBLIC_TOKEN",
                cause="the public_token was exchanged already, for an Item since removed",
            )
        log.update(item_id=record.item_id, replayed=True)
        return self._created(record, None)

    def _created(self, record: ItemRecord, plaid_request_id: str | None) -> dict[str, Any]:
        view = record.view()
        body = {
            "item_id": view["item_id"],
            "institution": view["institution"],
            "accounts": view["accounts"],
            "health": view["health"],
        }
        if plaid_request_id:
            body["plaid_request_id"] = plaid_request_id
        return body


def _may_have_acted(exc: PlaidCallError) -> bool:
    """Plaid received the request and may have acted on it, but no answer says what it did: a
    read timeout, a connection dropped after sending, an answer that could not be read, or a
    5xx (a server that failed part way may have made the Item before it failed)."""
    error = exc.error
    if error.rule is NO_TIME or error.never_connected:
        return False
    return error.http_status in {0, 200} or error.http_status >= 500


def _spent(log: dict[str, Any], attempts: int, latency_ms: float) -> None:
    log["attempts"] = log.get("attempts", 0) + attempts
    log["plaid_latency_ms"] = round(log.get("plaid_latency_ms", 0.0) + latency_ms, 1)


def _public_token_cause(request: ExchangeRequest, plaid_env: str) -> str:
    if request.token_environment != plaid_env:
        return (
            f"the public_token is from Plaid's {request.token_environment} environment and this "
            f"service runs in {plaid_env}: the app's Link and PLAID_ENV disagree"
        )
    return (
        "Plaid refused the public_token: most likely older than 30 minutes (exchange it right "
        "after onSuccess) or exchanged already"
    )
