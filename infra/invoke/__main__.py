"""`make invoke`: run a real Lambda handler once, locally, and print its response.

The function is the one API Gateway would invoke for the event: its `routeKey` (else its method
and path) is matched against the template's routes (`POST /items` is ItemExchangeFunction's
exchange_app.lambda_handler, `GET /items`, `DELETE /items/{item_id}` and
`POST /items/{item_id}/refresh` ItemsFunction's items_app.lambda_handler, `POST /webhooks/plaid`
WebhookReceiverFunction's webhook_app.lambda_handler, `POST /link-token` and anything unrouted,
such as a payload 1.0 event, LinkTokenFunction's app.lambda_handler), with that function's
Timeout as the time left.

Secrets Manager, DynamoDB, KMS and SQS (the webhook queue) are moto (on loopback). Plaid is the
loopback stand-in (which is not Plaid), unless PLAID_CLIENT_ID and PLAID_SECRET are set: then
the call goes to Plaid Sandbox for real. Every default (local_env.py, shared with `make serve`)
gives way to a variable already set. Items events are prepared first (items_setup.py: a fresh
public token, an Item stored for the event's user, a webhook signed with the stand-in's key),
each step said on stderr. A webhook the receiver accepts stays in the queue: nothing consumes
it here (make serve's poller runs the processor).

    make invoke                          # infra/events/ok.json
    make invoke EVENT=infra/events/platform-ios.json
    make invoke EVENT=items-exchange.json        # infra/events/items/, found by name
    PLAID_CLIENT_ID=... PLAID_SECRET=... make invoke    # real Plaid Sandbox
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from infra.doubles.lambda_runtime import LambdaContext
from infra.gateway.apigw_routes import RouteTable
from infra.gateway.cfn_template import (
    LINK_TOKEN_FUNCTION,
    FunctionRoute,
    function_routes,
    load_template,
)
from infra.invoke.items_setup import load_handler, needs_items, needs_setup, prepare
from infra.invoke.local_env import ROOT, LocalSetupError, local_backends, missing_items_message

EVENTS = ROOT / "infra/events"
# The Items routes' events: their own expected.json (infra/events/expected.json is the
# link-token function's, which the smoke test, conformance and soak invoke alone).
EVENT_FOLDERS = (EVENTS, EVENTS / "items")


def event_file(name: str) -> Path:
    """EVENT as given, or the file of that name in infra/events/ or infra/events/items/
    (`EVENT=ok.json`, `EVENT=items-list`)."""
    candidates = [Path(name)]
    for folder in EVENT_FOLDERS:
        candidates += [folder / name, folder / f"{name}.json"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = ", ".join(
        sorted(
            p.name
            for folder in EVENT_FOLDERS
            for p in folder.glob("*.json")
            if p.name != "expected.json"
        )
    )
    raise SystemExit(f"invoke: no event file {name!r}; infra/events/ has: {known}")


def route_of(event: Any, routes: RouteTable) -> FunctionRoute:
    """The route API Gateway would have invoked for this event: its routeKey, else its method
    and path (payload 2.0 or 1.0); an event of no route goes to the link-token function, as
    `sam local invoke LinkTokenFunction -e <event>` sends it."""
    if isinstance(event, dict):
        found = routes.route_for_key(str(event.get("routeKey")))
        if found is not None:
            return found
        http = (event.get("requestContext") or {}).get("http") or {}
        method = http.get("method") or event.get("httpMethod")
        path = event.get("rawPath") or event.get("path")
        if isinstance(method, str) and isinstance(path, str):
            match = routes.match(method, path)
            if match is not None:
                return match.route
    return next(route for route in routes.routes if route.function == LINK_TOKEN_FUNCTION)


def main() -> int:
    event_path = event_file(os.environ.get("EVENT") or "ok.json")
    try:
        event: Any = json.loads(event_path.read_text())
    except ValueError as exc:
        raise SystemExit(f"invoke: {event_path} is not JSON: {exc}") from None
    routes = RouteTable(function_routes(load_template()))
    route = route_of(event, routes)
    try:
        with local_backends(os.environ, route.function) as backends:
            say(
                f"Plaid: {backends.plaid}\nSecret: {backends.secrets}\nItems: {backends.items}\n"
                f"Queue: {backends.webhooks}\nEvent: {event_path}\n"
                f"Function: {route.function} ({route.handler}), route {route.route_key}"
            )
            if isinstance(event, dict) and needs_setup(route, event):
                if needs_items(route, event) and backends.items_missing:
                    raise LocalSetupError(missing_items_message(backends.items_missing))
                say("--- setup (before the event) ---")
                setup = prepare(event, route, routes, backends)
                event = setup.event
                for note in setup.notes:
                    say(f"invoke: {note}")
            say("--- handler logs and EMF metrics ---")
            handler = load_handler(route.handler)
            response = handler(event, LambdaContext(remaining_ms=route.timeout_seconds * 1000))
    except LocalSetupError as exc:
        say(f"invoke: cannot run {event_path.name}: {exc}")
        return 2
    sys.stdout.flush()
    say("--- response ---")
    shown = dict(response)
    with contextlib.suppress(ValueError, TypeError):
        shown["body"] = json.loads(response["body"])
    print(json.dumps(shown, indent=2))
    return 0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
