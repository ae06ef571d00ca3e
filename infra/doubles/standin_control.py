"""The loopback Plaid stand-in plus a control endpoint, so a browser test can script answers.

`POST <stand-in URL>/_standin/script` with a JSON list of answers queues them, in order, ahead
of the stand-in's Sandbox-like behaviour (the same queue as `PlaidStandIn.script`):

    [{"status": 400, "body": {...Plaid error...}, "headers": {"Retry-After": "2"},
      "delay": 0.5, "close": false}]

`DELETE <stand-in URL>/_standin/script` empties the queue,
`POST <stand-in URL>/_standin/items/<item_id>/repair` plays completing Link in update mode for
that Item (`PlaidStandIn.repair_item`: its ITEM_LOGIN_REQUIRED error is cleared; 404 for an
unknown or removed Item), `POST <stand-in URL>/_standin/items/<item_id>/reset_login` plays
`/sandbox/item/reset_login` for it (ITEM_LOGIN_REQUIRED), `GET <stand-in URL>/_standin/items`
lists the Items as `[{"item_id", "institution_id", "removed", "error"}]` (no token), and
`GET <stand-in URL>/_standin/requests` lists the Plaid calls received so far as
`[{"path", "body"}]` (bodies only: the credentials travel in headers, never shown, and an
`access_token` is shown as "<redacted>").

Webhooks (plaid_standin.py, standin_webhooks.py): `GET <stand-in URL>/_standin/webhooks` lists
every webhook sent so far, oldest first, as `[{"url", "webhook", "attempts", "status",
"error"}]` (`webhook` is the body sent: an item id, never a token; `attempts` 0 and an `error`
"refused: ..." for a URL that is not loopback); `POST <stand-in URL>/_standin/webhook_key/rotate`
signs with a new key from then on (the old one answers with `expired_at` set) and answers 200
`{"key_id"}`, the new kid; `POST <stand-in URL>/_standin/items/<item_id>/fire_webhook` with
`{"webhook_code"}` sends that Item that ITEM webhook (`PlaidStandIn.fire_item_webhook`: one of
ERROR, LOGIN_REPAIRED, NEW_ACCOUNTS_AVAILABLE, PENDING_DISCONNECT, PENDING_EXPIRATION,
USER_ACCOUNT_REVOKED, USER_PERMISSION_REVOKED; 400 for another code or an Item without a webhook
URL, 404 for an unknown or removed Item). A reset_login sends the ERROR webhook and a repair of
an Item in error LOGIN_REPAIRED, as their Plaid and Link counterparts do.

`POST <stand-in URL>/_standin/link/complete` with `{"link_token", "outcome"?,
"link_session_id"?}` finishes that link token's Link session (`PlaidStandIn.complete_link`)
and answers 200 `{"mode", "public_token", "metadata"}`: what Link gives `onSuccess`, never an
access token. `outcome` is `"success"` (the default) or `"expired_public_token"`. make serve
passes its page's requests on to it (infra/gateway/standin_link.py).

Answers are 204 (or 200 with JSON), or 400/404/409/410 with the reason; every POST (a script,
a repair, a reset, a webhook, a rotation, a completion) must be sent as
`Content-Type: application/json` (415 otherwise), which
no web page can send across sites without a preflight. The stand-in only
ever listens on loopback and refuses any request naming another Host or carrying a web page's
Origin (local_guard.py); the Plaid client never calls these paths (it only calls Plaid's own
routes): a test double's knob.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from dataclasses import asdict
from typing import Any, Final

from infra.doubles.plaid_standin import LinkSessionRefused, PlaidStandIn, Scripted, _Handler

CONTROL_PATH = "/_standin/script"
REQUESTS_PATH = "/_standin/requests"
ITEMS_PATH = "/_standin/items"
LINK_COMPLETE_PATH = "/_standin/link/complete"
WEBHOOKS_PATH = "/_standin/webhooks"
ROTATE_KEY_PATH = "/_standin/webhook_key/rotate"
REPAIR_PATH = re.compile(
    r"/_standin/items/(?P<item_id>[A-Za-z0-9]+)/(?P<action>repair|reset_login|fire_webhook)"
)
LINK_OUTCOMES: Final = frozenset({"success", "expired_public_token"})
_LINK_FIELDS: Final = frozenset({"link_token", "outcome", "link_session_id"})
_LINK_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_CREDENTIAL_FIELDS = {"client_id", "secret"}
_REDACTED_FIELDS = {"access_token"}
_FIELDS = {"status", "body", "headers", "delay", "close"}


def parse_script(raw: bytes) -> list[Scripted]:
    """The answers a control request asks for; ValueError names what is wrong."""
    doc: Any = json.loads(raw or b"[]")
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise ValueError("send a JSON list of {status, body, headers, delay, close}")
    answers = []
    for item in doc:
        if not isinstance(item, dict) or not set(item) <= _FIELDS:
            raise ValueError(f"each answer is an object with only the fields {sorted(_FIELDS)}")
        headers = item.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ValueError("headers must be an object of strings")
        answers.append(
            Scripted(
                status=int(item.get("status", 200)),
                body=item.get("body"),
                headers=headers,
                delay=float(item.get("delay", 0.0)),
                close=bool(item.get("close", False)),
            )
        )
    return answers


def parse_link_completion(raw: bytes) -> tuple[str, str, str | None]:
    """`(link_token, outcome, link_session_id)` of a completion request; ValueError says what
    is wrong."""
    doc: Any = json.loads(raw or b"null")
    if not isinstance(doc, dict) or not set(doc) <= _LINK_FIELDS:
        raise ValueError(f"send a JSON object with only the fields {sorted(_LINK_FIELDS)}")
    token = doc.get("link_token")
    if not isinstance(token, str) or not token or len(token) > 200:
        raise ValueError("link_token must be the link token Link was opened with")
    outcome = doc.get("outcome", "success")
    if outcome not in LINK_OUTCOMES:
        raise ValueError(f"outcome must be one of {sorted(LINK_OUTCOMES)}")
    session_id = doc.get("link_session_id")
    if session_id is not None and (
        not isinstance(session_id, str) or not _LINK_SESSION_ID.fullmatch(session_id)
    ):
        raise ValueError("link_session_id must be 1-100 letters, digits, '-' or '_'")
    return token, str(outcome), session_id


def parse_webhook_code(raw: bytes) -> str:
    """The `webhook_code` of a fire_webhook control request; ValueError says what is wrong."""
    doc: Any = json.loads(raw or b"null")
    if not isinstance(doc, dict) or set(doc) != {"webhook_code"}:
        raise ValueError('send a JSON object {"webhook_code": ...}')
    if not isinstance(doc["webhook_code"], str):
        raise ValueError("webhook_code must be a string")
    return doc["webhook_code"]


def _without_credentials(raw: bytes) -> Any:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if isinstance(body, dict):
        return {
            k: "<redacted>" if k in _REDACTED_FIELDS else v
            for k, v in body.items()
            if k not in _CREDENTIAL_FIELDS
        }
    return body


class _ControlHandler(_Handler):
    """The stand-in's handler, with the control path answered before anything else."""

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        repair = REPAIR_PATH.fullmatch(path)
        if path not in {CONTROL_PATH, LINK_COMPLETE_PATH, ROTATE_KEY_PATH} and not repair:
            super().do_POST()
            return
        media_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            self.close_connection = True  # its body is left unread
            self._reply(415, b"send the request as Content-Type: application/json")
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if repair:
            self._act_on_item(repair["item_id"], repair["action"], raw)
            return
        if path == ROTATE_KEY_PATH:
            kid = self.server.standin.rotate_key().kid
            self._reply(200, json.dumps({"key_id": kid}).encode(), "application/json")
            return
        if path == LINK_COMPLETE_PATH:
            self._complete_link(raw)
            return
        try:
            answers = parse_script(raw)
        except (ValueError, TypeError) as exc:
            self._reply(400, str(exc).encode())
            return
        self.server.standin.script(*answers)
        self._reply(204, b"")

    def _act_on_item(self, item_id: str, action: str, raw: bytes) -> None:
        standin = self.server.standin
        try:
            if action == "fire_webhook":
                standin.fire_item_webhook(item_id, parse_webhook_code(raw))
            elif action == "repair":
                standin.repair_item(item_id)
            else:
                standin.reset_login_item(item_id)
        except LookupError:
            self._reply(404, b"no such Item, or it was removed")
            return
        except (ValueError, TypeError) as exc:
            self._reply(400, str(exc).encode())
            return
        self._reply(204, b"")

    def _complete_link(self, raw: bytes) -> None:
        try:
            link_token, outcome, session_id = parse_link_completion(raw)
        except (ValueError, TypeError) as exc:
            self._reply(400, str(exc).encode())
            return
        try:
            completed = self.server.standin.complete_link(
                link_token,
                expired_public_token=outcome == "expired_public_token",
                link_session_id=session_id,
            )
        except LinkSessionRefused as refused:
            self._reply(refused.status, refused.message.encode())
            return
        self._reply(200, json.dumps(completed).encode(), "application/json")

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == ITEMS_PATH:
            listing = [asdict(item) for item in self.server.standin.items()]
            self._reply(200, json.dumps(listing).encode(), "application/json")
            return
        if self.path.split("?", 1)[0] == WEBHOOKS_PATH:
            sent = [asdict(delivery) for delivery in self.server.standin.deliveries()]
            self._reply(200, json.dumps(sent).encode(), "application/json")
            return
        if self.path.split("?", 1)[0] != REQUESTS_PATH:
            self._reply(404, b"unknown control path")
            return
        with self.server.lock:
            received = [(r["path"], r["body"]) for r in self.server.requests]
        listing = [{"path": path, "body": _without_credentials(body)} for path, body in received]
        self._reply(200, json.dumps(listing).encode(), "application/json")

    def do_DELETE(self) -> None:
        if self.path.split("?", 1)[0] != CONTROL_PATH:
            self._reply(404, b"unknown control path")
            return
        with self.server.lock:
            self.server.scripted.clear()
        self._reply(204, b"")

    def _reply(self, status: int, text: bytes, content_type: str = "text/plain") -> None:
        # A connection closed after this answer (its body left unread) says so: a keep-alive
        # client would otherwise send its next request into the closing socket.
        closing = "Connection: close\r\n" if self.close_connection else ""
        head = (
            f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(text)}\r\n"
            f"X-Stand-In: not-plaid\r\n{closing}\r\n"
        ).encode()
        self.wfile.write(head + text)  # one write: no Nagle delay


class ScriptablePlaidStandIn(PlaidStandIn):
    """`PlaidStandIn` whose answers can also be scripted over HTTP (see the module docstring)."""

    @property
    def control_url(self) -> str:
        return self.base_url + CONTROL_PATH

    def __enter__(self) -> ScriptablePlaidStandIn:
        super().__enter__()
        # Before any request can arrive: the listening socket is only known to this process.
        self.server.RequestHandlerClass = _ControlHandler
        self.server.handle_error = _quiet_when_client_left  # type: ignore[method-assign]
        return self


def _quiet_when_client_left(request: object, client_address: object) -> None:
    """A caller that went away (a worker killed mid-call) is no error worth a traceback."""
    if not isinstance(sys.exc_info()[1], ConnectionError):
        traceback.print_exc()
