"""The Items flow's world: moto's server (Secrets Manager, DynamoDB, KMS, SQS) seeded with the
Plaid secret, the Items table (its ByItemId index too), the key and the webhook queue with its
dead-letter queue (as make serve creates them: infra/gateway/local_queues.py); the Plaid
stand-in; optionally the DynamoDB/KMS fault front (infra/doubles/aws_faults.py) between the
functions and moto; and the functions' environment. One copy of this set-up, for the tests
(tests/helpers_items.py) and for `make soak-items` (infra/bench/soak_items.py), which runs it
in a process of its own.

    with items_backends(with_faults=True) as backends:   # started and seeded
        backends.env                                      # what the functions get
    with items_world() as world:                          # the same, plus the containers
        world.exchange("user", world.public_token())      # one call per route
        world.webhook(*world.signed({"webhook_type": "ITEM", ...}))   # the receiver
        world.drain_webhooks()                            # queue -> the processor, in-process

`drain_webhooks` is make serve's poller's batch (infra/gateway/sqs_poller.py `run_batch`: the
same ReceiveMessage, Lambda SQS event and deletes), with the processor's handler called in this
process instead of a worker.

Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import botocore.session
import requests

from infra.doubles.aws_faults import AwsFaults
from infra.doubles.lambda_runtime import LambdaContext
from infra.doubles.moto_server import WsgiApp, moto_server
from infra.doubles.plaid_standin import PlaidStandIn
from infra.gateway.cfn_template import (
    function_timeout_seconds,
    load_template,
    sqs_event_sources,
    table_definition,
)
from infra.gateway.lambda_workers import Failed, Invoked
from infra.gateway.local_queues import LOCAL_VISIBILITY_TIMEOUT_S, LocalQueue, create_queue
from infra.gateway.sqs_poller import BatchOutcome, QueueSource, run_batch
from linktoken.container import build_container
from linktoken.endpoint import handle
from plaiditems.container import ItemsContainer, build_items_container
from plaiditems.endpoint import handle_exchange, handle_items

CLIENT_ID, SECRET = "items-client-id", "items-secret-value"
WEBHOOK_QUEUE = "WebhookQueue"  # the template's queue (logical id) the receiver sends to
WEBHOOK_PATH = "/webhooks/plaid"
WEBHOOK_ROUTE = f"POST {WEBHOOK_PATH}"
# A batch's handler: the processor's, in this process (a test may pass one of its own).
BatchHandler = Callable[[dict[str, Any]], Any]
# Module-level names: World has a method called `list`, which its annotations would see.
Outcomes = list[BatchOutcome]
Bodies = list[str]
HMAC_KEY = "k" * 32
REGION = "us-east-1"
INSTITUTION = {"institution_id": "ins_109508", "name": "First Platypus Bank"}
ACCOUNTS = [
    {
        "id": "acc-1",
        "name": "Plaid Checking",
        "mask": "0000",
        "type": "depository",
        "subtype": "checking",
    },
    {
        "id": "acc-2",
        "name": "Plaid Saving",
        "mask": "1111",
        "type": "depository",
        "subtype": "savings",
    },
]


@dataclass(frozen=True)
class ItemsBackends:
    """What the Items functions talk to, started and seeded: moto's `endpoint`, the stand-in,
    the fault front (None without faults), and the names of this world's table, secret, key
    and queue (moto keeps one state per process, whichever server: each world has names of its
    own)."""

    endpoint: str
    plaid: PlaidStandIn
    faults: AwsFaults | None
    table: str
    secret_id: str
    key_id: str
    queue: LocalQueue

    @property
    def env(self) -> dict[str, str]:
        """The functions' environment: DynamoDB and KMS through the fault front if there is
        one, Secrets Manager straight to moto."""
        front = self.faults.endpoint if self.faults else None
        return {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": front or self.endpoint,
            "AWS_ENDPOINT_URL_KMS": front or self.endpoint,
            "PLAID_SECRET_ID": self.secret_id,
            "PLAID_CLIENT_NAME": "Items Test",
            "PLAID_BASE_URL": self.plaid.base_url,
            "ITEMS_TABLE": self.table,
            "ITEMS_KEY_ID": self.key_id,
            # SQS straight to moto: the fault front plays DynamoDB's and KMS's faults only.
            "AWS_ENDPOINT_URL_SQS": self.endpoint,
            "WEBHOOK_QUEUE_URL": self.queue.url,
            "PLAID_WEBHOOK_PATH": WEBHOOK_PATH,
        }

    def client(self, service: str) -> Any:
        """A botocore client for moto itself (set-up and inspection, never the functions')."""
        return moto_client(self.endpoint, service)


def moto_client(endpoint: str, service: str) -> Any:
    """botocore's client for moto's endpoint (typed loosely: moto's side is set-up only)."""
    return botocore.session.get_session().create_client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto's fake credentials
    )


