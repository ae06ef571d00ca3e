"""infra/gateway/serve.py's function pools, without starting a worker: one pool per function a
route or a queue invokes, each with its own Handler, CodeUri and Timeout
(tests/e2e/test_serve.py runs them); and the webhook URL the stand-in is given."""

from __future__ import annotations

import pytest

from infra.gateway.cfn_template import load_template, parse_template
from infra.gateway.serve import configure_webhook_url, function_pools, webhook_url
from infra.invoke.local_env import ROOT

TEMPLATE = """
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  Slow:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: handler/
      Handler: slow_app.lambda_handler
      Timeout: 45
      Events:
        Create: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: /things}}
  Quick:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: other/
      Handler: pkg.quick.handle
      Timeout: 3
      Events:
        List: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: GET, Path: /things}}
        Drop: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: DELETE, Path: "/things/{id}"}}
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: handler/
      Handler: consume.handler
      Timeout: 30
      Events:
        Queued: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
  Nightly:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: handler/
      Handler: nightly.handler
      Timeout: 60
      Events:
        Daily: {Type: Schedule, Properties: {Schedule: rate(1 day)}}
  Queue:
    Type: AWS::SQS::Queue
"""


def test_each_function_gets_one_pool_of_its_own_handler_folder_and_timeout() -> None:
    template = parse_template(TEMPLATE)
    pools = function_pools(template, size=3)
    assert list(pools) == ["Slow", "Quick", "Consumer"], "one pool per function, not per route"
    slow, quick = pools["Slow"], pools["Quick"]
    assert (slow.handler, slow.timeout_s, slow.size, slow.name) == (
        "slow_app.lambda_handler",
        45,
        3,
        "Slow",
    )
    assert slow.handler_dir == str(ROOT / "handler")
    assert (quick.handler, quick.timeout_s, quick.handler_dir) == (
        "pkg.quick.handle",
        3,
        str(ROOT / "other"),
    )


def test_a_code_uri_that_is_not_a_local_folder_is_refused() -> None:
    template = parse_template(
        TEMPLATE.replace("CodeUri: other/", "CodeUri: {Bucket: b, Key: k.zip}")
    )
    with pytest.raises(ValueError, match="Quick: CodeUri"):
        function_pools(template, size=1)


def test_a_function_only_a_queue_invokes_gets_a_pool_and_one_of_neither_none() -> None:
    pools = function_pools(parse_template(TEMPLATE), size=2)
    consumer = pools["Consumer"]
    assert (consumer.handler, consumer.timeout_s, consumer.size) == ("consume.handler", 30, 2)
    assert "Nightly" not in pools, "no route, no queue: nothing local invokes it"


def test_the_templates_five_functions_get_their_handlers_and_timeouts() -> None:
    pools = function_pools(load_template(), size=1)
    assert {name: (pool.handler, pool.timeout_s) for name, pool in pools.items()} == {
        "LinkTokenFunction": ("app.lambda_handler", 20),
        "ItemExchangeFunction": ("exchange_app.lambda_handler", 45),
        "ItemsFunction": ("items_app.lambda_handler", 20),
        "WebhookReceiverFunction": ("webhook_app.lambda_handler", 10),
        # No route: the webhook queue's event source mapping invokes it.
        "WebhookProcessorFunction": ("webhook_worker_app.lambda_handler", 60),
    }
    assert {pool.handler_dir for pool in pools.values()} == {str(ROOT / "handler/")}


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:3000/webhooks/plaid"),
        ("localhost", "http://localhost:3000/webhooks/plaid"),
        ("::1", "http://[::1]:3000/webhooks/plaid"),
        ("0.0.0.0", "http://127.0.0.1:3000/webhooks/plaid"),  # noqa: S104 - the wildcard: via loopback
        ("::", "http://[::1]:3000/webhooks/plaid"),
        ("192.168.1.20", None),  # bound to a network address only: loopback cannot reach it
    ],
)
def test_the_standin_is_given_this_servers_own_receiver_on_loopback(
    host: str, url: str | None
) -> None:
    assert webhook_url(host, 3000, "/webhooks/plaid") == url


def test_with_the_standin_the_workers_are_told_this_servers_receiver() -> None:
    environ = {"PLAID_WEBHOOK_URL": "", "PLAID_ENV": "sandbox"}  # infra/env.json's defaults
    said = configure_webhook_url(environ, standin_in_use=True, host="127.0.0.1", port=4321)
    assert environ["PLAID_WEBHOOK_URL"] == "http://127.0.0.1:4321/webhooks/plaid"
    assert said == (
        "the stand-in posts them to http://127.0.0.1:4321/webhooks/plaid (PLAID_WEBHOOK_URL of"
        " new Items' link tokens)"
    )
    environ = {"PLAID_WEBHOOK_PATH": "/hooks/in"}
    configure_webhook_url(environ, standin_in_use=True, host="127.0.0.1", port=4321)
    assert environ["PLAID_WEBHOOK_URL"] == "http://127.0.0.1:4321/hooks/in", "the template's path"


def test_with_plaid_sandbox_no_webhook_url_is_set_and_the_banner_says_why() -> None:
    environ = {"PLAID_WEBHOOK_URL": ""}
    said = configure_webhook_url(environ, standin_in_use=False, host="127.0.0.1", port=4321)
    assert environ == {"PLAID_WEBHOOK_URL": ""}
    assert said == (
        "Plaid cannot reach this machine, so its webhooks will not arrive; an Item's health"
        " comes from POST /items/{item_id}/refresh"
    )


@pytest.mark.parametrize(
    ("environ", "host", "said"),
    [
        (
            {"PLAID_WEBHOOK_URL": "https://hooks.example.com/plaid"},
            "127.0.0.1",
            "Plaid is told https://hooks.example.com/plaid (PLAID_WEBHOOK_URL, yours)",
        ),
        (
            {"PLAID_ENV": "production"},
            "127.0.0.1",
            "none: PLAID_ENV=production takes no http:// webhook URL",
        ),
        (
            {},
            "192.168.1.20",
            "none arrive: the stand-in posts to loopback only, and 192.168.1.20 is not",
        ),
    ],
)
def test_a_webhook_url_is_not_made_where_it_would_be_wrong(
    environ: dict[str, str], host: str, said: str
) -> None:
    before = dict(environ)
    assert configure_webhook_url(environ, standin_in_use=True, host=host, port=4321) == said
    assert environ == before
