"""`make doctor` and the webhook functions: their settings offline; with --function/--stack the
receiver's rejections by reason and failures by cause, the processor's failures and outcomes,
the webhook queue and its dead-letter queue, read from moto (Lambda, CloudWatch Logs,
CloudFormation, SQS, DynamoDB) in server mode."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.doctor.queue_checks import check_dead_letters, check_queue
from linktoken.aws_json import AwsServiceError, ClientMeta
from linktoken.config import SETTINGS, ConfigError, load_config
from linktoken.problems import PROBLEM_TYPES
from plaidhooks.signature import REASONS
from tests.conftest import SECRET_ID
from tests.helpers_doctor import (
    ITEMS_KEY_ID,
    ITEMS_TABLE,
    client,
    create_function,
    create_items_key,
    create_items_table,
    create_stack,
    finding,
    good_secret,
    moto,
    moto_url,
    put_secret,
    run_doctor,
)

__all__ = ["moto", "moto_url"]  # fixtures

RECEIVER = "webhook_app.lambda_handler"
PROCESSOR = "webhook_worker_app.lambda_handler"
RECEIVER_NAME = "plaid-webhook-receiver-prod"
PROCESSOR_NAME = "plaid-webhook-processor-prod"
RECEIVER_GROUP = f"/aws/lambda/{RECEIVER_NAME}"
PROCESSOR_GROUP = f"/aws/lambda/{PROCESSOR_NAME}"
FIX = {s.variable: s.fix for s in SETTINGS}
BASE_ENV = {
    "PLAID_SECRET_ID": SECRET_ID,
    "PLAID_CLIENT_NAME": "Acme",
    "PLAID_ENV": "production",
    "PLAID_WEBHOOK_PATH": "/webhooks/plaid",
}
NO_QUEUE = (
    "sqs SendMessage: QueueDoesNotExist: the webhook queue does not exist in this region "
    "(check WEBHOOK_QUEUE_URL)"
)
NO_TABLE = (
    "dynamodb Query: ResourceNotFoundException: the Items table does not exist in this region "
    "(check ITEMS_TABLE)"
)
NOW_MS = int(time.time() * 1000)
MINUTE_MS = 60_000


def put_lines(group: str, lines: list[dict[str, Any]]) -> None:
    """The lines into the log group, one a minute, the last one a minute ago."""
    logs = client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    events = [
        {"timestamp": NOW_MS - (len(lines) - i) * MINUTE_MS, "message": json.dumps(line)}
        for i, line in enumerate(lines)
    ]
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)


def rejected(reason: str, kid: str | None = "kid-plaid-1") -> dict[str, Any]:
    """A `webhook_rejected` line as plaidhooks/receiver_endpoint.py writes it."""
    line = {
        "level": "WARNING",
        "message": "webhook_rejected",
        "correlation_id": "req-" + uuid.uuid4().hex[:12],
        "reason": reason,
        "error_code": "WEBHOOK_UNVERIFIED",
        "status": 401,
        "cause": f"verification: {reason}",
    }
    if kid:
        line["kid"] = kid
    return line


def failed(message: str, error_code: str, cause: str, **fields: Any) -> dict[str, Any]:
    return {
        "level": "ERROR",
        "message": message,
        "error_code": error_code,
        "cause": cause,
        **fields,
    }


def applied(outcome: str, code: str = "ERROR", **fields: Any) -> dict[str, Any]:
    return {
        "level": "INFO",
        "message": "webhook_applied",
        "outcome": outcome,
        "webhook_type": "ITEM",
        "webhook_code": code,
        "item_id": "item-1",
        "message_id": uuid.uuid4().hex,
        **fields,
    }


def create_queues(
    name: str = "hooks", fifo: bool = True, dedup: bool = True, redrive: bool = True
) -> tuple[str, str]:
    """The webhook queue and its dead-letter queue as the stack makes them (unless told)."""
    sqs = client("sqs")
    suffix = ".fifo" if fifo else ""
    fifo_attributes = {"FifoQueue": "true"} if fifo else {}
    dlq = sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=fifo_attributes)
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"])
    attributes = dict(fifo_attributes)
    if fifo and dedup:
        attributes["ContentBasedDeduplication"] = "true"
    if redrive:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": 5}
        )
    queue = sqs.create_queue(QueueName=f"{name}{suffix}", Attributes=attributes)
    return str(queue["QueueUrl"]), str(dlq["QueueUrl"])


def receiver_env(queue_url: str | None) -> dict[str, str]:
    env = {**BASE_ENV, "ITEMS_TABLE": ITEMS_TABLE, "ITEMS_KEY_ID": ITEMS_KEY_ID}
    if queue_url:
        env["WEBHOOK_QUEUE_URL"] = queue_url
    return env


def in_group(doc: dict[str, Any], group: str) -> dict[str, dict[str, Any]]:
    return {f["check"]: f for f in doc["findings"] if f["group"] == group}


# ----------------------------------------------------------------------------- offline ------
@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("WEBHOOK_QUEUE_URL", "http://sqs.us-east-1.amazonaws.com/1/q.fifo", "queue's https URL"),
        ("WEBHOOK_QUEUE_URL", "https://user@sqs.example.com/1/q.fifo", "queue's https URL"),
        ("PLAID_WEBHOOK_PATH", "webhooks/plaid", "absolute URL path"),
        ("PLAID_WEBHOOK_PATH", "/webhooks/plaid?x=1", "absolute URL path"),
    ],
)
def test_a_wrong_webhook_setting_is_named_with_its_fix(
    moto: str, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    put_secret(good_secret())
    monkeypatch.setenv(variable, value)

    code, text, doc = run_doctor()

    assert code == 1
    found = finding(doc, variable)
    assert found["status"] == "problem" and said in found["detail"]
    assert found["fix"] == FIX[variable]
    assert f"fix      {FIX[variable]}" in text
    with pytest.raises(ConfigError) as raised:  # the function's own words
        load_config({"PLAID_SECRET_ID": SECRET_ID, "PLAID_CLIENT_NAME": "A", variable: value})
    assert found["detail"] == str(raised.value)


def test_link_tokens_without_a_webhook_are_a_warning(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_secret(good_secret())
    monkeypatch.delenv("PLAID_WEBHOOK_PATH")

    code, _text, doc = run_doctor()

    assert code == 0
    found = finding(doc, "webhook")
    assert found["status"] == "warn"
    assert found["detail"].startswith(
        "neither PLAID_WEBHOOK_PATH nor PLAID_WEBHOOK_URL is set: link tokens carry no webhook"
    )
    assert found["fix"] == FIX["PLAID_WEBHOOK_PATH"]
    # Only the receiver needs a queue: unset is fine for the shell's (the link-token's) set.
    queue = finding(doc, "WEBHOOK_QUEUE_URL")
    assert (queue["status"], queue["detail"]) == (
        "ok",
        "(not set: only the webhook receiver needs it)",
    )

    monkeypatch.setenv("PLAID_WEBHOOK_URL", "https://hooks.example.com/plaid")
    _code, _text, doc = run_doctor()
    assert "webhook" not in {f["check"] for f in doc["findings"]}


# --------------------------------------------------------------- --function: configuration ---
@pytest.mark.parametrize(
    ("handler", "unset", "said", "what"),
    [
        (
            RECEIVER,
            "WEBHOOK_QUEUE_URL",
            "WEBHOOK_QUEUE_URL is required by the webhook receiver",
            "answers every webhook 500 MISCONFIGURED",
        ),
        (
            PROCESSOR,
            "ITEMS_TABLE",
            "ITEMS_TABLE and ITEMS_KEY_ID are required by the webhook processor",
            "fails every webhook",
        ),
    ],
)
def test_a_webhook_function_without_what_it_needs_has_a_problem_in_its_own_words(
    moto: str, handler: str, unset: str, said: str, what: str
) -> None:
    put_secret(good_secret())
    env = {
        **receiver_env("https://sqs.example.com/1/q.fifo"),
        "ITEMS_KEY_ID": create_items_key(),  # the processor checks it; the receiver ignores it
    }
    env.pop(unset)
    create_function(RECEIVER_NAME, env, handler)

    code, text, doc = run_doctor("--function", RECEIVER_NAME)

    assert code == 1, text
    found = finding(doc, unset)
    assert found["status"] == "problem"
    assert what in found["detail"]
    assert found["detail"].endswith(f"(its configuration_invalid line: {said})")
    assert found["fix"] == FIX[unset]
    assert [f["check"] for f in doc["findings"] if f["status"] == "problem"] == [unset]


def test_the_processor_is_checked_for_its_table_index_key_and_secret(moto: str) -> None:
    """It confirms the login pair with /item/get: it reads the secret and unseals tokens."""
    create_items_table()
    put_secret(good_secret())
    env = {**receiver_env(None), "ITEMS_KEY_ID": create_items_key()}
    create_function(PROCESSOR_NAME, env, PROCESSOR)

    code, text, doc = run_doctor("--function", PROCESSOR_NAME)

    assert code == 0, text
    assert (
        "the webhook processor (the webhook queue's consumer)" in finding(doc, "handler")["detail"]
    )
    assert {c: f["status"] for c, f in in_group(doc, "items storage").items()} == {
        "table": "ok",
        "table index": "ok",
        "table PITR": "ok",
        "table TTL": "ok",
        "key": "ok",
        "key rotation": "ok",
    }
    assert finding(doc, "readable")["status"] == "ok"
    assert finding(doc, "WEBHOOK_QUEUE_URL")["detail"] == (
        "(not set: the webhook processor (the webhook queue's consumer) does not use it)"
    )


def test_a_processor_whose_secret_is_missing_has_a_problem(moto: str) -> None:
    create_items_table()
    env = {**receiver_env(None), "ITEMS_KEY_ID": create_items_key()}
    create_function(PROCESSOR_NAME, env, PROCESSOR)

    code, text, doc = run_doctor("--function", PROCESSOR_NAME)

    assert code == 1, text
    assert finding(doc, "readable")["status"] == "problem"


def test_a_table_without_the_index_fails_the_processor(moto: str) -> None:
    client("dynamodb").create_table(
        TableName=ITEMS_TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    create_function(PROCESSOR_NAME, receiver_env(None), PROCESSOR)

    code, _text, doc = run_doctor("--function", PROCESSOR_NAME)

    assert code == 1
    index = in_group(doc, "items storage")["table index"]
    assert index["status"] == "problem"
    assert index["detail"] == (
        f"{ITEMS_TABLE} has no index ByItemId (hash key item_id): the webhook processor cannot "
        "find the Item a webhook names, and every webhook fails (dynamodb Query: "
        "ValidationException: the Items table refused the request as invalid (check "
        "ITEMS_TABLE))"
    )


# ------------------------------------------------------------------ --function: the queue ---
def test_the_receivers_queue_as_the_stack_makes_it_passes(moto: str) -> None:
    put_secret(good_secret())
    queue_url, _dlq_url = create_queues()
    client("sqs").send_message(QueueUrl=queue_url, MessageBody="{}", MessageGroupId="item-1")
    create_function(RECEIVER_NAME, receiver_env(queue_url), RECEIVER)

    code, text, doc = run_doctor("--function", RECEIVER_NAME)

    assert code == 0, text
    queue = in_group(doc, "webhook queue")
    assert queue["queue"] == {
        "group": "webhook queue",
        "check": "queue",
        "status": "ok",
        "detail": f"{queue_url}: FIFO, content-based de-duplication, 1 message(s) waiting",
    }
    dlq_arn = "arn:aws:sqs:us-east-1:123456789012:hooks-dlq.fifo"
    assert queue["redrive policy"]["detail"] == f"to {dlq_arn} after 5 failed receives"
    # The receiver uses neither the table nor the key: they are not its to check.
    assert "items storage" not in {f["group"] for f in doc["findings"]}


@pytest.mark.parametrize(
    ("make", "check", "said", "fix"),
    [
        (lambda: create_queues(fifo=False)[0], "queue", "is not FIFO", FIX["WEBHOOK_QUEUE_URL"]),
        (
            lambda: create_queues(dedup=False)[0],
            "queue",
            "is FIFO without content-based de-duplication",
            FIX["WEBHOOK_QUEUE_URL"],
        ),
        (
            lambda: create_queues(redrive=False)[0],
            "redrive policy",
            "has no dead-letter queue",
            "deploy the stack again",
        ),
        (
            lambda: create_queues()[0].replace("/hooks.fifo", "/gone.fifo"),
            "queue",
            "sqs GetQueueAttributes: QueueDoesNotExist: the webhook queue does not exist in this "
            "region (check WEBHOOK_QUEUE_URL)",
            FIX["WEBHOOK_QUEUE_URL"],
        ),
    ],
    ids=["standard", "no-dedup", "no-redrive", "missing"],
)
def test_each_fault_of_the_webhook_queue_is_a_problem_with_its_fix(
    moto: str, make: Callable[[], str], check: str, said: str, fix: str
) -> None:
    put_secret(good_secret())
    create_function(RECEIVER_NAME, receiver_env(make()), RECEIVER)

    code, _text, doc = run_doctor("--function", RECEIVER_NAME)

    assert code == 1
    found = in_group(doc, "webhook queue")[check]
    assert found["status"] == "problem"
    assert said in found["detail"]
    assert fix in found["fix"]
    assert [f["check"] for f in doc["findings"] if f["status"] == "problem"] == [check]


class _Scripted:
    """A JsonCall answering every operation with `answer` (raised when an exception)."""

    meta = ClientMeta("us-east-1", "http://127.0.0.1:9")

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def call(self, operation: str, params: Any) -> dict[str, Any]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return dict(self.answer)

    def close(self) -> None:
        pass


def _refused(code: str) -> AwsServiceError:
    return AwsServiceError(
        {"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 400}}
    )


@pytest.mark.parametrize(
    ("code", "said"),
    [("AccessDenied", "AccessDenied"), ("RequestThrottled", "answered RequestThrottled")],
)
def test_a_queue_the_caller_cannot_read_is_a_skip_not_a_crash(code: str, said: str) -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/hooks.fifo"

    queue = check_queue(url, lambda _spec: _Scripted(_refused(code)))
    dead = check_dead_letters(url, None, "s", lambda _spec: _Scripted(_refused(code)))

    for found in (queue.findings, dead.findings):
        [skip] = found
        assert skip.status == "skip"
        assert said in skip.detail and "not the function's role" in skip.detail
        assert skip.fix and "sqs:GetQueueAttributes" in skip.fix


def test_a_dead_letter_queue_that_is_not_fifo_is_a_problem(moto: str) -> None:
    _queue, dlq = create_queues(fifo=False)

    state = check_dead_letters(dlq, None, "hooks")

    assert [(f.check, f.status) for f in state.findings] == [("dead-letter queue", "problem")]
    assert "is not FIFO" in state.findings[0].detail


# ------------------------------------------------------------ --function: the log lines -----
def test_the_receivers_rejections_are_read_by_reason_and_its_failures_by_cause(
    moto: str,
) -> None:
    put_secret(good_secret())
    queue_url, _dlq = create_queues()
    create_function(RECEIVER_NAME, receiver_env(queue_url), RECEIVER)
    lines = (
        [rejected("body_hash") for _ in range(12)]  # steady, Plaid's own key: a proxy
        + [rejected("unknown_key", f"made-up-{i}") for i in range(11)]  # many senders
        + [rejected("missing_header", None) for _ in range(3)]  # a few: noise
        + [failed("webhook_receive_failed", "MISCONFIGURED", NO_QUEUE) for _ in range(2)]
        + [
            failed(
                "webhook_receive_failed",
                "UPSTREAM_UNAVAILABLE",
                "webhook key lookup: webhook key lookups are rate limited in this container",
                correlation_id="req-budget",
            )
        ]
        + [{"message": "webhook_received", "kid": "kid-plaid-1"}]
    )
    put_lines(RECEIVER_GROUP, lines)

    code, text, doc = run_doctor("--function", RECEIVER_NAME)

    assert code == 1  # MISCONFIGURED: a problem only an operator ends
    assert [(r["reason"], r["count"], r["kids"]) for r in doc["rejections"]] == [
        ("body_hash", 12, 1),
        ("unknown_key", 11, 11),
        ("missing_header", 3, 0),
    ]
    found = in_group(doc, "webhook rejections")
    assert {reason: f["status"] for reason, f in found.items()} == {
        "body_hash": "warn",
        "unknown_key": "warn",
        "missing_header": "ok",
    }
    assert (
        "steadily, that is likely Plaid's own deliveries with their body changed"
        in (found["body_hash"]["detail"])
    )
    assert "proxy" in found["body_hash"]["fix"]
    assert (
        "made-up key ids from many senders: an attempt to forge webhooks"
        in (found["unknown_key"]["detail"])
    )
    assert "11 distinct kids" in found["unknown_key"]["detail"]
    assert "AWS WAF" in found["unknown_key"]["fix"]
    assert found["missing_header"]["detail"].endswith("refused, as a public URL's noise should be")
    failures = in_group(doc, "recent failures")
    assert {c: f["status"] for c, f in failures.items()} == {
        "webhook_receive_failed MISCONFIGURED": "problem",
        "webhook_receive_failed UPSTREAM_UNAVAILABLE": "warn",
    }
    assert failures["webhook_receive_failed MISCONFIGURED"]["fix"] == FIX["WEBHOOK_QUEUE_URL"]
    assert failures["webhook_receive_failed UPSTREAM_UNAVAILABLE"]["fix"] == (
        PROBLEM_TYPES["UPSTREAM_UNAVAILABLE"].fix
    )
    assert "2 in the last 24h" in failures["webhook_receive_failed MISCONFIGURED"]["detail"]
    assert "(request_id req-budget)" in text


@pytest.mark.parametrize(("count", "status"), [(9, "ok"), (10, "warn")])
def test_one_unknown_key_steadily_reads_as_another_plaid_environment(
    moto: str, count: int, status: str
) -> None:
    put_secret(good_secret())
    create_function(RECEIVER_NAME, receiver_env(create_queues()[0]), RECEIVER)
    put_lines(RECEIVER_GROUP, [rejected("unknown_key", "kid-of-sandbox") for _ in range(count)])

    code, _text, doc = run_doctor("--function", RECEIVER_NAME)

    assert code == 0  # rejections are warnings at most: nothing was accepted
    found = in_group(doc, "webhook rejections")["unknown_key"]
    assert found["status"] == status
    assert "kid kid-of-sandbox" in found["detail"]
    steady = "webhooks signed in another Plaid environment than PLAID_ENV" in found["detail"]
    assert steady is (status == "warn")


def test_a_senders_kid_is_never_printed_raw(moto: str) -> None:
    put_secret(good_secret())
    create_function(RECEIVER_NAME, receiver_env(create_queues()[0]), RECEIVER)
    put_lines(RECEIVER_GROUP, [rejected("bad_signature", "\x1b]0;owned\x07kid")])

    _code, text, doc = run_doctor("--function", RECEIVER_NAME)

    assert "\x1b" not in text and "\x07" not in text
    assert doc["rejections"][0]["last_kid"] == repr("\x1b]0;owned\x07kid")


def test_every_reason_the_receiver_gives_has_a_reading() -> None:
    from infra.doctor.webhook_logs import REFUSED, STEADY_READINGS

    assert set(REFUSED) == set(STEADY_READINGS) == set(REASONS)


def test_the_processors_failures_and_outcomes_are_counted(moto: str) -> None:
    create_items_table()
    create_function(PROCESSOR_NAME, receiver_env(None), PROCESSOR)
    lines = (
        [applied("applied", health="login_required") for _ in range(3)]
        + [applied("stale") for _ in range(2)]
        + [
            applied("unknown_type", code="SYNC_UPDATES_AVAILABLE", webhook_type="TRANSACTIONS"),
            applied("item_unknown", item_id="item-elsewhere"),
        ]
        + [failed("webhook_failed", "MISCONFIGURED", NO_TABLE, message_id="m-1") for _ in "ab"]
        + [
            failed(
                "webhook_failed",
                "POISON_MESSAGE",
                "the message has no signed_at attribute",
                message_id="m-poison",
            )
        ]
    )
    put_lines(PROCESSOR_GROUP, lines)

    code, text, doc = run_doctor("--function", PROCESSOR_NAME)

    assert code == 1
    assert [(r["outcome"], r["count"]) for r in doc["outcomes"]] == [
        ("applied", 3),
        ("stale", 2),
        ("item_unknown", 1),
        ("unknown_type", 1),
    ]
    outcomes = in_group(doc, "webhook outcomes")
    assert {f["status"] for f in outcomes.values()} == {"ok"}  # information, not faults
    assert "TRANSACTIONS/SYNC_UPDATES_AVAILABLE" in outcomes["unknown_type"]["detail"]
    assert "item_id item-elsewhere" in outcomes["item_unknown"]["detail"]
    assert "left unapplied, as designed" in outcomes["stale"]["detail"]
    failures = in_group(doc, "recent failures")
    assert {c: f["status"] for c, f in failures.items()} == {
        "webhook_failed MISCONFIGURED": "problem",
        "webhook_failed POISON_MESSAGE": "warn",
    }
    assert failures["webhook_failed MISCONFIGURED"]["fix"] == FIX["ITEMS_TABLE"]
    assert "(message_id m-1)" in failures["webhook_failed MISCONFIGURED"]["detail"]
    assert "dead-letter queue" in failures["webhook_failed POISON_MESSAGE"]["fix"]
    assert "delete it rather than redrive it" in failures["webhook_failed POISON_MESSAGE"]["fix"]
    assert "request_id None" not in text


def test_a_webhook_function_that_never_ran_is_a_skip_not_a_crash(moto: str) -> None:
    put_secret(good_secret())
    create_function(RECEIVER_NAME, receiver_env(create_queues()[0]), RECEIVER)

    code, _text, doc = run_doctor("--function", RECEIVER_NAME)

    assert code == 0
    logs = finding(doc, RECEIVER_GROUP)
    assert logs["status"] == "skip" and "ResourceNotFoundException" in logs["detail"]
    assert "webhook rejections" not in {f["group"] for f in doc["findings"]}


# --------------------------------------------------------------------------- --stack ------
# The processor's SQS event as template.yaml declares it (its event source mapping).
MAPPING: dict[str, Any] = {"BatchSize": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"]}


def create_webhook_stack(
    name: str,
    receiver_queue: str | None = None,
    queues: bool = True,
    dead_letters: int = 0,
    mapping: dict[str, Any] | None = MAPPING,
) -> None:
    """The receiver, the processor, and (unless told) the two FIFO queues with the outputs the
    stack has and the processor's event source mapping (`mapping`'s properties; None: none),
    created by moto's CloudFormation; `receiver_queue`: the receiver's WEBHOOK_QUEUE_URL (the
    stack's queue unless given)."""
    env: dict[str, Any] = dict(BASE_ENV, ITEMS_TABLE=ITEMS_TABLE)
    if queues or receiver_queue:
        env["WEBHOOK_QUEUE_URL"] = receiver_queue or {"Ref": "WebhookQueue"}
    functions = {
        "WebhookReceiverFunction": (RECEIVER, env),
        # The processor unseals access tokens (the login pair's /item/get): it has the key.
        "WebhookProcessorFunction": (PROCESSOR, {**env, "ITEMS_KEY_ID": create_items_key()}),
    }
    resources: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    if queues:
        resources["WebhookDeadLetterQueue"] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": f"{name}-plaid-webhooks-dlq.fifo", "FifoQueue": True},
        }
        resources["WebhookQueue"] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": f"{name}-plaid-webhooks.fifo",
                "FifoQueue": True,
                "ContentBasedDeduplication": True,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": 5,
                },
            },
        }
        outputs = {
            "WebhookQueueUrl": {"Value": {"Ref": "WebhookQueue"}},
            "WebhookDeadLetterQueueUrl": {"Value": {"Ref": "WebhookDeadLetterQueue"}},
        }
        if mapping is not None:
            resources["WebhookProcessorFunctionWebhookQueue"] = {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "FunctionName": {"Ref": "WebhookProcessorFunction"},
                    "EventSourceArn": {"Fn::GetAtt": ["WebhookQueue", "Arn"]},
                    **mapping,
                },
            }
    create_stack(name, functions, resources, outputs)
    if dead_letters:
        sqs = client("sqs")
        dlq = sqs.get_queue_url(QueueName=f"{name}-plaid-webhooks-dlq.fifo")["QueueUrl"]
        for i in range(dead_letters):
            sqs.send_message(
                QueueUrl=dlq,
                MessageBody="{}",
                MessageGroupId="item-1",
                MessageDeduplicationId=f"d{i}",
            )