@contextmanager
def items_backends(
    with_faults: bool = False,
    *,
    plaid: PlaidStandIn | None = None,
    moto_wrap: Callable[[WsgiApp], WsgiApp] | None = None,
    credentials: tuple[str, str, str] = (CLIENT_ID, SECRET, HMAC_KEY),
    queue_visibility_s: int = LOCAL_VISIBILITY_TIMEOUT_S,
) -> Iterator[ItemsBackends]:
    """moto on a fresh loopback port with the secret (`credentials`: client_id, secret,
    user_id_hmac_key), the table, the key and the webhook queue (`queue_visibility_s`: how soon
    a message not deleted comes back); the stand-in (`plaid`, not yet started, else one with
    these keys); with `with_faults`, the fault front before moto's DynamoDB and KMS.
    `moto_wrap` puts a WSGI middleware before moto (to count what reaches it)."""
    client_id, secret, hmac_key = credentials
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(moto_server(wrap=moto_wrap))
        standin = stack.enter_context(
            plaid if plaid is not None else PlaidStandIn(client_id=client_id, secret=secret)
        )
        faults = stack.enter_context(AwsFaults(endpoint)) if with_faults else None
        suffix = uuid.uuid4().hex[:8]
        table, secret_id = f"items-{suffix}", f"items/plaid-{suffix}"
        moto_client(endpoint, "secretsmanager").create_secret(
            Name=secret_id,
            SecretString=json.dumps(
                {"client_id": client_id, "secret": secret, "user_id_hmac_key": hmac_key}
            ),
        )
        moto_client(endpoint, "dynamodb").create_table(
            TableName=table, **table_definition(load_template())
        )
        key_id = moto_client(endpoint, "kms").create_key()["KeyMetadata"]["Arn"]
        queue = create_queue(
            moto_client(endpoint, "sqs"),
            load_template(),
            WEBHOOK_QUEUE,
            f"webhooks-{suffix}.fifo",
            visibility_timeout_s=queue_visibility_s,
        )
        yield ItemsBackends(endpoint, standin, faults, table, secret_id, key_id, queue)


