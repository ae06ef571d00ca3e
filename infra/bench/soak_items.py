"""`make soak-items`: one warm container per Items function, the whole life of an Item over and
over, for many users, with DynamoDB, KMS and Plaid faults.

    .venv/bin/python -m infra.bench.soak_items              # 1,500 cycles (make soak-items)
    .venv/bin/python -m infra.bench.soak_items -n 200       # the short run .ci/run does

The real entry points run in this process, each with its own container, kept warm as Lambda
keeps one: `exchange_app.lambda_handler` (ItemExchangeFunction), `items_app.lambda_handler`
(ItemsFunction) and `app.lambda_handler` (LinkTokenFunction, update mode), their containers
built at import by `build_items_container` and `build_container` from the world's environment,
each invoked with its function's timeout (template.yaml). The world (infra/doubles/items_world.py:
moto with the secret, the table and the key, the DynamoDB/KMS fault front, the Plaid stand-in
over TLS with a CA made for the run) runs in a child process (infra/bench/items_backends.py), so
that what moto and the stand-in keep does not count as the containers' memory. Every
`--sweep-every` cycles the table loses what DynamoDB's TTL deletes in time (tombstones and
exchange records, all of finished cycles): moto's Query reads the whole table where DynamoDB
reads one partition, so without it every call would cost more the longer the run.

One cycle, for user `soak-user-<cycle % users>`, at one of Sandbox's test institutions:

    a public token at the stand-in (/sandbox/public_token/create)
    POST /items                      201; Plaid exchanges once
    the same POST again              201, the same Item; Plaid is not called
    POST /items, a second token      409 DUPLICATE_ITEM (same institution and masks); not called
    GET /items                       200, that Item
    POST /link-token {item_id}       200, an update-mode link token
    DELETE /items/{item_id}          204; /item/remove at Plaid
    DELETE again                     204; Plaid is not called
    GET /items                       200, no Items

Every answer is checked: the status and problem code, the body (the Item's id, institution,
accounts and health), one summary log line of the route's, the Plaid calls it made, path by
path. Every `--fault-every`-th cycle gets one fault of FAULTS, in turn: DynamoDB and KMS
throttled twice (503 STORAGE_UNAVAILABLE, then the app's retry) or once (absorbed by the
client's second attempt) at each step that calls them, a dropped connection, and Plaid faults:
a 500 and a dropped connection on the exchange (not retried: Plaid may have acted), each
before and after Plaid acted, a 429 (retried: Plaid did not act), a 500 on /item/remove
(retried). Each fault's row says what the service does (answers, Plaid calls, the log line's
`orphan`), and exactly that is expected. Backoff sleeps are
skipped (each container's Plaid, DynamoDB and KMS clients are rebuilt with a sleep that returns
at once): the fault suites measure time; this measures what a long life does to a container.

It fails (exit 1) on any of:
- an unexpected answer: another status, code, body, Plaid call, or a missing summary line;
- memory growth: RSS at the end minus RSS after the warm-up over `--max-growth-mib`;
- more Plaid connections than one per function container plus one per fault that breaks one;
- more secret reads than the TTL allows: 3 x (elapsed / ttl + 1);
- an access token (`access-sandbox-`) or the Plaid secret in any output line (this process's
  and the backends'), or in any response;
- an Item left at the stand-in (exchanged, not removed) but those the run meant to keep: the
  ones Plaid made behind a 500 or a lost answer, which the service logs as orphans but cannot
  remove (it never got their access tokens).

`--inject` makes a run fail on purpose in one named way, for this tool's own test
(tests/e2e/test_soak_items.py): the checks must catch each.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from infra.bench.items_backends import BackendOptions, ItemsBackendsProcess, LineWatch
from infra.bench.soak import rss_mib_of
from infra.doubles.aws_faults import AwsAction, AwsDrop, AwsError, AwsPass
from infra.doubles.items_world import event, exchange_body
from infra.doubles.lambda_runtime import LambdaContext
from infra.doubles.plaid_standin import Scripted, plaid_error
from infra.gateway.cfn_template import function_timeout_seconds, load_template

ROOT = Path(__file__).resolve().parents[2]

CLIENT_ID = "soak-items-client-id"
SECRET = "soak-items-plaid-secret-never-in-output-5c1a"  # noqa: S105 - a loopback-only fake key
HMAC_KEY = "soak-items-hmac-key-" + "h" * 24
ACCESS_TOKEN_MARK = "access-sandbox-"  # noqa: S105 - what every Sandbox access token starts with
FORBIDDEN = (ACCESS_TOKEN_MARK, SECRET)
FUNCTIONS = ("ItemExchangeFunction", "ItemsFunction", "LinkTokenFunction")

EXCHANGE, REMOVE, LINK = "/item/public_token/exchange", "/item/remove", "/link/token/create"
QUERY, PUT, GET, UPDATE = (
    "DynamoDB_20120810.Query",
    "DynamoDB_20120810.PutItem",
    "DynamoDB_20120810.GetItem",
    "DynamoDB_20120810.UpdateItem",
)
ENCRYPT, DECRYPT = "TrentService.Encrypt", "TrentService.Decrypt"
THROTTLED = AwsError("ThrottlingException")
# Sandbox's non-OAuth test institutions (the stand-in names them as Sandbox does).
INSTITUTIONS: Final = (
    ("ins_109508", "First Platypus Bank"),
    ("ins_109509", "First Gingham Credit Union"),
    ("ins_109510", "Tattersall Federal Credit Union"),
    ("ins_109511", "Tartan Bank"),
    ("ins_109512", "Houndstooth Bank"),
)
# The summary lines, by route: (on success, on failure).
SUMMARIES: Final = {
    "POST /items": ("item_exchanged", "item_exchange_failed"),
    "GET /items": ("items_listed", "items_list_failed"),
    "DELETE /items/{item_id}": ("item_removed", "item_remove_failed"),
    "POST /link-token": ("link_token_created", "link_token_failed"),
}
ANY: Final = object()  # a log field that must be there, whatever its value
ABSENT: Final = object()  # a log field that must not be there
INJECTIONS: Final = (
    "expectation",
    "unmet-fault",
    "leak",
    "left-item",
    "connections",
    "secret-reads",
    "rss",
)


@dataclass(frozen=True)
class Want:
    """One answer as the service must give it: status, problem code, the Plaid calls it made
    (paths, in order), fields its summary line carries; `fresh_token`: the request is sent with
    a new public token (the app links again)."""

    status: int
    code: str | None = None
    plaid: tuple[str, ...] = ()
    log: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    fresh_token: bool = False


# A cycle's steps and their answers without a fault.
STEPS: Final = {
    "exchange": Want(201, plaid=(EXCHANGE,)),
    "replay": Want(201),
    "duplicate": Want(409, "DUPLICATE_ITEM"),
    "list": Want(200),
    "update": Want(200, plaid=(LINK,)),
    "remove": Want(204, plaid=(REMOVE,)),
    "remove again": Want(204),
    "list empty": Want(200),
}


@dataclass(frozen=True)
class Fault:
    """A fault armed just before `step`: actions for the DynamoDB/KMS front (by X-Amz-Target)
    and answers for the stand-in; `wants` replaces steps' answers: the step's request is sent
    again for each (the app retrying), the last one carrying the cycle on. `kept`: an Item stays
    at Plaid by design; `breaks_connection`: one kept-alive Plaid connection is lost."""

    name: str
    step: str
    wants: Mapping[str, tuple[Want, ...]]
    aws: tuple[tuple[str, tuple[AwsAction, ...]], ...] = ()
    plaid: tuple[Scripted, ...] = ()
    plaid_acts_then: str | None = None  # "500" or "drop": Plaid acts, then answers so
    kept: bool = False
    breaks_connection: bool = False


def _storage(*plaid: str, **log: object) -> Want:
    return Want(503, "STORAGE_UNAVAILABLE", plaid, MappingProxyType(log))


# What the service does once the exchange failed after Plaid made the Item: it removed the Item
# at Plaid ("orphan": "removed") and released the claim; the app's retry with the same public
# token reaches Plaid, which refuses it (exchanged already); the app links again.
_ORPHAN_REMOVED = (
    _storage(EXCHANGE, REMOVE, orphan="removed"),
    Want(400, "INVALID_PUBLIC_TOKEN", (EXCHANGE,)),
    Want(201, plaid=(EXCHANGE,), fresh_token=True),
)
_PLAID_500 = plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR", "an internal error occurred")

FAULTS: Final = (
    Fault(
        "Query throttled twice: GET /items",
        "list",
        {"list": (_storage(), Want(200))},
        aws=((QUERY, (THROTTLED, THROTTLED)),),
    ),
    Fault("Query throttled once: GET /items", "list", {}, aws=((QUERY, (THROTTLED,)),)),
    Fault(
        "Encrypt throttled twice: POST /items",
        "exchange",
        {"exchange": _ORPHAN_REMOVED},
        aws=((ENCRYPT, (THROTTLED, THROTTLED)),),
    ),
    Fault("Encrypt throttled once: POST /items", "exchange", {}, aws=((ENCRYPT, (THROTTLED,)),)),
    Fault(
        "Item's PutItem throttled twice: POST /items",
        "exchange",
        {"exchange": _ORPHAN_REMOVED},
        aws=((PUT, (AwsPass(), THROTTLED, THROTTLED)),),  # the claim passes, the Item does not
    ),
    Fault(
        "claim's PutItem throttled twice: POST /items",
        "exchange",
        {"exchange": (_storage(), Want(201, plaid=(EXCHANGE,)))},  # before Plaid: same token
        aws=((PUT, (THROTTLED, THROTTLED)),),
    ),
    Fault(
        "claim's PutItem throttled once: POST /items",
        "exchange",
        {},
        aws=((PUT, (THROTTLED,)),),
    ),
    Fault(
        "duplicate check's Query throttled twice: POST /items",
        "exchange",
        {"exchange": (_storage(), Want(201, plaid=(EXCHANGE,)))},
        aws=((QUERY, (THROTTLED, THROTTLED)),),
    ),
    Fault(
        # The Item is stored, the claim stays IN_PROGRESS (locked for 60 s): the replay is 409.
        "exchange record's completion throttled twice: POST /items",
        "exchange",
        {
            "exchange": (Want(201, plaid=(EXCHANGE,), log={"exchange_record": ANY}),),
            "replay": (Want(409, "EXCHANGE_IN_PROGRESS"),),
        },
        aws=((UPDATE, (THROTTLED, THROTTLED)),),
    ),
    Fault(
        "GetItem throttled twice: POST /link-token (update mode)",
        "update",
        {"update": (_storage(), Want(200, plaid=(LINK,)))},
        aws=((GET, (THROTTLED, THROTTLED)),),
    ),
    Fault(
        "GetItem throttled once: POST /link-token (update mode)",
        "update",
        {},
        aws=((GET, (THROTTLED,)),),
    ),
    Fault(
        "Decrypt throttled twice: DELETE /items/{item_id}",
        "remove",
        {"remove": (_storage(), Want(204, plaid=(REMOVE,)))},
        aws=((DECRYPT, (THROTTLED, THROTTLED)),),
    ),
    Fault(
        "Decrypt throttled once: DELETE /items/{item_id}",
        "remove",
        {},
        aws=((DECRYPT, (THROTTLED,)),),
    ),
    Fault(
        # Removed at Plaid, not tombstoned: the retry removes again, Plaid says ITEM_NOT_FOUND.
        "tombstone's UpdateItem throttled twice: DELETE /items/{item_id}",
        "remove",
        {
            "remove": (
                _storage(REMOVE),
                Want(204, plaid=(REMOVE,), log={"plaid": "already removed at Plaid"}),
            )
        },
        aws=((UPDATE, (THROTTLED, THROTTLED)),),
    ),
    Fault(
        "DynamoDB connection dropped twice: GET /items",
        "list",
        {"list": (_storage(), Want(200))},
        aws=((QUERY, (AwsDrop(), AwsDrop())),),
    ),
    Fault(
        # A 5xx: Plaid may have made the Item before failing, so the outcome is unknown (the
        # claim marked); the app's retry learns it from Plaid: exchanged now, nothing was made.
        "Plaid 500 on the exchange, nothing done: not retried",
        "exchange",
        {
            "exchange": (
                Want(503, "UPSTREAM_UNAVAILABLE", (EXCHANGE,), {"orphan": "unknown"}),
                Want(201, plaid=(EXCHANGE,)),  # the app's retry takes the marked claim over
            )
        },
        plaid=(_PLAID_500,),
    ),
    Fault(
        # Plaid made the Item and answered 500: the outcome is unknown ("orphan": "unknown");
        # the app's retry is refused by Plaid (exchanged already), which proves the Item was
        # made: "orphan": "left" (it alarms), and the app links again. The Item stays.
        "Plaid 500 on the exchange after acting: not retried, the Item stays at Plaid",
        "exchange",
        {
            "exchange": (
                Want(503, "UPSTREAM_UNAVAILABLE", (EXCHANGE,), {"orphan": "unknown"}),
                Want(400, "INVALID_PUBLIC_TOKEN", (EXCHANGE,), {"orphan": "left"}),
                Want(201, plaid=(EXCHANGE,), fresh_token=True),
            )
        },
        plaid_acts_then="500",
        kept=True,
    ),
    Fault(
        # The request reached Plaid, no answer came back: "orphan": "unknown", the claim marked;
        # the retry's exchange succeeds, so nothing had been made.
        "Plaid connection dropped on the exchange, nothing done: not retried",
        "exchange",
        {
            "exchange": (
                Want(503, "UPSTREAM_UNAVAILABLE", (EXCHANGE,), {"orphan": "unknown"}),
                Want(201, plaid=(EXCHANGE,)),
            )
        },
        plaid=(Scripted(close=True),),
        breaks_connection=True,
    ),
    Fault(
        # The same after Plaid made the Item: the retry's INVALID_PUBLIC_TOKEN proves it, logged
        # as "orphan": "left" (OrphanLeft alarms); the app links again. The Item stays.
        "Plaid connection dropped on the exchange after acting: the retry logs the orphan left",
        "exchange",
        {
            "exchange": (
                Want(503, "UPSTREAM_UNAVAILABLE", (EXCHANGE,), {"orphan": "unknown"}),
                Want(400, "INVALID_PUBLIC_TOKEN", (EXCHANGE,), {"orphan": "left"}),
                Want(201, plaid=(EXCHANGE,), fresh_token=True),
            )
        },
        plaid_acts_then="drop",
        kept=True,
        breaks_connection=True,
    ),
    Fault(
        "Plaid 429 on the exchange: retried (Plaid did not act)",
        "exchange",
        {"exchange": (Want(201, plaid=(EXCHANGE, EXCHANGE)),)},
        plaid=(plaid_error(429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT_EXCEEDED", "slow down"),),
    ),
    Fault(
        "Plaid 500 on /item/remove: retried",
        "remove",
        {"remove": (Want(204, plaid=(REMOVE, REMOVE)),)},
        plaid=(_PLAID_500,),
    ),
)


class OutputSink(LineWatch):
    """This process's output (the handlers' log lines and EMF documents): counted and
    searched, only the last summary line kept (keeping them all would be the growth this run
    looks for)."""

    def __init__(self, forbidden: tuple[str, ...]) -> None:
        super().__init__(forbidden)
        self.not_json = 0
        self.summaries = 0
        self.last: dict[str, Any] = {}

    def line(self, line: str) -> None:
        super().line(line)
        try:
            doc = json.loads(line)
        except ValueError:
            self.not_json += 1
            return
        if isinstance(doc, dict) and doc.get("message") in _SUMMARY_MESSAGES:
            self.summaries += 1
            self.last = doc


_SUMMARY_MESSAGES: Final = frozenset(m for pair in SUMMARIES.values() for m in pair)


@dataclass
class Tally:
    cycles: int = 0
    invocations: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    faults: int = 0
    broken_connections: int = 0
    kept_expected: int = 0
    swept: int = 0
    response_leaks: int = 0


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class Functions:
    """The three entry points, imported once the world's environment is set, with their
    contexts; backoff sleeps skipped."""

    def __init__(self, env: Mapping[str, str]) -> None:
        import app
        import exchange_app
        import items_app

        self.handlers: dict[str, Handler] = {
            "POST /items": exchange_app.lambda_handler,
            "GET /items": items_app.lambda_handler,
            "DELETE /items/{item_id}": items_app.lambda_handler,
            "POST /link-token": app.lambda_handler,
        }
        self.containers: dict[str, Any] = {
            "ItemExchangeFunction": exchange_app.CONTAINER,
            "ItemsFunction": items_app.CONTAINER,
            "LinkTokenFunction": app.CONTAINER,
        }
        template = load_template()
        self.timeout_ms = {
            name: function_timeout_seconds(template, name) * 1000 for name in FUNCTIONS
        }
        self.function_of = {
            "POST /items": "ItemExchangeFunction",
            "GET /items": "ItemsFunction",
            "DELETE /items/{item_id}": "ItemsFunction",
            "POST /link-token": "LinkTokenFunction",
        }
        for name, container in self.containers.items():
            assert container.service is not None, f"{name}: {container.config_error}"
        _without_backoff(self.containers, env)

    def invoke(self, route: str, doc: dict[str, Any]) -> dict[str, Any]:
        function = self.function_of[route]
        context = LambdaContext(remaining_ms=self.timeout_ms[function], function_name=function)
        return self.handlers[route](doc, context)


def _no_sleep(_seconds: float) -> None:
    pass


def _without_backoff(containers: Mapping[str, Any], env: Mapping[str, str]) -> None:
    """Each service's Plaid, DynamoDB and KMS clients as built, but with a sleep that returns
    at once (the link-token function's Item access too, which is otherwise built at the
    first update-mode request)."""
    from linktoken.aws_clients import DYNAMODB, KMS, ServiceSpec
    from linktoken.aws_credentials import lambda_credentials
    from linktoken.aws_json import AwsJsonClient
    from linktoken.observability import aws_span
    from linktoken.plaid_client import PlaidClient, RetryPolicy
    from plaiditems.access import ItemAccess
    from plaiditems.store import ItemStore
    from plaiditems.vault import TokenVault

    credentials = lambda_credentials(env)
    assert credentials is not None, "the world's environment names Lambda-style credentials"

    def client(spec: ServiceSpec) -> AwsJsonClient:
        return AwsJsonClient(
            spec.signing_name,
            spec.target_prefix,
            spec.json_version,
            env["AWS_DEFAULT_REGION"],
            env[f"AWS_ENDPOINT_URL_{spec.endpoint_variable}"],
            credentials,
            sleep=_no_sleep,
        )

    table, key_id = env["ITEMS_TABLE"], env["ITEMS_KEY_ID"]
    for name, container in containers.items():
        service = container.service
        service.plaid = PlaidClient(service.config.base_url, RetryPolicy(), sleep=_no_sleep)
        store = ItemStore(client(DYNAMODB), table, span=aws_span)
        vault = TokenVault(client(KMS), key_id, span=aws_span)
        if name == "LinkTokenFunction":
            service.open_item = ItemAccess(store, vault)
        else:
            service.store, service.vault = store, vault


def _accounts(number: int) -> tuple[tuple[str, str], list[dict[str, str]]]:
    """Two accounts, with masks of the cycle's own, as Link's onSuccess metadata lists them."""
    masks = (f"{number % 10_000:04d}", f"{(number + 1) % 10_000:04d}")
    accounts = [
        {"id": f"acc-{number}-{i}", "name": f"Plaid {kind}", "mask": mask,
         "type": "depository", "subtype": kind}
        for i, (mask, kind) in enumerate(zip(masks, ("checking", "savings"), strict=True))
    ]  # fmt: skip
    return masks, accounts


class Soak:
    """The cycles, their checks, the tally."""

    def __init__(
        self,
        args: argparse.Namespace,
        backends: ItemsBackendsProcess,
        functions: Functions,
        sink: OutputSink,
    ) -> None:
        self.args = args
        self.backends = backends
        self.functions = functions
        self.sink = sink
        self.tally = Tally()
        self.injected = set(args.inject or ())

    # --- one request -------------------------------------------------------------------------
    def send(
        self, label: str, route: str, want: Want, doc: dict[str, Any]
    ) -> tuple[int, Any] | None:
        """Invoke, check against `want`; the status and body when it is as expected."""
        request_id = doc["requestContext"]["requestId"] = f"soak-{uuid.uuid4().hex[:12]}"
        summaries = self.sink.summaries
        answer = self.functions.invoke(route, doc)
        self.tally.invocations += 1
        paths = tuple(self.backends.plaid_paths())
        raw = answer.get("body") or ""
        self.tally.response_leaks += any(word in raw for word in FORBIDDEN)
        body = json.loads(raw) if raw else None
        status = answer.get("statusCode")
        code = body.get("code") if isinstance(body, dict) and status and status >= 400 else None
        problems = []
        if (status, code) != (want.status, want.code):
            problems.append(
                f"status {status} {code or ''}, expected {want.status} {want.code or ''}"
            )
        if paths != want.plaid:
            problems.append(f"Plaid calls {list(paths)}, expected {list(want.plaid)}")
        problems += self._summary_problems(route, status, summaries, want)
        if isinstance(body, dict) and body.get("request_id") != request_id:
            problems.append(f"request_id {body.get('request_id')!r}, expected {request_id!r}")
        if status == 201 and isinstance(body, dict):
            location = (answer.get("headers") or {}).get("Location")
            if location != f"/items/{body.get('item_id')}":
                problems.append(f"Location {location!r} does not name the Item")
        if problems:
            self.tally.unexpected.append(f"{label}: {'; '.join(problems)}")
            return None
        return want.status, body

    def _summary_problems(self, route: str, status: object, before: int, want: Want) -> list[str]:
        if self.sink.summaries != before + 1:
            return [f"{self.sink.summaries - before} summary lines, expected 1"]
        done, failed = SUMMARIES[route]
        message = self.sink.last.get("message")
        expected = done if isinstance(status, int) and status < 400 else failed
        problems = [] if message == expected else [f"summary {message}, expected {expected}"]
        for key, value in want.log.items():
            if value is ABSENT:
                if key in self.sink.last:
                    problems.append(f"summary line's {key}: {self.sink.last[key]!r}, expected none")
            elif key not in self.sink.last or (value is not ANY and self.sink.last[key] != value):
                problems.append(
                    f"summary line's {key}: {self.sink.last.get(key)!r}, expected {value!r}"
                )
        return problems

    def _fail(self, label: str, what: str) -> None:
        self.tally.unexpected.append(f"{label}: {what}")

    # --- one cycle ---------------------------------------------------------------------------
    def cycle(self, number: int, fault: Fault | None) -> None:
        label = f"#{number} {fault.name if fault else 'no fault'}"
        wants = fault.wants if fault else {}
        sub = f"soak-user-{number % self.args.users}"
        institution_id, bank = INSTITUTIONS[number % len(INSTITUTIONS)]
        institution = {"institution_id": institution_id, "name": bank}
        masks, accounts = _accounts(number)
        token = self.backends.public_token(institution_id)

        def step(name: str, route: str, build: Callable[[], dict[str, Any]]) -> Any:
            """The step's requests (one, or the app's retries after a fault); the last answer's
            body, or None when an answer was not as expected."""
            self._arm(fault, name)
            nonlocal token
            result: tuple[int, Any] | None = None
            for attempt, want in enumerate(wants.get(name, (STEPS[name],))):
                if want.fresh_token:
                    token = self.backends.public_token(institution_id)
                result = self.send(f"{label}: {name} ({attempt + 1})", route, want, build())
                if result is None:
                    break
            if fault is not None and fault.step == name:
                unmet = {k: n for k, n in self.backends.unmet().items() if n}
                if unmet:
                    self._fail(label, f"the fault was not met: {unmet} scripted actions unused")
            return result[1] if result else None

        def post_items(public_token: Callable[[], str]) -> Callable[[], dict[str, Any]]:
            return lambda: event(
                "POST", "/items", sub, exchange_body(public_token(), institution, accounts)
            )

        def items_event(method: str, item_id: str | None = None) -> dict[str, Any]:
            path = f"/items/{item_id}" if item_id else "/items"
            return event(method, path, sub, item_id=item_id)

        created = step("exchange", "POST /items", post_items(lambda: token))
        item_id = created.get("item_id") if isinstance(created, dict) else None
        if not isinstance(item_id, str) or not self._created_as_sent(
            label, created, institution, masks
        ):
            return  # nothing to carry on with (the run fails; an Item left at Plaid shows too)
        replayed = step("replay", "POST /items", post_items(lambda: token))
        if wants.get("replay", (STEPS["replay"],))[-1].status == 201 and replayed is not None:
            self._same_item(label, created, replayed)
        duplicate = self.backends.public_token(institution_id)
        refused = step("duplicate", "POST /items", post_items(lambda: duplicate))
        if refused is not None and refused.get("item_id") != item_id:
            self._fail(label, f"the duplicate's 409 names {refused.get('item_id')!r}, not the Item")
        if "expectation" in self.injected and number == 0:
            self.send(f"{label}: injected", "GET /items", Want(418), items_event("GET"))
        listed = step("list", "GET /items", lambda: items_event("GET"))
        if listed is not None and [i.get("item_id") for i in listed.get("items", [])] != [item_id]:
            self._fail(label, "GET /items does not list exactly the Item")
        update = {"item_id": item_id}
        made = step("update", "POST /link-token", lambda: event("POST", "/link-token", sub, update))
        if made is not None and not str(made.get("link_token", "")).startswith("link-sandbox-"):
            self._fail(label, "update mode answered no link token")
        step("remove", "DELETE /items/{item_id}", lambda: items_event("DELETE", item_id))
        step("remove again", "DELETE /items/{item_id}", lambda: items_event("DELETE", item_id))
        emptied = step("list empty", "GET /items", lambda: items_event("GET"))
        if emptied is not None and emptied.get("items") != []:
            self._fail(label, "GET /items still lists Items after the DELETE")

    def _arm(self, fault: Fault | None, step: str) -> None:
        """Script the fault's actions just before the step it strikes."""
        if fault is None or fault.step != step:
            return
        for target, actions in fault.aws:
            self.backends.aws_script(target, actions)
        if "unmet-fault" in self.injected:  # an operation the service never calls
            self.backends.aws_script("TrentService.GenerateDataKey", (THROTTLED,))
        if fault.plaid:
            self.backends.plaid_script(fault.plaid)
        if fault.plaid_acts_then:
            self.backends.fail_after_acting(EXCHANGE, fault.plaid_acts_then)

    def _created_as_sent(
        self, label: str, body: dict[str, Any], institution: dict[str, str], masks: tuple[str, str]
    ) -> bool:
        shown = [a.get("mask") for a in body.get("accounts", [])]
        if body.get("institution") != institution or shown != list(masks):
            self._fail(label, "the 201 body's institution or accounts differ from those sent")
            return False
        if body.get("health") != "healthy":
            self._fail(label, f"a new Item's health is {body.get('health')!r}")
            return False
        return True

    def _same_item(self, label: str, first: dict[str, Any], again: dict[str, Any]) -> None:
        keys = ("item_id", "institution", "accounts", "health")
        if any(first.get(k) != again.get(k) for k in keys):
            self._fail(label, "the replayed POST /items answered another Item")

    # --- the run -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        args, tally = self.args, self.tally
        hoard: list[bytes] = []
        started = time.monotonic()
        rss_start = backends_start = 0.0
        for number in range(args.cycles):
            if number == args.warmup:
                rss_start = rss_mib_of()
                backends_start = self.backends.counters()["rss_kib"] / 1024
            fault = None
            if number % args.fault_every == args.fault_every - 1:
                fault = FAULTS[tally.faults % len(FAULTS)]
                tally.faults += 1
                tally.broken_connections += fault.breaks_connection
                tally.kept_expected += fault.kept
            kind = f"fault: {fault.name}" if fault else "no fault"
            tally.by_kind[kind] = tally.by_kind.get(kind, 0) + 1
            self.cycle(number, fault)
            tally.cycles += 1
            if number % args.sweep_every == args.sweep_every - 1:
                tally.swept += self.backends.sweep()
            self._inject_during(number, hoard)
        self._inject_after()
        elapsed = time.monotonic() - started
        rss_end = rss_mib_of()
        counters = self.backends.counters()
        items = self.backends.items()
        left = sorted(set(items["live"]) - set(items["kept"]))
        bound_reads = len(FUNCTIONS) * (math.floor(elapsed / args.ttl) + 1)
        return {
            "cycles": tally.cycles,
            "invocations": tally.invocations,
            "users": args.users,
            "by_kind": tally.by_kind,
            "faults_injected": tally.faults,
            "unexpected": tally.unexpected,
            "seconds": round(elapsed, 1),
            "invocations_per_second": round(tally.invocations / elapsed),
            "rss_after_warmup_mib": round(rss_start, 1),
            "rss_end_mib": round(rss_end, 1),
            "rss_growth_mib": round(rss_end - rss_start, 1),
            # Not the containers': moto's table and the stand-in's Items, in their own process.
            "backends_rss_after_warmup_mib": round(backends_start, 1),
            "backends_rss_end_mib": round(counters["rss_kib"] / 1024, 1),
            "plaid_connections": counters["plaid_connections"],
            "plaid_connections_allowed": len(FUNCTIONS) + tally.broken_connections,
            "plaid_requests": counters["plaid_requests"],
            "secret_reads": counters["secret_reads"],
            "secret_reads_allowed": bound_reads,
            "records_swept": tally.swept,
            "items_left_at_plaid": left,
            "items_kept_at_plaid": len(items["kept"]),
            "items_kept_expected": tally.kept_expected,
            "output_lines": self.sink.lines,
            "summary_lines": self.sink.summaries,
            "non_json_lines": self.sink.not_json,
            "secret_leaks": self.sink.leaks,
            "response_leaks": tally.response_leaks,
        }

    def _inject_during(self, number: int, hoard: list[bytes]) -> None:
        if "connections" in self.injected:  # a container that loses its connection each cycle
            self.functions.containers["ItemsFunction"].service.plaid.reset()
        if "secret-reads" in self.injected:  # one that forgets its cached secret
            self.functions.containers["ItemExchangeFunction"].service.secrets.forget()
        if "rss" in self.injected and number == self.args.warmup:  # kept to the end
            hoard.append(b"x" * int((self.args.max_growth_mib + 4) * 2**20))
        if "leak" in self.injected and number == 0:
            from linktoken.observability import logger

            logger.info("soak_injected", extra={"token": ACCESS_TOKEN_MARK + "injected-0000"})

    def _inject_after(self) -> None:
        if "left-item" in self.injected:  # an Item exchanged and never removed
            token = self.backends.public_token(INSTITUTIONS[0][0])
            doc = event("POST", "/items", "soak-user-left", exchange_body(token))
            self.send("injected Item left at Plaid", "POST /items", STEPS["exchange"], doc)