@pytest.mark.parametrize(("dead_letters", "code"), [(0, 0), (2, 1)])
def test_a_stacks_dead_letters_are_a_problem_naming_the_query_and_the_redrive(
    moto: str, dead_letters: int, code: int
) -> None:
    put_secret(good_secret())
    create_items_table()
    create_webhook_stack("hooks", dead_letters=dead_letters)

    exit_code, text, doc = run_doctor("--stack", "hooks")

    assert exit_code == code, text
    queues = [f for f in doc["findings"] if f["group"] == "webhook queue"]
    receiver = [f for f in queues if f.get("function") == "WebhookReceiverFunction"]
    stack_level = [f for f in queues if not f.get("function")]
    assert [(f["check"], f["status"]) for f in receiver] == [
        ("queue", "ok"),
        ("redrive policy", "ok"),
    ]
    # The stack's queue is the receiver's: said once, checked once.
    assert [(f["check"], f["status"]) for f in stack_level] == [
        ("queue", "skip"),
        ("dead-letter queue", "ok" if code == 0 else "problem"),
        ("event source", "ok"),
    ]
    assert stack_level[2]["detail"].endswith(
        "(hooks-WebhookProcessorFunction): Enabled, batches of up to 10, reports batch item "
        "failures"
    )
    assert "the same queue as WebhookReceiverFunction's, checked above" in stack_level[0]["detail"]
    assert doc["dead_letters"] == dead_letters
    dead = stack_level[1]
    dlq_url = "https://sqs.us-east-1.amazonaws.com/123456789012/hooks-plaid-webhooks-dlq.fifo"
    if code == 0:
        assert dead["detail"] == f"{dlq_url}: FIFO, empty"
        return
    assert dead["detail"] == (
        f"{dlq_url}: 2 webhook(s) the processor failed five times: the Items they name do not "
        "have the health Plaid gave them"
    )
    assert dead["fix"] == (
        'read the saved query "hooks/11 Webhook outcomes by type and code" (its webhook_failed '
        "lines, and the processor's recent failures here, say why), fix the cause, then "
        "redrive: aws sqs start-message-move-task --source-arn "
        "arn:aws:sqs:us-east-1:123456789012:hooks-plaid-webhooks-dlq.fifo --destination-arn "
        "arn:aws:sqs:us-east-1:123456789012:hooks-plaid-webhooks.fifo"
    )
    assert "\nwebhook queue\n  skip" in text  # the stack's own group, after its functions'


