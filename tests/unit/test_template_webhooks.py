"""template.yaml's webhook resources: the receiver without the JWT authorizer and with only
what it needs (the secret, SendMessage); the FIFO queue, its dead-letter queue and the
processor that consumes it with partial-batch failures; alarms and saved queries.

They read the template as data and need no AWS or SAM CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.gateway.cfn_template import load_template
from plaidhooks.receiver_container import KEY_LOOKUP_POLICY

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PLAID_WAITS_SECONDS = 10  # Plaid's webhook delivery timeout


def props(name: str) -> dict[str, Any]:
    props: dict[str, Any] = RESOURCES[name]["Properties"]
    return props


def statements(role: str) -> list[dict[str, Any]]:
    (policy,) = props(role)["Policies"]
    return [s for s in policy["PolicyDocument"]["Statement"] if "Fn::If" not in s]


def actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_the_receiver_route_has_no_jwt_authorizer_and_every_other_route_keeps_it() -> None:
    routes = {
        (name, event_name): event["Properties"]
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event_name, event in resource["Properties"].get("Events", {}).items()
        if event["Type"] == "HttpApi"
    }
    open_routes = {key for key, route in routes.items() if "Auth" in route}
    assert open_routes == {("WebhookReceiverFunction", "PlaidWebhook")}
    webhook = routes[("WebhookReceiverFunction", "PlaidWebhook")]
    assert webhook["Auth"] == {"Authorizer": "NONE"}
    assert (webhook["Method"], webhook["Path"]) == ("POST", "/webhooks/plaid")
    assert props("LinkTokenApi")["Auth"]["DefaultAuthorizer"] == "JwtAuthorizer"


def test_the_receiver_answers_within_plaids_ten_seconds() -> None:
    receiver = props("WebhookReceiverFunction")
    assert receiver["Timeout"] <= PLAID_WAITS_SECONDS
    # One key lookup attempt fits with room for the secret read and SendMessage; the Plaid
    # client starts a second only if it still fits the remaining time.
    assert KEY_LOOKUP_POLICY.attempt_seconds <= receiver["Timeout"] / 2
    assert receiver["Handler"] == "webhook_app.lambda_handler"


def test_the_receiver_may_read_the_secret_and_send_to_the_queue_only() -> None:
    granted = {frozenset(actions(s)) for s in statements("WebhookReceiverFunctionRole")}
    assert granted == {
        frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}),
        frozenset({"secretsmanager:GetSecretValue"}),
        frozenset({"sqs:SendMessage"}),
    }
    (send,) = [
        s for s in statements("WebhookReceiverFunctionRole") if "sqs:SendMessage" in actions(s)
    ]
    assert send["Resource"] == {"Fn::GetAtt": ["WebhookQueue", "Arn"]}


def test_the_processor_may_consume_the_queue_read_items_update_health_and_unseal_only() -> None:
    by_sid = {s["Sid"]: s for s in statements("WebhookProcessorFunctionRole")}
    assert set(by_sid) == {
        "WriteOwnLogGroup",
        "ConsumeWebhooks",
        "FindItemsById",
        "ReadItemAndUpdateHealth",
        "ReadPlaidSecret",
        "UnsealAccessTokens",
    }  # and, with PlaidSecretKmsKeyArn, DecryptPlaidSecret (an Fn::If, left out here)
    assert actions(by_sid["ConsumeWebhooks"]) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
    }
    assert by_sid["FindItemsById"]["Resource"] == {"Fn::Sub": "${ItemsTable.Arn}/index/ByItemId"}
    assert actions(by_sid["FindItemsById"]) == {"dynamodb:Query"}
    # GetItem: the processor reads the Item (is it removed? its sealed token) before writing.
    assert actions(by_sid["ReadItemAndUpdateHealth"]) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert by_sid["ReadItemAndUpdateHealth"]["Resource"] == {"Fn::GetAtt": ["ItemsTable", "Arn"]}
    # The login pair is confirmed with /item/get: the secret, and unsealing one Item's token.
    assert actions(by_sid["ReadPlaidSecret"]) == {"secretsmanager:GetSecretValue"}
    unseal = by_sid["UnsealAccessTokens"]
    assert actions(unseal) == {"kms:Decrypt"}
    assert unseal["Resource"] == {"Fn::GetAtt": ["ItemsKey", "Arn"]}
    assert unseal["Condition"] == {
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["item_id", "owner"]},
        "Null": {"kms:EncryptionContext:item_id": "false", "kms:EncryptionContext:owner": "false"},
    }
    every = {a for s in by_sid.values() for a in actions(s)}
    assert not every & {"kms:Encrypt", "dynamodb:PutItem", "dynamodb:DeleteItem"}


def test_the_queue_is_fifo_deduplicated_by_body_with_a_dead_letter_queue() -> None:
    queue, dlq = props("WebhookQueue"), props("WebhookDeadLetterQueue")
    assert queue["FifoQueue"] is True and dlq["FifoQueue"] is True
    assert queue["ContentBasedDeduplication"] is True
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    # Lambda's event source mapping asks for a visibility timeout of 6x the function's timeout.
    assert queue["VisibilityTimeout"] >= 6 * props("WebhookProcessorFunction")["Timeout"]
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]


def test_the_processor_consumes_the_queue_with_partial_batch_failures() -> None:
    processor = props("WebhookProcessorFunction")
    assert processor["Handler"] == "webhook_worker_app.lambda_handler"
    (event,) = processor["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["WebhookQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["BatchSize"] <= 10  # FIFO's maximum


def test_alarms_watch_the_dead_letter_queue_and_rejections() -> None:
    dead = props("WebhookDeadLettersAlarm")
    assert dead["Namespace"] == "AWS/SQS"
    assert dead["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dead["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["WebhookDeadLetterQueue", "QueueName"]}}
    ]
    assert dead["Threshold"] == 1
    rejected = props("WebhookRejectedAlarm")
    assert rejected["MetricName"] == "WebhookRejected"
    assert rejected["Namespace"] == {"Ref": "MetricsNamespace"}
    for name in ("WebhookReceiverFunction", "WebhookProcessorFunction"):
        alarms = props(name)["DeploymentPreference"]["Alarms"]
        assert alarms == [{"Ref": f"{name}ErrorsAlarm"}]


def test_saved_queries_read_the_webhook_lines() -> None:
    outcomes = props("WebhookOutcomesQuery")
    assert outcomes["LogGroupNames"] == [{"Ref": "WebhookProcessorFunctionLogGroup"}]
    assert '"webhook_applied"' in outcomes["QueryString"]
    rejections = props("WebhookRejectionsQuery")
    assert rejections["LogGroupNames"] == [{"Ref": "WebhookReceiverFunctionLogGroup"}]
    assert 'message = "webhook_rejected"' in rejections["QueryString"]
    assert "by reason" in rejections["QueryString"]
