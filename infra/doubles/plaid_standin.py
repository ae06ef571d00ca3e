"""A loopback stand-in for Plaid's Link token, Item and webhook endpoints. It is NOT Plaid.

It answers the way Plaid Sandbox does (tokens `link-sandbox-<uuid>`, `public-sandbox-<uuid>`,
`access-sandbox-<uuid>`, Plaid-shaped error objects for bad keys, missing fields and bad
tokens) so the real handler can run end to end with no network: `make invoke`, the build smoke
test and the benchmark use it. Every answer carries `X-Stand-In: not-plaid`.

It plays, each behind the PLAID-CLIENT-ID / PLAID-SECRET check:

- `/link/token/create`: a new-Item token (4 hours; its `webhook` becomes the Item's), or with
  `access_token` an update-mode token (30 minutes; `products` must then be absent;
  `update.account_selection_enabled` accepted; a `webhook` has no effect, as at Plaid);
- `/sandbox/public_token/create`: an Item at an institution (`ins_<digits>`) with its products
  (and `options.webhook`);
- `/item/public_token/exchange`: once per public token, within 30 minutes of its creation
  (the clock is the `clock` callable, `time.time` by default, so tests can age a token);
- `/item/get`, `/item/remove` (afterwards every call with that access token gets Plaid's
  ITEM_NOT_FOUND; an access token never issued gets INVALID_ACCESS_TOKEN),
  `/sandbox/item/reset_login` (the Item is then in ITEM_LOGIN_REQUIRED until `repair`, which
  plays completing Link in update mode; the ITEM ERROR webhook is sent);
- `/sandbox/item/fire_webhook`: sends the ITEM webhook asked for (`webhook_type` ITEM, the
  default, with NEW_ACCOUNTS_AVAILABLE, PENDING_DISCONNECT, USER_PERMISSION_REVOKED,
  USER_ACCOUNT_REVOKED, LOGIN_REPAIRED or ERROR: ITEM_LOGIN_REQUIRED) and changes nothing of
  the Item; Plaid's other types and codes, which it does not play, are refused (INVALID_FIELD),
  and an Item without a webhook URL gets Sandbox's SANDBOX_WEBHOOK_INVALID;
- `/webhook_verification_key/get`: the JWK of a key it signed webhooks with, by `key_id`
  (`expired_at` set once `rotate_key` replaced it); an unknown one gets
  INVALID_WEBHOOK_VERIFICATION_KEY_ID.

Webhooks are Plaid's ITEM bodies (item_webhooks.schema.json; PENDING_* moments 7 days ahead of
the clock), signed with the stand-in's own `SigningKey` (webhook_signer.py, `iat` from the
clock) and posted to the Item's webhook URL by standin_webhooks.py: off the request's thread,
in order, a few quick retries, and only to a loopback address (any other URL is recorded as
refused, never sent; `webhook_tls` verifies an https receiver). `deliveries()` /
`wait_deliveries(n)` tell what became of each; `fire_item_webhook` sends any of them by item
id, PENDING_EXPIRATION too (Plaid's fire_webhook cannot). Finishing update mode on an Item in
error (`repair`, or `complete_link`) sends LOGIN_REPAIRED. Two liberties, so a local run shows
every health change: Plaid documents LOGIN_REPAIRED for a repair made outside the app's own
update mode, and fire_webhook's ERROR as an Assets webhook.

It also plays Link's side, which a browser's Link would: it remembers every link token it
issued (a new Item's, with its products; an update-mode one, with its Item), and
`complete_link(link_token)` finishes that token's one Link session. A new Item's token gets a
public token for an Item at the stand-in's fixed institution (`LINK_INSTITUTION`, with the
accounts `LINK_ACCOUNTS`: linking twice is a duplicate for the service) and the metadata Link
gives `onSuccess`; `expired_public_token=True` makes that public token one already past its
30 minutes (Plaid then answers INVALID_PUBLIC_TOKEN). An update-mode token repairs its Item
(`repair`) and gets a public token for the same Item, as Link in update mode gives one (its
exchange, which apps skip, gives the Item's own access token). Nothing it returns is an
access token.

The Items live in memory, guarded by a lock (requests are served on several threads);
`items()` is a snapshot without tokens. Tests can script answers (`script`: they take
precedence over all of the above), count TCP connections and requests, and serve TLS with a
certificate of their own. With `compress="gzip"` (or `"deflate"`) it compresses every answer
whose request accepts that encoding, as Plaid's front end or a corporate proxy may. Sockets
set TCP_NODELAY and each answer is one write: otherwise Nagle's algorithm and delayed ACKs add
~40 ms to every kept-alive request.

    with PlaidStandIn(client_id="id", secret="sec") as plaid:
        os.environ["PLAID_BASE_URL"] = plaid.base_url
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import socket
import ssl
import string
import threading
import time
import uuid
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any, ClassVar, Final

from infra.doubles.standin_webhooks import Delivery, WebhookSender
from infra.doubles.webhook_signer import SigningKey
from infra.gateway.local_guard import GuardedHandler

REQUIRED = ("client_name", "language", "country_codes", "user")

ENVIRONMENT: Final = "sandbox"  # the environment whose tokens the stand-in issues and accepts
ENVIRONMENTS: Final = frozenset({"sandbox", "development", "production"})
TOKEN_KINDS: Final = frozenset({"access", "public", "link"})
LINK_TOKEN_LIFETIME: Final = 4 * 3600  # seconds, a new-Item link token
UPDATE_LINK_TOKEN_LIFETIME: Final = 30 * 60  # an update-mode link token
PUBLIC_TOKEN_LIFETIME: Final = 30 * 60
MAX_LINK_SESSIONS: Final = 10_000  # link tokens remembered for complete_link, newest kept

# Plaid's product names (the `Products` enum of its API).
PRODUCTS: Final = frozenset(
    {
        "assets", "auth", "balance", "balance_plus", "beacon", "identity", "identity_match",
        "investments", "investments_auth", "liabilities", "payment_initiation",
        "identity_verification", "transactions", "credit_details", "income",
        "income_verification", "standing_orders", "transfer", "employment",
        "recurring_transactions", "transactions_refresh", "signal", "statements",
        "processor_payments", "processor_identity", "profile", "cra_base_report",
        "cra_income_insights", "cra_partner_insights", "cra_network_insights",
        "cra_cashflow_insights", "cra_monitoring", "cra_lend_score", "cra_plaid_credit_score",
        "layer", "pay_by_bank", "protect_linked_bank", "protect_transactions",
    }
)  # fmt: skip
# What a Sandbox Item at a test institution offers beyond the products it was created with.
_AVAILABLE: Final = ("assets", "auth", "balance", "identity", "investments", "liabilities",
                     "transactions")  # fmt: skip
_INSTITUTION_ID = re.compile(r"ins_[0-9]+")
_INSTITUTION_NAMES: Final = {  # Sandbox's non-OAuth test institutions; others get null
    "ins_109508": "First Platypus Bank",
    "ins_109509": "First Gingham Credit Union",
    "ins_109510": "Tattersall Federal Credit Union",
    "ins_109511": "Tartan Bank",
    "ins_109512": "Houndstooth Bank",
}
# What completing a new Item's Link session links: Sandbox's First Platypus Bank with the
# accounts Sandbox's user_good has there (the first two). Every Item of the stand-in has them.
LINK_INSTITUTION: Final = {"institution_id": "ins_109508", "name": "First Platypus Bank"}
LINK_ACCOUNTS: Final = (
    {"name": "Plaid Checking", "mask": "0000", "type": "depository", "subtype": "checking"},
    {"name": "Plaid Saving", "mask": "1111", "type": "depository", "subtype": "savings"},
)
_ITEM_ID_ALPHABET: Final = string.ascii_letters + string.digits
_ITEM_ID_LENGTH: Final = 37  # as Plaid's item ids

_CREDENTIALS: Final = frozenset({"client_id", "secret"})
_FIELDS: Final = {  # what each Item endpoint's request may hold (Plaid refuses anything else)
    "/sandbox/public_token/create": _CREDENTIALS
    | {"institution_id", "initial_products", "options", "user_token", "user_id"},
    "/item/public_token/exchange": _CREDENTIALS | {"public_token"},
    "/item/get": _CREDENTIALS | {"access_token"},
    "/item/remove": _CREDENTIALS | {"access_token", "reason_code", "reason_note"},
    "/sandbox/item/reset_login": _CREDENTIALS | {"access_token"},
    "/sandbox/item/fire_webhook": _CREDENTIALS | {"access_token", "webhook_type", "webhook_code"},
    "/webhook_verification_key/get": _CREDENTIALS | {"key_id"},
}
_SANDBOX_OPTIONS: Final = frozenset(
    {"webhook", "override_username", "override_password", "transactions", "statements",
     "income_verification"}
)  # fmt: skip
_UPDATE_OPTIONS: Final = frozenset(
    {"account_selection_enabled", "reauthorization_enabled", "user", "item_ids"}
)
# /sandbox/item/fire_webhook's enums in Plaid's API, and the ITEM webhooks the stand-in sends.
FIRE_WEBHOOK_TYPES: Final = frozenset(
    {"AUTH", "HOLDINGS", "INVESTMENTS_TRANSACTIONS", "ITEM", "LIABILITIES", "TRANSACTIONS",
     "ASSETS"}
)  # fmt: skip
FIRE_WEBHOOK_CODES: Final = frozenset(
    {"DEFAULT_UPDATE", "NEW_ACCOUNTS_AVAILABLE", "SMS_MICRODEPOSITS_VERIFICATION",
     "AUTHORIZATION_GRANTED", "USER_PERMISSION_REVOKED", "USER_ACCOUNT_REVOKED",
     "PENDING_DISCONNECT", "RECURRING_TRANSACTIONS_UPDATE", "LOGIN_REPAIRED",
     "SYNC_UPDATES_AVAILABLE", "PRODUCT_READY", "ERROR"}
)  # fmt: skip
ITEM_WEBHOOK_CODES: Final = frozenset(
    {"ERROR", "LOGIN_REPAIRED", "NEW_ACCOUNTS_AVAILABLE", "PENDING_DISCONNECT",
     "PENDING_EXPIRATION", "USER_ACCOUNT_REVOKED", "USER_PERMISSION_REVOKED"}
)  # fmt: skip
# Plaid's fire_webhook has no PENDING_EXPIRATION: only the control route sends that one.
FIREABLE_ITEM_CODES: Final = ITEM_WEBHOOK_CODES & FIRE_WEBHOOK_CODES
NOTICE_PERIOD: Final = 7 * 24 * 3600  # how far ahead a PENDING_* webhook puts its moment

ITEM_LOGIN_REQUIRED_MESSAGE: Final = (
    "the login details of this item have changed (credentials, MFA, or required user action)"
    " and a user login is required to update this information. use Link's update mode to"
    " restore the item to a good state"
)
# What Sandbox answers for a removed Item's access token (a second /item/remove included).
ITEM_NOT_FOUND_MESSAGE: Final = (
    "The Item you requested cannot be found. This Item does not exist, has been previously"
    " removed via /item/remove, or has had access removed by the user."
)
USER_PERMISSION_REVOKED_MESSAGE: Final = (
    "the holder of this account has revoked their permission for your application to access it"
)
SANDBOX_WEBHOOK_INVALID_MESSAGE: Final = (
    "Webhook for this item is either not set up, or invalid. Please update the item's webhook"
    " and try again."
)
_UNKNOWN_PUBLIC: Final = "could not find matching public token"
_UNKNOWN_ACCESS: Final = "could not find matching access token"
_EXPIRED_PUBLIC: Final = (
    "provided public token is expired. Public tokens expire 30 minutes after creation at which"
    " point they can no longer be exchanged"
)


@dataclass
class Scripted:
    """One canned answer: status, JSON body (or raw bytes), headers, delay before answering."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    close: bool = False  # drop the connection without answering