@pytest.mark.parametrize(
    ("mapping", "said", "fix"),
    [
        (
            None,
            "hooks-WebhookProcessorFunction has no event source mapping from "
            "arn:aws:sqs:us-east-1:123456789012:hooks-plaid-webhooks.fifo: nothing applies the "
            "queued webhooks, so no Item's health changes",
            "deploy the stack again (template.yaml's WebhookProcessorFunction SQS event)",
        ),
        (
            {**MAPPING, "Enabled": False},
            "(hooks-WebhookProcessorFunction) is Disabled: User initiated: the queued webhooks "
            "wait, and move to the dead-letter queue after five receives",
            "aws lambda update-event-source-mapping --uuid ",
        ),
        (
            {"BatchSize": 10},
            "(hooks-WebhookProcessorFunction) does not report batch item failures: Lambda takes "
            "the processor's answer as a success and deletes a webhook it failed with its batch",
            "deploy the stack again (template.yaml's WebhookProcessorFunction SQS event)",
        ),
    ],
)
def test_each_fault_of_the_processors_event_source_is_a_problem_with_its_fix(
    moto: str, mapping: dict[str, Any] | None, said: str, fix: str
) -> None:
    put_secret(good_secret())
    create_items_table()
    create_webhook_stack("hooks", mapping=mapping)

    code, _text, doc = run_doctor("--stack", "hooks")

    assert code == 1
    found = finding(doc, "event source")
    assert found["status"] == "problem"
    assert found["detail"].endswith(said), found["detail"]
    assert found["fix"].startswith(fix) and found["fix"].endswith(
        "--enabled" if mapping and mapping.get("Enabled") is False else ")"
    )


