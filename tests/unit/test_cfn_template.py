"""infra/gateway/cfn_template.py's readers of the functions: their routes (with their
authorizer), timeouts, SQS event sources, queues and table, on small templates written here
(tests/unit/test_template_items.py reads the real one)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.gateway.cfn_template import (
    LINK_TOKEN_FUNCTION,
    FunctionRoute,
    LambdaFunction,
    QueueDefinition,
    SqsEventSource,
    function_routes,
    function_timeout_seconds,
    invoked_functions,
    load_template,
    parse_template,
    queue_definition,
    queue_url_variables,
    sqs_event_sources,
    table_definition,
)

TEMPLATE = """
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers: {Jwt: {IdentitySource: $request.header.Authorization}}
  LinkTokenFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.lambda_handler
      Timeout: 20
      Events:
        Create:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: post, Path: /link-token}
  ItemsFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: items_app.lambda_handler
      Timeout: "25"
      Events:
        List:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: /items}
        Nightly:
          Type: Schedule
          Properties: {Schedule: rate(1 day)}
        Remove:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: DELETE, Path: "/items/{item_id}"}
  Quiet:
    Type: AWS::Serverless::Function
    Properties: {Handler: quiet.handler, Timeout: 3}
  Table:
    Type: AWS::DynamoDB::Table
"""

HOOKS = """
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties: {Auth: {DefaultAuthorizer: Jwt}}
  Other:
    Type: AWS::Serverless::HttpApi
  Receiver:
    Type: AWS::Serverless::Function
    Properties:
      Handler: hook.handler
      Timeout: 10
      Environment: {Variables: {QUEUE_URL: !Ref Queue, TABLE: !Ref Table, PLAIN: x}}
      Events:
        Hook:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: POST, Path: /hook, Auth: {Authorizer: NONE}}
        Named:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: /named, Auth: {Authorizer: Jwt}}
        Elsewhere:
          Type: HttpApi
          Properties: {ApiId: !Ref Other, Method: GET, Path: /elsewhere}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: workers/
      Handler: work.handler
      Timeout: 30
      Environment: {Variables: {QUEUE_URL: !Ref Queue}}
      Events:
        Queued:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            BatchSize: 7
            FunctionResponseTypes: [ReportBatchItemFailures]
        Plain:
          Type: SQS
          Properties: {Queue: !GetAtt Dead.Arn}
  Nightly:
    Type: AWS::Serverless::Function
    Properties:
      Handler: nightly.handler
      Timeout: 60
      Events: {Daily: {Type: Schedule, Properties: {Schedule: rate(1 day)}}}
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub ${AWS::StackName}-q.fifo
      FifoQueue: true
      ContentBasedDeduplication: true
      VisibilityTimeout: 180
      MessageRetentionPeriod: 345600
      Tags: [{Key: a, Value: b}]
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dead.Arn, maxReceiveCount: 5}
  Dead:
    Type: AWS::SQS::Queue
    Properties: {FifoQueue: true, SqsManagedSseEnabled: false}
  Table:
    Type: AWS::DynamoDB::Table
"""


def template(text: str = TEMPLATE) -> dict[str, Any]:
    return parse_template(text)


def test_routes_are_every_functions_http_api_events_in_template_order() -> None:
    assert function_routes(template()) == [
        FunctionRoute("POST", "/link-token", "LinkTokenFunction", "app.lambda_handler", 20),
        FunctionRoute("GET", "/items", "ItemsFunction", "items_app.lambda_handler", 25),
        FunctionRoute(
            "DELETE", "/items/{item_id}", "ItemsFunction", "items_app.lambda_handler", 25
        ),
    ]


def test_a_route_key_is_api_gateways() -> None:
    (_, _, remove) = function_routes(template())
    assert remove.route_key == "DELETE /items/{item_id}"


def test_a_route_two_events_claim_is_refused() -> None:
    twice = TEMPLATE.replace("Method: GET, Path: /items}", "Method: POST, Path: /link-token}")
    with pytest.raises(ValueError, match=r"POST /link-token"):
        function_routes(template(twice))


def test_a_template_without_functions_has_no_routes() -> None:
    assert function_routes(template("Resources: {}")) == []


def test_timeouts_are_read_per_function_the_link_token_one_by_default() -> None:
    assert LINK_TOKEN_FUNCTION == "LinkTokenFunction"
    assert function_timeout_seconds(template()) == 20
    assert function_timeout_seconds(template(), "ItemsFunction") == 25
    # Not "the first function": the link-token one, wherever it sits.
    reordered = template()
    reordered["Resources"] = dict(reversed(list(reordered["Resources"].items())))
    assert function_timeout_seconds(reordered) == 20


@pytest.mark.parametrize("name", ["Nope", "Table"])
def test_a_timeout_of_something_that_is_not_a_function_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        function_timeout_seconds(template(), name)


def test_the_local_tables_are_created_as_the_stack_creates_the_items_table() -> None:
    assert table_definition(load_template()) == {
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "item_id", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        # The webhook processor's Query needs it locally too.
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "ByItemId",
                "KeySchema": [{"AttributeName": "item_id", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    }


def test_a_tables_cloudformation_only_settings_are_left_out_of_create_table() -> None:
    table = parse_template("""
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      GlobalSecondaryIndexes:
        - IndexName: I
          KeySchema: [{AttributeName: pk, KeyType: HASH}]
          Projection: {ProjectionType: ALL}
          ContributorInsightsSpecification: {Enabled: true}
