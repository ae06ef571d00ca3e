"""What `make invoke` does before an Items event, so that it meets the state it is about.

A run starts with an empty table (moto's) and a Plaid that knows no Item, so an event that
names an Item, or a public token, would only ever get a 404 or a 400. Before the invocation:

- an exchange (`POST /items` with a `public_token`) gets a fresh public token, created through
  the Plaid in use with `/sandbox/public_token/create` (the stand-in, or Sandbox with your keys)
  for the institution of the event's metadata;
- an event about the caller's Items (`GET /items`, `DELETE /items/{item_id}`,
  `POST /items/{item_id}/refresh`, and `POST /link-token` with an `item_id`: update mode) gets
  an Item of its user stored first, through the real exchange handler (ItemExchangeFunction's,
  with infra/events/items/items-exchange.json and a fresh public token), and that Item's id in
  place of the event's;
- a webhook (`POST /webhooks/plaid`) whose `plaid-verification` header is SIGN_MARKER is signed
  as Plaid signs it, with the stand-in's own key (which the receiver then looks up at the
  stand-in's `/webhook_verification_key/get`), over the event's body as it is; with Plaid
  itself no key of Plaid's is here, so the marker stays and the receiver refuses it (401). A
  webhook needs no Items table: the receiver only verifies and enqueues.

Only where the run owns that state: a table and a key of yours (AWS_ENDPOINT_URL_DYNAMODB,
real AWS...) are left alone and the event is sent as written. Each step says what it did
(`notes`); no token is shown.

    setup = prepare(event, route, routes, backends)   # the event to send, and the notes
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from infra.doubles.lambda_runtime import LambdaContext
from infra.gateway.apigw_routes import RouteTable
from infra.gateway.cfn_template import FunctionRoute
from infra.invoke.local_env import ROOT, Backends, LocalSetupError

EXCHANGE_ROUTE = "POST /items"
LINK_TOKEN_ROUTE = "POST /link-token"  # noqa: S105 - a route, not a credential
EXCHANGE_EVENT = ROOT / "infra/events/items/items-exchange.json"
DEFAULT_INSTITUTION = "ins_109508"
DEFAULT_PRODUCTS = ("transactions",)
WEBHOOK_ROUTE = "POST /webhooks/plaid"
# What an event's plaid-verification header says to have it signed at invoke time.
SIGN_MARKER = "SIGNED-AT-INVOKE-WITH-THE-STAND-IN-KEY"
VERIFICATION_HEADER = "plaid-verification"
# Routes about the caller's stored Items (update mode is POST /link-token with an item_id).
_READS_ITEMS = {"GET /items", "DELETE /items/{item_id}", "POST /items/{item_id}/refresh"}
# Routes whose function uses neither the Items table nor the key.
_NO_ITEMS = {LINK_TOKEN_ROUTE, WEBHOOK_ROUTE}

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class Setup:
    """The event to invoke, and what was done to it (for the person running make invoke)."""

    event: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def body_of(event: dict[str, Any]) -> Any:
    """The event's body as JSON (base64 undone), or None."""
    raw = event.get("body")
    if not isinstance(raw, str) or not raw:
        return None
    if event.get("isBase64Encoded") is True:
        raw = base64.b64decode(raw).decode()
    try:
        return json.loads(raw)
    except ValueError:
        return None


def with_body(event: dict[str, Any], body: Any) -> None:
    """Replace the event's body, encoded as it was."""
    text = json.dumps(body)
    if event.get("isBase64Encoded") is True:
        event["body"] = base64.b64encode(text.encode()).decode()
    else:
        event["body"] = text
    if "content-length" in (event.get("headers") or {}):
        event["headers"]["content-length"] = str(len(event["body"]))


def needs_items(route: FunctionRoute, event: dict[str, Any]) -> bool:
    """The invocation uses the Items table and key: every route but a new-Item link token and
    a webhook."""
    return route.route_key not in _NO_ITEMS or needs_an_item(route, event)


def needs_setup(route: FunctionRoute, event: dict[str, Any]) -> bool:
    """The event is prepared before it is sent: it needs the Items, or a signature."""
    return needs_items(route, event) or route.route_key == WEBHOOK_ROUTE


def needs_an_item(route: FunctionRoute, event: dict[str, Any]) -> bool:
    """The event is about the caller's stored Items: one must be there to see."""
    body = body_of(event)
    return route.route_key in _READS_ITEMS or (
        route.route_key == LINK_TOKEN_ROUTE and isinstance(body, dict) and "item_id" in body
    )