def test_a_receiver_sending_elsewhere_than_the_stacks_queue_is_a_problem(moto: str) -> None:
    put_secret(good_secret())
    create_items_table()
    elsewhere, _dlq = create_queues("elsewhere")
    create_webhook_stack("hooks", receiver_queue=elsewhere)

    code, _text, doc = run_doctor("--stack", "hooks")

    assert code == 1
    found = finding(doc, "receiver's queue")
    assert found["status"] == "problem"
    assert found["detail"].startswith(f"WebhookReceiverFunction sends webhooks to {elsewhere}")
    assert found["detail"].endswith("which the processor consumes: they are never applied")
    # Both queues were read: the receiver's and the stack's.
    assert [f["status"] for f in doc["findings"] if f["check"] == "queue"] == ["ok", "ok"]


def test_a_webhook_stack_without_its_queue_outputs_says_what_was_not_checked(
    moto: str,
) -> None:
    put_secret(good_secret())
    create_items_table()
    create_webhook_stack("bare", receiver_queue="https://sqs.example.com/1/q.fifo", queues=False)

    _code, _text, doc = run_doctor("--stack", "bare")

    stack_level = [f for f in doc["findings"] if not f.get("function")]
    assert [(f["check"], f["status"], f["detail"]) for f in stack_level] == [
        ("event source", "skip", "not checked: the webhook queue's ARN is unknown"),
        (
            "WebhookQueueUrl",
            "skip",
            "the stack has no output WebhookQueueUrl: that queue is not checked",
        ),
        (
            "WebhookDeadLetterQueueUrl",
            "skip",
            "the stack has no output WebhookDeadLetterQueueUrl: that queue is not checked",
        ),
    ]
    assert "dead_letters" not in doc