def plaid_error(
    status: int, error_type: str, error_code: str, message: str, **headers: str
) -> Scripted:
    """A Plaid-shaped error answer, for scripting failures."""
    body = {
        "error_type": error_type,
        "error_code": error_code,
        "error_message": message,
        "display_message": None,
        "request_id": _request_id(),
    }
    return Scripted(status, body, dict(headers))


def _request_id() -> str:
    return secrets.token_hex(8)[:15]


@dataclass(frozen=True)
class ItemView:
    """What a test may know of one Item the stand-in holds: never its access token."""

    item_id: str
    institution_id: str
    removed: bool
    error: str | None  # the error_code of the Item's error (ITEM_LOGIN_REQUIRED), or None


@dataclass
class _Item:
    item_id: str
    institution_id: str
    products: tuple[str, ...]
    webhook: str | None
    created_at: float
    access_token: str | None = None
    removed: bool = False
    error: dict[str, Any] | None = None
    # The Item's accounts as Link describes them (id, name, mask, type, subtype).
    accounts: tuple[dict[str, str], ...] = ()


@dataclass
class _PublicToken:
    item: _Item
    created_at: float
    exchanged: bool = False


@dataclass
class _LinkSession:
    """A link token the stand-in issued: a new Item's (products) or update mode's (item)."""

    expires_at: float
    products: tuple[str, ...] = ()
    item: _Item | None = None
    completed: bool = False
    webhook: str | None = None  # a new Item's (update mode takes none)