def run(args: argparse.Namespace) -> dict[str, Any]:
    options = BackendOptions(CLIENT_ID, SECRET, HMAC_KEY, args.ttl, FORBIDDEN)
    with ItemsBackendsProcess(options) as backends:
        functions_env = json.loads((ROOT / "infra/env.json").read_text())
        os.environ.update(
            {
                **{k: v for name in FUNCTIONS for k, v in functions_env[name].items()},
                **backends.env,  # the world's table, key, secret, endpoints, TTL
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        sink = OutputSink(FORBIDDEN)
        sys.stdout, real_stdout = sink, sys.stdout
        sys.stderr, real_stderr = sink, sys.stderr
        try:
            from linktoken.observability import logger

            logger.registered_handler.setStream(sink)  # type: ignore[attr-defined]
            functions = Functions(backends.env)
            result = Soak(args, backends, functions, sink).run()
        finally:
            sys.stdout, sys.stderr = real_stdout, real_stderr
            sink.close()
    result["backend_output_lines"] = backends.output.get("output_lines", 0)
    result["backend_secret_leaks"] = backends.output.get("secret_leaks", 0)
    return result


def verdict(result: dict[str, Any], max_growth_mib: float) -> list[str]:
    failures = [f"unexpected: {line}" for line in result["unexpected"][:20]]
    if len(result["unexpected"]) > 20:
        failures.append(f"... and {len(result['unexpected']) - 20} more unexpected answers")
    if result["rss_growth_mib"] > max_growth_mib:
        failures.append(f"RSS grew {result['rss_growth_mib']} MiB (limit {max_growth_mib})")
    if result["plaid_connections"] > result["plaid_connections_allowed"]:
        failures.append(
            f"{result['plaid_connections']} Plaid connections "
            f"(allowed {result['plaid_connections_allowed']})"
        )
    if result["secret_reads"] > result["secret_reads_allowed"]:
        failures.append(
            f"{result['secret_reads']} secret reads (allowed {result['secret_reads_allowed']})"
        )
    leaks = result["secret_leaks"] + result["backend_secret_leaks"] + result["response_leaks"]
    if leaks or result["non_json_lines"]:
        failures.append(
            f"{leaks} lines with an access token or the Plaid secret "
            f"({result['secret_leaks']} here, {result['backend_secret_leaks']} in the backends, "
            f"{result['response_leaks']} in responses), {result['non_json_lines']} non-JSON lines"
        )
    if result["items_left_at_plaid"]:
        failures.append(
            f"{len(result['items_left_at_plaid'])} Items left at Plaid, not removed: "
            + ", ".join(result["items_left_at_plaid"][:5])
        )
    if result["items_kept_at_plaid"] != result["items_kept_expected"]:
        failures.append(
            f"{result['items_kept_at_plaid']} Items made behind a Plaid 500 or a lost answer, "
            f"expected {result['items_kept_expected']}"
        )
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("-n", "--cycles", type=int, default=1_500)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=100, help="cycles before RSS start")
    parser.add_argument("--fault-every", type=int, default=4, help="cycles between faults")
    parser.add_argument("--ttl", type=int, default=10, help="secret TTL, seconds")
    parser.add_argument(
        "--sweep-every", type=int, default=20, help="cycles between TTL sweeps of the table"
    )
    parser.add_argument("--max-growth-mib", type=float, default=8.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--inject", action="append", choices=INJECTIONS, help="fail on purpose (self-test)"
    )
    args = parser.parse_args()
    args.warmup = min(args.warmup, args.cycles // 2)
    result = run(args)
    failures = verdict(result, args.max_growth_mib)
    shown = {k: v for k, v in result.items() if k != "unexpected"}
    print(json.dumps(shown, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    for failure in failures:
        print(f"soak-items: FAIL {failure}")
    print(
        f"soak-items: {'FAIL' if failures else 'ok'}: {result['cycles']} cycles, "
        f"{result['invocations']} invocations, {len(result['unexpected'])} unexpected, "
        f"RSS {result['rss_growth_mib']:+} MiB, {result['plaid_connections']} Plaid connections, "
        f"{result['secret_reads']} secret reads"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