# ------------------------------------------------------------ the handlers' own log lines ---
class _Secrets:
    reads = 0

    def get(self) -> Any:
        from linktoken.secret_store import PlaidCredentials

        return PlaidCredentials("client-id-5e1f", "not-the-secret")

    def forget(self) -> None: ...

    def prepare(self) -> None: ...


class _Plaid:
    """Plaid's /webhook_verification_key/get for one key."""

    def __init__(self, jwk: dict[str, Any]) -> None:
        self.jwk = jwk

    def call(self, path: str, body: Any, credentials: Any, remaining: Any, **_: Any) -> Any:
        from linktoken.plaid_client import PlaidAnswer

        return PlaidAnswer({"key": self.jwk, "request_id": "r"}, "plaid-req-key", 1, 1.0)

    def reset(self) -> None: ...


def _no_recheck(*_args: Any) -> Any:
    raise AssertionError("no webhook of these reaches Plaid's /item/get")


def _webhook_event(body: bytes, token: str | None) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    if token:
        headers["plaid-verification"] = token
    return {
        "version": "2.0",
        "routeKey": "POST /webhooks/plaid",
        "rawPath": "/webhooks/plaid",
        "headers": headers,
        "body": body.decode(),
        "isBase64Encoded": False,
        "requestContext": {
            "requestId": "req-" + uuid.uuid4().hex[:12],
            "http": {"method": "POST", "path": "/webhooks/plaid"},
        },
    }