class LinkSessionRefused(Exception):
    """`complete_link` cannot complete this session; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Handler(GuardedHandler):  # its own Host only, no web page's Origin
    protocol_version = "HTTP/1.1"  # keep-alive, as Plaid's servers do
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the handler's own logs are what the user should read

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with self.server.lock:
            self.server.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": raw}
            )
            scripted = self.server.scripted.popleft() if self.server.scripted else None
        answer = scripted or self.server.answer(self.path, self.headers, raw)
        if answer.delay:
            time.sleep(answer.delay)
        if answer.close:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = (
            answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        )
        headers = {"Content-Type": "application/json", "X-Stand-In": "not-plaid"}
        encoding = self.server.standin.compress
        if encoding and encoding in self.headers.get("Accept-Encoding", ""):
            payload = _COMPRESSORS[encoding](payload)
            headers["Content-Encoding"] = encoding
        headers.update(answer.headers)
        # Status line, headers and body in one write: separate small writes meet Nagle's
        # algorithm and the client's delayed ACK.
        lines = [f"HTTP/1.1 {answer.status} {self.responses.get(answer.status, ('',))[0]}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"Content-Length: {len(payload)}", f"Date: {self.date_time_string()}"]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data)


_COMPRESSORS = {"gzip": _gzip, "deflate": _deflate}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, standin: PlaidStandIn) -> None:
        super().__init__((standin.host, 0), _Handler)
        self.standin = standin
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[dict[str, Any]] = []
        self.scripted: deque[Scripted] = deque()

    def answer(self, path: str, headers: Any, raw: bytes) -> Scripted:
        return self.standin.sandbox_answer(path, headers, raw)


def _ok(body: dict[str, Any]) -> Scripted:
    return Scripted(200, {**body, "request_id": _request_id()})


def _invalid_request(code: str, message: str) -> Scripted:
    return plaid_error(400, "INVALID_REQUEST", code, message)


def _missing(*names: str) -> Scripted:
    return _invalid_request(
        "MISSING_FIELDS", f"the following required fields are missing: {', '.join(names)}"
    )


def _unknown(names: Iterable[str]) -> Scripted | None:
    unknown = sorted(names)
    if not unknown:
        return None
    return _invalid_request(
        "UNKNOWN_FIELDS",
        f"the following fields are not recognized by this endpoint: {', '.join(unknown)}",
    )


def _not_a_string(name: str) -> Scripted:
    return _invalid_request(
        "INVALID_FIELD", f"{name} must be a properly formatted, non-empty string"
    )


def _token_refusal(token: str, kind: str) -> Scripted | None:
    """Plaid's answer to a token that is not a well-formed `<kind>-sandbox-...`, else None."""
    code = f"INVALID_{kind.upper()}_TOKEN"
    prefix, _, rest = token.partition("-")
    environment, _, identifier = rest.partition("-")
    if prefix not in TOKEN_KINDS or environment not in ENVIRONMENTS or not identifier:
        message = (
            f"provided {kind} token is in an invalid format."
            f" expected format: {kind}-<environment>-<identifier>"
        )
    elif prefix != kind:
        message = f'provided token is the wrong type. expected "{kind}", got "{prefix}"'
    elif environment != ENVIRONMENT:
        message = (
            f"provided {kind} token is for the wrong Plaid environment."
            f' expected "{ENVIRONMENT}", got "{environment}"'
        )
    else:
        return None
    return plaid_error(400, "INVALID_INPUT", code, message)


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PlaidStandIn:
    """Run the stand-in on a free loopback port for the duration of a `with` block."""

    def __init__(
        self,
        client_id: str = "standin-client-id",
        secret: str = "standin-secret",  # noqa: S107 - the stand-in's own fake key
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
        compress: str | None = None,
        clock: Callable[[], float] = time.time,
        webhook_tls: ssl.SSLContext | None = None,
    ) -> None:
        if compress not in {None, *_COMPRESSORS}:
            raise ValueError(f"compress must be one of {sorted(_COMPRESSORS)} or None")
        self.compress = compress
        self.client_id = client_id
        self.secret = secret
        self.host = host
        self.tls = tls
        self.clock = clock
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # The Items, by item_id, and the tokens that reach them. Requests run on several
        # threads (and PlaidFaults answers through sandbox_answer without a server of ours).
        self._items_lock = threading.Lock()
        self._items: dict[str, _Item] = {}
        self._public_tokens: dict[str, _PublicToken] = {}
        self._access_tokens: dict[str, _Item] = {}
        self._link_sessions: OrderedDict[str, _LinkSession] = OrderedDict()
        # Every key it signed webhooks with, by kid: a rotated-out one keeps answering.
        self._keys_lock = threading.Lock()
        self._key = SigningKey.new(created_at=int(clock()))
        self._keys: dict[str, SigningKey] = {self._key.kid: self._key}
        self._webhooks = WebhookSender(self._sign, tls=webhook_tls)

    @property
    def server(self) -> _Server:
        assert self._server is not None, "use PlaidStandIn as a context manager"
        return self._server

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.server.server_address[1]}"

    @property
    def connections(self) -> int:
        return self.server.connections

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.server.requests

    def script(self, *answers: Scripted) -> None:
        """Queue answers to give, in order, before falling back to Sandbox behaviour."""
        with self.server.lock:
            self.server.scripted.extend(answers)

    def items(self) -> tuple[ItemView, ...]:
        """Every Item created so far (exchanged or not, removed or not), oldest first."""
        with self._items_lock:
            return tuple(
                ItemView(
                    item.item_id,
                    item.institution_id,
                    item.removed,
                    item.error["error_code"] if item.error else None,
                )
                for item in self._items.values()
            )

    @property
    def signing_key(self) -> SigningKey:
        """The key webhooks are signed with now."""
        with self._keys_lock:
            return self._key

    def rotate_key(self) -> SigningKey:
        """A new signing key from now on; the old one stays known with `expired_at` now."""
        with self._keys_lock:
            now = int(self.clock())
            self._key.expired_at = now
            self._key = SigningKey.new(created_at=now)
            self._keys[self._key.kid] = self._key
            return self._key

    def _sign(self, body: bytes) -> str:
        """`Plaid-Verification` for `body`, signed at the stand-in's clock (on the sender's
        thread, at each attempt)."""
        with self._keys_lock:
            key = self._key
        return key.sign(body, iat=int(self.clock()))

    def deliveries(self) -> tuple[Delivery, ...]:
        """Every webhook sent so far and what became of it, oldest first (standin_webhooks)."""
        return self._webhooks.deliveries()

    def wait_deliveries(self, n: int, timeout: float = 5.0) -> tuple[Delivery, ...]:
        """`deliveries()` once `n` webhooks are done; TimeoutError after `timeout` seconds."""
        return self._webhooks.wait_deliveries(n, timeout)

    def fire_item_webhook(self, item_id: str, webhook_code: str) -> None:
        """Send the Item `item_id` the ITEM webhook `webhook_code` (any of ITEM_WEBHOOK_CODES,
        PENDING_EXPIRATION too), changing nothing of the Item. LookupError for an unknown or
        removed Item; ValueError for another code or an Item without a webhook URL."""
        if webhook_code not in ITEM_WEBHOOK_CODES:
            raise ValueError(f"webhook_code must be one of {', '.join(sorted(ITEM_WEBHOOK_CODES))}")
        with self._items_lock:
            item = self._items.get(item_id)
            if item is None or item.removed or item.access_token is None:
                raise LookupError("no such Item, or it was removed")
            if item.webhook is None:
                raise ValueError("the Item has no webhook URL")
            self._send(item, webhook_code)

    def _send(self, item: _Item, webhook_code: str) -> None:
        """Queue the ITEM webhook `webhook_code` for `item`'s webhook URL, if it has one (it is
        delivered off this thread). Hold the lock."""
        if item.webhook is not None:
            self._webhooks.send(item.webhook, _item_webhook(webhook_code, item, self.clock()))

    def repair(self, access_token: str) -> None:
        """What completing Link in update mode does: the Item's error is cleared (and, if it had
        one, a LOGIN_REPAIRED webhook sent). LookupError if no Item, or only a removed one, has
        this access token."""
        with self._items_lock:
            self._repair(self._access_tokens.get(access_token))

    def repair_item(self, item_id: str) -> None:
        """`repair` for the Item `item_id` (what the control endpoint knows of an Item)."""
        with self._items_lock:
            self._repair(self._items.get(item_id))

    def reset_login_item(self, item_id: str) -> None:
        """`/sandbox/item/reset_login` for the Item `item_id`: ITEM_LOGIN_REQUIRED until
        repaired, and its ERROR webhook. LookupError as for `repair_item`."""
        with self._items_lock:
            item = self._items.get(item_id)
            if item is None or item.removed or item.access_token is None:
                raise LookupError("no such Item, or it was removed")
            self._reset_login_of(item)

    def _reset_login_of(self, item: _Item) -> None:
        """What /sandbox/item/reset_login does to a live Item. Hold the lock."""
        item.error = _login_required()
        self._send(item, "ERROR")

    def _repair(self, item: _Item | None) -> None:
        """What finishing update mode does to the Item. Hold the lock."""
        if item is None or item.removed or item.access_token is None:
            raise LookupError("no such Item, or it was removed")  # never names the token
        if item.error is not None:
            item.error = None
            self._send(item, "LOGIN_REPAIRED")

    def complete_link(
        self,
        link_token: str,
        *,
        expired_public_token: bool = False,
        link_session_id: str | None = None,
    ) -> dict[str, Any]:
        """Finish the one Link session of `link_token`, as the user finishing Link does:
        `{"mode": "new" | "update", "public_token", "metadata"}` (the two arguments of Link's
        `onSuccess`; see the module docstring). LinkSessionRefused for a token this stand-in
        did not issue (404), one already used (409) or expired (410), an update-mode session
        whose Item is gone (404), or `expired_public_token` for update mode (400)."""
        with self._items_lock:
            session = self._link_sessions.get(link_token)
            if session is None:
                raise LinkSessionRefused(404, "this stand-in issued no such link token")
            if session.completed:
                raise LinkSessionRefused(409, "a link token serves one Link session: it is used")
            now = self.clock()
            if now >= session.expires_at:
                raise LinkSessionRefused(410, "the link token has expired")
            if session.item is not None:
                if expired_public_token:
                    raise LinkSessionRefused(
                        400, "an expired public token is an outcome of a new Item's session"
                    )
                item = session.item
                if item.removed or item.access_token is None:
                    raise LinkSessionRefused(404, "the Item of this link token was removed")
                self._repair(item)
                created = now
            else:
                item = self._new_item(
                    LINK_INSTITUTION["institution_id"], session.products, session.webhook
                )
                created = now - PUBLIC_TOKEN_LIFETIME - 1 if expired_public_token else now
            session.completed = True
            public_token = f"public-{ENVIRONMENT}-{uuid.uuid4()}"
            self._public_tokens[public_token] = _PublicToken(item, created)
        metadata = {
            "institution": dict(LINK_INSTITUTION),
            "accounts": [
                {**account, "verification_status": None, "class_type": None}
                for account in item.accounts
            ],
            "link_session_id": link_session_id or str(uuid.uuid4()),
            "transfer_status": None,
        }
        mode = "new" if session.item is None else "update"
        return {"mode": mode, "public_token": public_token, "metadata": metadata}

    def _new_item(self, institution_id: str, products: Iterable[str], webhook: str | None) -> _Item:
        """A new Item, with the stand-in's accounts, held by the stand-in. Hold the lock."""
        item = _Item(
            item_id=_new_item_id(),
            institution_id=institution_id,
            products=tuple(sorted(set(products))),
            webhook=webhook,
            created_at=self.clock(),
            accounts=tuple({"id": _new_item_id(), **account} for account in LINK_ACCOUNTS),
        )
        self._items[item.item_id] = item
        return item

    def __enter__(self) -> PlaidStandIn:
        self._server = _Server(self)
        if self.tls:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._webhooks.close()

    def sandbox_answer(self, path: str, headers: Any, raw: bytes) -> Scripted:  # noqa: PLR0911
        """What Plaid Sandbox would say to this request (the parts this service relies on)."""
        route = self._ROUTES.get(path)
        if route is None:
            return plaid_error(404, "INVALID_REQUEST", "NOT_FOUND", "unknown route")
        try:
            body = json.loads(raw)
        except ValueError:
            return plaid_error(400, "INVALID_REQUEST", "INVALID_BODY", "body could not be parsed")
        if not isinstance(body, dict):
            return plaid_error(400, "INVALID_REQUEST", "INVALID_BODY", "body must be an object")
        client_id = headers.get("PLAID-CLIENT-ID") or body.get("client_id")
        secret = headers.get("PLAID-SECRET") or body.get("secret")
        if not client_id or not secret:
            return plaid_error(
                400, "INVALID_REQUEST", "MISSING_FIELDS", "client_id and secret are required"
            )
        if (client_id, secret) != (self.client_id, self.secret):
            return plaid_error(
                400, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret provided"
            )
        if path in _FIELDS and (refusal := _unknown(set(body) - _FIELDS[path])):
            return refusal
        return route(self, body)

    # --- /link/token/create ------------------------------------------------------------------

    def _link_token_create(self, body: dict[str, Any]) -> Scripted:  # noqa: PLR0911
        missing = [key for key in REQUIRED if key not in body]
        if missing or not body.get("user", {}).get("client_user_id"):
            return plaid_error(
                400, "INVALID_REQUEST", "MISSING_FIELDS", f"missing fields: {missing or ['user']}"
            )
        access_token = body.get("access_token")
        if access_token is None:  # a new Item
            if not body.get("products"):
                return _invalid_request("INVALID_FIELD", "products must be a non-empty list")
            lifetime = LINK_TOKEN_LIFETIME
            webhook = body.get("webhook")
            if webhook is not None and (not isinstance(webhook, str) or not webhook):
                return _not_a_string("webhook")
        else:  # update mode, for the Item of access_token
            if not isinstance(access_token, str) or not access_token:
                return _not_a_string("access_token")
            if "products" in body:
                return _invalid_request(
                    "INVALID_FIELD",
                    "products must be omitted when access_token is set: Link in update mode"
                    " repairs or extends an existing Item with the products it has",
                )
            if refusal := _update_refusal(body.get("update")):
                return refusal
            lifetime = UPDATE_LINK_TOKEN_LIFETIME
            webhook = None  # update mode leaves the Item's webhook (/item/webhook/update sets it)
        if body.get("redirect_uri") and body.get("android_package_name"):
            return plaid_error(
                400,
                "INVALID_REQUEST",
                "INVALID_FIELD",
                "android_package_name and redirect_uri cannot both be set",
            )
        link_token = f"link-sandbox-{uuid.uuid4()}"
        with self._items_lock:
            item = None
            if access_token is not None:
                item, refusal = self._item_of(access_token)
                if refusal:
                    return refusal
            now = self.clock()
            products = tuple(body.get("products") or ())
            self._link_sessions[link_token] = _LinkSession(
                now + lifetime, products, item, webhook=webhook
            )
            while len(self._link_sessions) > MAX_LINK_SESSIONS:
                self._link_sessions.popitem(last=False)
        return _ok({"link_token": link_token, "expiration": _timestamp(now + lifetime)})

    # --- the Item endpoints ------------------------------------------------------------------

    def _sandbox_public_token_create(self, body: dict[str, Any]) -> Scripted:  # noqa: PLR0911
        missing = [key for key in ("institution_id", "initial_products") if body.get(key) is None]
        if missing:
            return _missing(*missing)
        institution_id, products = body["institution_id"], body["initial_products"]
        if not isinstance(institution_id, str) or not institution_id:
            return _not_a_string("institution_id")
        if (
            not isinstance(products, list)
            or not products
            or not all(isinstance(p, str) for p in products)
        ):
            return _invalid_request(
                "INVALID_FIELD", "initial_products must be a non-empty list of products"
            )
        if unknown := sorted(set(products) - PRODUCTS):
            return _invalid_request(
                "INVALID_FIELD", f"initial_products has unknown products: {', '.join(unknown)}"
            )
        options = body.get("options", {})
        if not isinstance(options, dict):
            return _invalid_request("INVALID_FIELD", "options must be an object")
        if refusal := _unknown(f"options.{key}" for key in set(options) - _SANDBOX_OPTIONS):
            return refusal
        webhook = options.get("webhook")
        if webhook is not None and (not isinstance(webhook, str) or not webhook):
            return _not_a_string("options.webhook")
        if not _INSTITUTION_ID.fullmatch(institution_id):
            return plaid_error(
                400, "INVALID_INPUT", "INVALID_INSTITUTION", "invalid institution_id provided"
            )
        public_token = f"public-{ENVIRONMENT}-{uuid.uuid4()}"
        with self._items_lock:
            item = self._new_item(institution_id, products, webhook)
            self._public_tokens[public_token] = _PublicToken(item, item.created_at)
        return _ok({"public_token": public_token})

    def _public_token_exchange(self, body: dict[str, Any]) -> Scripted:
        public_token = body.get("public_token")
        if public_token is None:
            return _missing("public_token")
        if not isinstance(public_token, str) or not public_token:
            return _not_a_string("public_token")
        if refusal := _token_refusal(public_token, "public"):
            return refusal
        with self._items_lock:
            held = self._public_tokens.get(public_token)
            if held is None or held.exchanged:  # Plaid forgets a public token once exchanged
                message = _UNKNOWN_PUBLIC
            elif self.clock() - held.created_at >= PUBLIC_TOKEN_LIFETIME:
                message = _EXPIRED_PUBLIC
            else:
                held.exchanged = True
                item = held.item
                if item.access_token is None:  # update mode's public token: the same Item's
                    item.access_token = f"access-{ENVIRONMENT}-{uuid.uuid4()}"
                    self._access_tokens[item.access_token] = item
                return _ok({"access_token": item.access_token, "item_id": item.item_id})
        return plaid_error(400, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN", message)

    def _item_get(self, body: dict[str, Any]) -> Scripted:
        with self._items_lock:
            item, refusal = self._item_in(body)
            if refusal:
                return refusal
            assert item is not None
            return _ok({"item": _item_body(item), "status": _item_status(item)})

    def _item_remove(self, body: dict[str, Any]) -> Scripted:
        with self._items_lock:
            item, refusal = self._item_in(body)
            if refusal:
                return refusal
            assert item is not None
            item.removed = True
        return _ok({})

    def _reset_login(self, body: dict[str, Any]) -> Scripted:
        with self._items_lock:
            item, refusal = self._item_in(body)
            if refusal:
                return refusal
            assert item is not None
            self._reset_login_of(item)
        return _ok({"reset_login": True})

    def _fire_webhook(self, body: dict[str, Any]) -> Scripted:  # noqa: PLR0911
        missing = [key for key in ("access_token", "webhook_code") if body.get(key) is None]
        if missing:
            return _missing(*missing)
        code = body["webhook_code"]
        webhook_type = body.get("webhook_type")
        if webhook_type is None:  # absent (or null): the code's own type, ITEM for ours
            webhook_type = "ITEM"
        if not isinstance(code, str) or not code:
            return _not_a_string("webhook_code")
        if not isinstance(webhook_type, str):
            return _not_a_string("webhook_type")
        if code not in FIRE_WEBHOOK_CODES:
            return _one_of("webhook_code", FIRE_WEBHOOK_CODES)
        if webhook_type not in FIRE_WEBHOOK_TYPES:
            return _one_of("webhook_type", FIRE_WEBHOOK_TYPES)
        if webhook_type != "ITEM" or code not in FIREABLE_ITEM_CODES:
            return _invalid_request(
                "INVALID_FIELD",
                f"the stand-in fires ITEM webhooks only ({', '.join(sorted(FIREABLE_ITEM_CODES))})"
                f", not {webhook_type} {code}",
            )
        with self._items_lock:
            item, refusal = self._item_in(body)
            if refusal:
                return refusal
            assert item is not None
            if item.webhook is None:
                return plaid_error(
                    400, "SANDBOX_ERROR", "SANDBOX_WEBHOOK_INVALID", SANDBOX_WEBHOOK_INVALID_MESSAGE
                )
            self._send(item, code)  # to a URL that is not loopback it is refused, not sent
        return _ok({"webhook_fired": True})

    def _webhook_verification_key_get(self, body: dict[str, Any]) -> Scripted:
        key_id = body.get("key_id")
        if key_id is None:
            return _missing("key_id")
        if not isinstance(key_id, str) or not key_id:
            return _not_a_string("key_id")
        with self._keys_lock:
            key = self._keys.get(key_id)
            jwk = key.jwk() if key else None
        if jwk is None:
            return plaid_error(
                400,
                "INVALID_INPUT",
                "INVALID_WEBHOOK_VERIFICATION_KEY_ID",
                "invalid key_id provided",
            )
        return _ok({"key": jwk})

    def _item_in(self, body: Mapping[str, Any]) -> tuple[_Item | None, Scripted | None]:
        """The live Item whose access token the body names, or Plaid's refusal. Hold the lock."""
        access_token = body.get("access_token")
        if access_token is None:
            return None, _missing("access_token")
        if not isinstance(access_token, str) or not access_token:
            return None, _not_a_string("access_token")
        return self._item_of(access_token)

    def _item_of(self, access_token: str) -> tuple[_Item | None, Scripted | None]:
        if refusal := _token_refusal(access_token, "access"):
            return None, refusal
        item = self._access_tokens.get(access_token)
        if item is None:
            return None, plaid_error(400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN", _UNKNOWN_ACCESS)
        if item.removed:
            return None, plaid_error(400, "ITEM_ERROR", "ITEM_NOT_FOUND", ITEM_NOT_FOUND_MESSAGE)
        return item, None

    _ROUTES: ClassVar[dict[str, Callable[[PlaidStandIn, dict[str, Any]], Scripted]]] = {
        "/link/token/create": _link_token_create,
        "/sandbox/public_token/create": _sandbox_public_token_create,
        "/item/public_token/exchange": _public_token_exchange,
        "/item/get": _item_get,
        "/item/remove": _item_remove,
        "/sandbox/item/reset_login": _reset_login,
        "/sandbox/item/fire_webhook": _fire_webhook,
        "/webhook_verification_key/get": _webhook_verification_key_get,
    }


def _update_refusal(update: Any) -> Scripted | None:
    """Plaid's answer to an `update` object it would not take, else None."""
    if update is None:
        return None
    if not isinstance(update, dict):
        return _invalid_request("INVALID_FIELD", "update must be an object")
    if refusal := _unknown(f"update.{key}" for key in set(update) - _UPDATE_OPTIONS):
        return refusal
    for key in ("account_selection_enabled", "reauthorization_enabled", "user"):
        if key in update and not isinstance(update[key], bool):
            return _invalid_request("INVALID_FIELD", f"update.{key} must be a boolean")
    return None


def _one_of(name: str, allowed: Iterable[str]) -> Scripted:
    return _invalid_request("INVALID_FIELD", f"{name} must be one of {', '.join(sorted(allowed))}")


def _item_error(code: str, message: str) -> dict[str, Any]:
    """Plaid's error object for the ITEM_ERROR `code`, as an Item (and its webhooks) carry it."""
    return {
        "error_type": "ITEM_ERROR",
        "error_code": code,
        "error_code_reason": None,
        "error_message": message,
        "display_message": None,
        "status": 400,
        "causes": [],
        "documentation_url": f"https://plaid.com/docs/errors/item/#{code.lower()}",
        "suggested_action": None,
    }


def _login_required() -> dict[str, Any]:
    """The error of an Item whose bank wants the user to log in again."""
    return _item_error("ITEM_LOGIN_REQUIRED", ITEM_LOGIN_REQUIRED_MESSAGE)


def _item_webhook(code: str, item: _Item, now: float) -> dict[str, Any]:
    """The body of Plaid's ITEM webhook `code` about `item` (item_webhooks.schema.json)."""
    body: dict[str, Any] = {"webhook_type": "ITEM", "webhook_code": code, "item_id": item.item_id}
    if code == "ERROR":
        body["error"] = _login_required()
    elif code == "USER_PERMISSION_REVOKED":
        body["error"] = _item_error("USER_PERMISSION_REVOKED", USER_PERMISSION_REVOKED_MESSAGE)
    elif code == "NEW_ACCOUNTS_AVAILABLE":
        body["error"] = None
    elif code == "PENDING_EXPIRATION":
        body["consent_expiration_time"] = _timestamp(now + NOTICE_PERIOD)
    elif code == "PENDING_DISCONNECT":
        body["reason"] = "INSTITUTION_MIGRATION"
        body["disconnect_time"] = _timestamp(now + NOTICE_PERIOD)
    elif code == "USER_ACCOUNT_REVOKED":
        body["account_id"] = item.accounts[0]["id"]
    body["environment"] = ENVIRONMENT
    return body


def _new_item_id() -> str:
    return "".join(secrets.choice(_ITEM_ID_ALPHABET) for _ in range(_ITEM_ID_LENGTH))


def _item_body(item: _Item) -> dict[str, Any]:
    billed = [product for product in item.products if product != "balance"]
    return {
        "item_id": item.item_id,
        "institution_id": item.institution_id,
        "institution_name": _INSTITUTION_NAMES.get(item.institution_id),
        "webhook": item.webhook,
        "error": dict(item.error) if item.error else None,
        "available_products": sorted(set(_AVAILABLE) - set(billed)),
        "billed_products": billed,
        "products": billed,
        "consented_products": billed,
        "consent_expiration_time": None,
        "update_type": "background",
        "auth_method": "INSTANT_AUTH" if "auth" in billed else None,
        "created_at": _timestamp(item.created_at),
    }


def _item_status(item: _Item) -> dict[str, Any]:
    transactions = None
    if "transactions" in item.products:
        transactions = {
            "last_successful_update": _timestamp(item.created_at),
            "last_failed_update": None,
        }
    return {"investments": None, "transactions": transactions, "last_webhook": None}