def prepare(
    event: dict[str, Any], route: FunctionRoute, routes: RouteTable, backends: Backends
) -> Setup:
    """The event to send and the notes of what was done (see the module docstring)."""
    setup = Setup(copy.deepcopy(event))
    if route.route_key == WEBHOOK_ROUTE:
        _sign_webhook(setup, backends)
        return setup
    body = body_of(setup.event)
    if route.route_key == EXCHANGE_ROUTE and isinstance(body, dict) and "public_token" in body:
        if backends.public_token is None:
            setup.notes.append(
                "the event's public_token is sent as written: no Sandbox keys are known to"
                " create a fresh one (Plaid will most likely refuse it)"
            )
        else:
            institution = _institution_of(body)
            body["public_token"] = backends.public_token(institution, _products())
            with_body(setup.event, body)
            setup.notes.append(
                f"a fresh public token for {institution}, from {_where(backends)}'s"
                " /sandbox/public_token/create, replaces the event's public_token"
            )
    if needs_an_item(route, setup.event):
        if not backends.items_local or backends.public_token is None:
            setup.notes.append(
                "the event's item_id is sent as written: the Items are not this run's own"
                " (a table or key of yours, or no Sandbox keys known), so none was stored first"
            )
        else:
            item_id = store_item(setup.event, routes, backends.public_token)
            _name_item(setup.event, route, item_id)
            setup.notes.append(
                f"stored an Item of the event's user first (POST /items through"
                f" {_exchange_route(routes).function}, 201): its item_id {item_id} replaces the"
                " event's"
            )
    return setup


def store_item(
    event: dict[str, Any], routes: RouteTable, public_token: Callable[[str, Sequence[str]], str]
) -> str:
    """Exchange a fresh public token for the event's user through the real exchange handler;
    the new Item's id."""
    exchange = json.loads(EXCHANGE_EVENT.read_text())
    body = body_of(exchange)
    body["public_token"] = public_token(_institution_of(body), _products())
    with_body(exchange, body)
    context = event.get("requestContext") or {}
    exchange["requestContext"]["authorizer"] = copy.deepcopy(context.get("authorizer") or {})
    exchange["requestContext"]["requestId"] = f"invoke-setup-{uuid.uuid4()}"
    route = _exchange_route(routes)
    answer = load_handler(route.handler)(exchange, LambdaContext(route.timeout_seconds * 1000))
    created = body_of(answer) if isinstance(answer, dict) else None
    if answer.get("statusCode") != 201 or not isinstance(created, dict):
        code = created.get("code") if isinstance(created, dict) else None
        raise LocalSetupError(
            f"storing an Item first failed: POST /items answered {answer.get('statusCode')}"
            f" {code or ''} (its log lines are above)"
        )
    return str(created["item_id"])


def _sign_webhook(setup: Setup, backends: Backends) -> None:
    """Sign the webhook's body with the stand-in's key where the event asks for it."""
    headers = setup.event.get("headers") or {}
    if headers.get(VERIFICATION_HEADER) != SIGN_MARKER:
        setup.notes.append(
            "the webhook is sent with its own plaid-verification header, as written"
            if VERIFICATION_HEADER in headers
            else "the webhook is sent unsigned, as written (no plaid-verification header)"
        )
        return
    if backends.standin is None:
        setup.notes.append(
            "the webhook is NOT signed: only the stand-in's key is here, not Plaid's, so the"
            " receiver will refuse it (401 WEBHOOK_UNVERIFIED)"
        )
        return
    raw = setup.event.get("body") or ""
    body = base64.b64decode(raw) if setup.event.get("isBase64Encoded") is True else raw.encode()
    key = backends.standin.signing_key
    headers[VERIFICATION_HEADER] = key.sign(body)
    setup.notes.append(
        f"signed the webhook's body as Plaid does, with the stand-in's key {key.kid} (ES256):"
        " the receiver looks that key up at the stand-in; a webhook it accepts stays in the"
        " queue (make serve's poller would give it to the processor)"
    )


def load_handler(handler: str) -> Handler:
    """The function a template Handler ("module.function") names, imported as Lambda does."""
    module_name, _, function_name = handler.rpartition(".")
    function: Handler = getattr(importlib.import_module(module_name), function_name)
    return function


def _name_item(event: dict[str, Any], route: FunctionRoute, item_id: str) -> None:
    """Put `item_id` wherever the event names its Item: path or body."""
    if "{item_id}" in route.path:
        event["pathParameters"] = {**(event.get("pathParameters") or {}), "item_id": item_id}
        path = route.path.replace("{item_id}", quote(item_id, safe=""))
        event["rawPath"] = path
        event.setdefault("requestContext", {}).setdefault("http", {})["path"] = path
        return
    body = body_of(event)
    if isinstance(body, dict):
        body["item_id"] = item_id
        with_body(event, body)


def _exchange_route(routes: RouteTable) -> FunctionRoute:
    route = routes.route_for_key(EXCHANGE_ROUTE)
    if route is None:
        raise LocalSetupError(f"template.yaml has no {EXCHANGE_ROUTE} route to store an Item")
    return route


def _institution_of(body: dict[str, Any]) -> str:
    metadata = body.get("metadata")
    institution = metadata.get("institution") if isinstance(metadata, dict) else None
    if isinstance(institution, dict):
        found = institution.get("institution_id", institution.get("id"))
        if isinstance(found, str) and found:
            return found
    return DEFAULT_INSTITUTION


def _products() -> tuple[str, ...]:
    """The first configured product: what a new Item is linked with."""
    configured = [p for p in (os.environ.get("PLAID_PRODUCTS") or "").split(",") if p]
    return tuple(configured[:1]) or DEFAULT_PRODUCTS


def _where(backends: Backends) -> str:
    if backends.standin is not None:
        return "the stand-in"
    return os.environ.get("PLAID_BASE_URL") or "Plaid Sandbox"