def test_the_webhook_handlers_own_lines_are_read(
    moto: str, output: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the receiver into each kind of refusal and a queue that does not exist, and the
    processor into a missing table, a poison message and two outcomes; hand their lines to
    CloudWatch and read them back with doctor."""
    import webhook_app
    from infra.doubles.lambda_runtime import LambdaContext
    from infra.doubles.webhook_signer import SigningKey, unsigned
    from plaidhooks.processor import WebhookProcessor
    from plaidhooks.processor_container import ProcessorContainer
    from plaidhooks.processor_endpoint import handle_batch
    from plaidhooks.queue import WebhookQueue
    from plaidhooks.receiver import WebhookReceiver
    from plaidhooks.receiver_container import ReceiverContainer
    from plaiditems.store import ItemStore

    key, forger = SigningKey.new("kid-plaid-1"), SigningKey.new("kid-plaid-1")
    queue = WebhookQueue(
        _Scripted(_refused("QueueDoesNotExist")), "https://sqs.example.com/1/q.fifo"
    )
    receiver = WebhookReceiver(_Secrets(), _Plaid(key.jwk()), queue)  # type: ignore[arg-type]
    monkeypatch.setattr(webhook_app, "CONTAINER", ReceiverContainer(receiver))
    login = {"error_code": "ITEM_LOGIN_REQUIRED"}
    webhook = {"webhook_type": "ITEM", "webhook_code": "ERROR", "item_id": "i1", "error": login}
    body = json.dumps(webhook).encode()
    for token, sent in [
        (None, body),
        (unsigned(body, key.kid), body),
        (forger.sign(body), body),
        (key.sign(body, iat=int(time.time()) - 600), body),
        (key.sign(body), body + b" "),
        (key.sign(body), body),  # verified; the queue does not exist
    ]:
        webhook_app.lambda_handler(_webhook_event(sent, token), LambdaContext())

    def record(message_id: str, body: str, signed_at: str | None = "100") -> dict[str, Any]:
        attributes = {"signed_at": {"stringValue": signed_at, "dataType": "Number"}}
        return {
            "messageId": message_id,
            "body": body,
            "attributes": {"MessageGroupId": message_id, "ApproximateReceiveCount": "2"},
            "messageAttributes": attributes if signed_at else {},
        }

    def processor(store: ItemStore) -> WebhookProcessor:
        return WebhookProcessor(store, _no_recheck, lambda: None)

    table_gone = processor(ItemStore(_Scripted(_refused("ResourceNotFoundException")), "t"))
    handle_batch(
        {"Records": [record("m-table", body.decode())]},
        ProcessorContainer(table_gone),
        LambdaContext(),
    )
    empty = processor(ItemStore(_Scripted({"Items": []}), "t"))
    sync = json.dumps({"webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE"})
    handle_batch(
        {
            "Records": [
                record("m-poison", body.decode(), signed_at=None),
                record("m-unknown-item", body.decode()),
                record("m-sync", sync),
            ]
        },
        ProcessorContainer(empty),
        LambdaContext(),
    )
    receiver_lines = output.logs("webhook_rejected") + output.logs("webhook_receive_failed")
    processor_lines = output.logs("webhook_failed") + output.logs("webhook_applied")
    assert len(receiver_lines) == 6 and len(processor_lines) == 4

    put_secret(good_secret())
    create_items_table()
    env = receiver_env(create_queues()[0])
    create_function(RECEIVER_NAME, env, RECEIVER)
    create_function(PROCESSOR_NAME, env, PROCESSOR)
    put_lines(RECEIVER_GROUP, receiver_lines)
    put_lines(PROCESSOR_GROUP, processor_lines)

    _code, text, receiver_doc = run_doctor("--function", RECEIVER_NAME)
    _code, _text, processor_doc = run_doctor("--function", PROCESSOR_NAME)

    assert sorted((r["reason"], r["count"]) for r in receiver_doc["rejections"]) == [
        ("bad_signature", 1),
        ("body_hash", 1),
        ("missing_header", 1),
        ("stale", 1),
        ("wrong_algorithm", 1),
    ]
    [queue_failure] = receiver_doc["failures"]
    assert (queue_failure["error_code"], queue_failure["cause"]) == ("MISCONFIGURED", NO_QUEUE)
    assert queue_failure["fix"] == FIX["WEBHOOK_QUEUE_URL"]
    assert queue_failure["request_id"].startswith("req-")  # the API's request id, as logged
    failures = {(r["error_code"], r["cause"], r["message_id"]) for r in processor_doc["failures"]}
    assert failures == {
        ("MISCONFIGURED", NO_TABLE, "m-table"),
        ("POISON_MESSAGE", "the message has no signed_at attribute", "m-poison"),
    }
    assert sorted((r["outcome"], r["count"]) for r in processor_doc["outcomes"]) == [
        ("item_unknown", 1),
        ("unknown_type", 1),
    ]
    assert "not-the-secret" not in text + json.dumps(receiver_doc) + json.dumps(processor_doc)


class _RefusingLambda:
    def list_event_source_mappings(self, **_kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        error: Any = {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}
        raise ClientError(error, "ListEventSourceMappings")


def test_an_event_source_the_caller_cannot_read_is_a_skip_naming_the_grant() -> None:
    from infra.doctor.event_source import check_event_source

    found = check_event_source("proc", "arn:aws:sqs:us-east-1:1:q.fifo", _RefusingLambda())

    assert (found.check, found.status) == ("event source", "skip")
    assert "ListEventSourceMappings proc: AccessDeniedException: not allowed" in found.detail
    assert found.fix == "grant lambda:ListEventSourceMappings to the caller, or check the region"


def test_doctor_explains_every_outcome_the_processor_logs() -> None:
    from infra.doctor.webhook_logs import OUTCOME_MEANINGS
    from plaidhooks.processor import OUTCOMES

    assert set(OUTCOME_MEANINGS) == OUTCOMES
    documented = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    (row,) = [
        line
        for line in documented.splitlines()
        if line.startswith("| processor | `webhook_applied`")
    ]
    listed = row.split("`outcome` (", 1)[1].split(")", 1)[0]
    assert set(listed.split(", ")) == OUTCOMES