""")
    assert table_definition(table, "T") == {
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "I",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def test_a_route_has_the_apis_default_authorizer_unless_it_says_none() -> None:
    assert [(r.route_key, r.authorized) for r in function_routes(template(HOOKS))] == [
        ("POST /hook", False),  # Auth: {Authorizer: NONE}
        ("GET /named", True),  # its own authorizer
        ("GET /elsewhere", False),  # an API without a default authorizer
    ]
    assert all(route.authorized for route in function_routes(template()))


def test_the_functions_a_route_or_a_queue_invokes_are_started_with_their_settings() -> None:
    assert invoked_functions(template(HOOKS)) == [
        LambdaFunction("Receiver", "hook.handler", 10, "handler/"),
        LambdaFunction("Worker", "work.handler", 30, "workers/"),
    ], "a function of no route and no queue (Schedule) is not started"


def test_a_function_whose_code_is_not_a_local_folder_is_refused() -> None:
    remote = HOOKS.replace("CodeUri: workers/", "CodeUri: {Bucket: b, Key: k.zip}")
    with pytest.raises(ValueError, match="Worker: CodeUri"):
        invoked_functions(template(remote))


def test_sqs_events_name_their_queue_batch_size_and_partial_failures() -> None:
    assert sqs_event_sources(template(HOOKS)) == [
        SqsEventSource("Worker", "Queue", batch_size=7, report_batch_item_failures=True),
        SqsEventSource("Worker", "Dead", batch_size=10, report_batch_item_failures=False),
    ]
    by_url = HOOKS.replace("Queue: !GetAtt Queue.Arn", "Queue: arn:aws:sqs:x")
    with pytest.raises(ValueError, match="not !GetAtt"):
        sqs_event_sources(template(by_url))


def test_a_queue_is_created_with_its_attributes_and_its_redrive_policy() -> None:
    assert queue_definition(template(HOOKS), "Queue") == QueueDefinition(
        attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "true",
            "MessageRetentionPeriod": "345600",
            "VisibilityTimeout": "180",
        },
        dead_letter_queue="Dead",
        max_receive_count=5,
    ), "QueueName and Tags are the local run's own"
    assert queue_definition(template(HOOKS), "Dead") == QueueDefinition(
        {"FifoQueue": "true", "SqsManagedSseEnabled": "false"}, None, None
    )
    with pytest.raises(ValueError, match="no AWS::SQS::Queue Table"):
        queue_definition(template(HOOKS), "Table")
    computed = HOOKS.replace("VisibilityTimeout: 180", "VisibilityTimeout: !Ref Visibility")
    with pytest.raises(ValueError, match="VisibilityTimeout"):
        queue_definition(template(computed), "Queue")


def test_the_functions_learn_each_queues_url_from_the_variable_that_refers_to_it() -> None:
    assert queue_url_variables(template(HOOKS)) == {"Queue": "QUEUE_URL"}, "not the table's"


def test_the_templates_webhook_queue_is_what_the_local_runs_create() -> None:
    real = load_template()
    assert queue_url_variables(real) == {"WebhookQueue": "WEBHOOK_QUEUE_URL"}
    assert sqs_event_sources(real) == [
        SqsEventSource("WebhookProcessorFunction", "WebhookQueue", 10, True)
    ]
    queue = queue_definition(real, "WebhookQueue")
    assert (queue.dead_letter_queue, queue.max_receive_count) == ("WebhookDeadLetterQueue", 5)
    assert queue.attributes["FifoQueue"] == queue.attributes["ContentBasedDeduplication"] == "true"