class World:
    """The backends and the containers built on them: one Items container (exchange_app's and
    items_app's, played by one), one link-token container (app's, update mode)."""

    def __init__(self, backends: ItemsBackends) -> None:
        self.backends = backends
        self.endpoint, self.plaid, self.faults = backends.endpoint, backends.plaid, backends.faults
        self.table, self.secret_id = backends.table, backends.secret_id
        self.key_id = backends.key_id
        self.env = backends.env
        os.environ.update(self.env)  # the secret store's client reads the process environment
        self.items = build_items_container(self.env)
        self.link = build_container(self.env)
        self.queue = backends.queue
        self._receiver: Any = None
        self._processor: Any = None

    def client(self, service: str) -> Any:
        return self.backends.client(service)

    def public_token(self, institution_id: str = INSTITUTION["institution_id"]) -> str:
        answer = requests.post(
            self.plaid.base_url + "/sandbox/public_token/create",
            json={"institution_id": institution_id, "initial_products": ["transactions"]},
            headers={"PLAID-CLIENT-ID": self.plaid.client_id, "PLAID-SECRET": self.plaid.secret},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["public_token"])

    def exchange(
        self, sub: str, token: str, accounts: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        return handle_exchange(
            event("POST", "/items", sub, exchange_body(token, accounts=accounts)),
            exchange_context(),
            self.items,
        )

    def list(self, sub: str, container: ItemsContainer | None = None) -> dict[str, Any]:
        return handle_items(event("GET", "/items", sub), LambdaContext(), container or self.items)

    def remove(self, sub: str, item_id: str) -> dict[str, Any]:
        return handle_items(
            event("DELETE", f"/items/{item_id}", sub, item_id=item_id), LambdaContext(), self.items
        )

    def update_token(self, sub: str, item_id: str) -> dict[str, Any]:
        return handle(
            event("POST", "/link-token", sub, {"item_id": item_id}), LambdaContext(), self.link
        )

    def table_dump(self) -> str:
        return json.dumps(self.client("dynamodb").scan(TableName=self.table)["Items"])

    # ------------------------------------------------------------------ webhooks ----------
    def signed(self, webhook: dict[str, Any], iat: int | None = None) -> tuple[bytes, str]:
        """A webhook body and its Plaid-Verification value, signed with the stand-in's key."""
        body = json.dumps(webhook).encode()
        return body, self.plaid.signing_key.sign(body, iat=iat)

    def webhook(self, body: bytes, verification: str | None) -> dict[str, Any]:
        """POST /webhooks/plaid through the receiver's handler (built at the first call)."""
        from plaidhooks.receiver_container import build_receiver_container
        from plaidhooks.receiver_endpoint import handle_webhook

        if self._receiver is None:
            self._receiver = build_receiver_container(self.env)
        answer: dict[str, Any] = handle_webhook(
            webhook_event(body, verification), LambdaContext(RECEIVER_TIMEOUT_MS), self._receiver
        )
        return answer

    def process(self, event: dict[str, Any]) -> Any:
        """One SQS event through the processor's handler (built at the first call)."""
        from plaidhooks.processor_container import build_processor_container
        from plaidhooks.processor_endpoint import handle_batch

        if self._processor is None:
            self._processor = build_processor_container(self.env)
        return handle_batch(event, self._processor, LambdaContext(PROCESSOR_TIMEOUT_MS))

    def drain_webhooks(
        self, handler: BatchHandler | None = None, max_batches: int = 100
    ) -> Outcomes:
        """Batches of the queue's visible messages into `handler` (the processor's) until none
        is left: what make serve's poller does with each (see the module docstring)."""
        call = handler or self.process

        def invoke(event: dict[str, Any]) -> Invoked | Failed:
            started = time.perf_counter()
            try:
                result = call(event)
            except Exception as exc:  # as Lambda reports a function error: nothing deleted
                return Failed(
                    f"{type(exc).__name__}: {exc}", (time.perf_counter() - started) * 1000
                )
            return Invoked(result, (time.perf_counter() - started) * 1000)

        source = self.queue_source()
        outcomes: Outcomes = []
        for _ in range(max_batches):
            outcome = run_batch(source, invoke)
            if outcome is None:
                return outcomes
            outcomes.append(outcome)
        raise AssertionError(f"the queue still had messages after {max_batches} batches")

    def queue_source(self) -> QueueSource:
        """The template's SQS event source of the processor, bound to this world's queue."""
        (mapping,) = [s for s in sqs_event_sources(load_template()) if s.queue == WEBHOOK_QUEUE]
        return QueueSource(
            client=self.client("sqs"),
            queue_url=self.queue.url,
            queue_arn=self.queue.arn,
            region=REGION,
            function=mapping.function,
            batch_size=mapping.batch_size,
            report_batch_item_failures=mapping.report_batch_item_failures,
        )

    def dead_letters(self) -> Bodies:
        """The bodies in the dead-letter queue (received, not deleted: they stay)."""
        assert self.queue.dead_letter_url is not None
        answer = self.client("sqs").receive_message(
            QueueUrl=self.queue.dead_letter_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        return [str(message["Body"]) for message in answer.get("Messages") or []]


@contextmanager
def items_world(
    with_faults: bool = False,
    *,
    queue_visibility_s: int = LOCAL_VISIBILITY_TIMEOUT_S,
    moto_wrap: Callable[[WsgiApp], WsgiApp] | None = None,
) -> Iterator[World]:
    """The world on a fresh moto server; `with_faults` puts the fault double
    (`World.faults`) between the functions and moto's DynamoDB and KMS; `queue_visibility_s`
    is the webhook queue's visibility timeout (how soon a failed webhook is received again);
    `moto_wrap` as for `items_backends`. The process environment is restored afterwards."""
    saved = dict(os.environ)
    try:
        with items_backends(
            with_faults, queue_visibility_s=queue_visibility_s, moto_wrap=moto_wrap
        ) as backends:
            yield World(backends)
    finally:
        os.environ.clear()
        os.environ.update(saved)


# The exchange function's own timeout (template.yaml): the exchange keeps time back for what
# must follow it (plaiditems.service.CLEANUP_RESERVE_S).
EXCHANGE_TIMEOUT_MS = function_timeout_seconds(load_template(), "ItemExchangeFunction") * 1000
RECEIVER_TIMEOUT_MS = function_timeout_seconds(load_template(), "WebhookReceiverFunction") * 1000
PROCESSOR_TIMEOUT_MS = function_timeout_seconds(load_template(), "WebhookProcessorFunction") * 1000


def exchange_context() -> LambdaContext:
    return LambdaContext(remaining_ms=EXCHANGE_TIMEOUT_MS)


def exchange_body(
    token: str,
    institution: dict[str, str] | None = None,
    accounts: list[dict[str, Any]] | None = None,
    link_session_id: str = "s-1",
) -> dict[str, Any]:
    """A POST /items body as the apps send it: the public token and Link's onSuccess
    metadata."""
    return {
        "public_token": token,
        "metadata": {
            "institution": institution or INSTITUTION,
            "accounts": accounts or ACCOUNTS,
            "link_session_id": link_session_id,
        },
    }


def event(
    method: str, path: str, sub: str, body: Any = None, item_id: str | None = None
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event behind the JWT authorizer, for user `sub`."""
    route = path.replace(f"/{item_id}", "/{item_id}", 1) if item_id else path
    doc: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "http": {"method": method, "path": path},
            "authorizer": {"jwt": {"claims": {"sub": sub}}},
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        doc["body"] = json.dumps(body)
    if item_id is not None:
        doc["pathParameters"] = {"item_id": item_id}
    return doc


def webhook_event(body: bytes, verification: str | None) -> dict[str, Any]:
    """POST /webhooks/plaid as API Gateway sends it: payload 2.0, no authorizer (the route has
    none), the body as Plaid sent it, and its Plaid-Verification header when given."""
    headers = {"content-type": "application/json", "content-length": str(len(body))}
    if verification is not None:
        headers["plaid-verification"] = verification
    return {
        "version": "2.0",
        "routeKey": WEBHOOK_ROUTE,
        "rawPath": WEBHOOK_PATH,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "routeKey": WEBHOOK_ROUTE,
            "http": {"method": "POST", "path": WEBHOOK_PATH},
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def body_of(answer: dict[str, Any]) -> Any:
    return json.loads(answer["body"]) if answer["body"] else None
