"""`make serve`'s event source mappings: one QueuePoller (sqs_poller.py) per SQS event of the
template whose queue this run has (local_env.py's `Backends.queues`) and whose function has a
worker pool, each invoking that pool with the event's BatchSize and FunctionResponseTypes.

    pollers = queue_pollers(template, backends, pools, os.environ)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.gateway.cfn_template import sqs_event_sources
from infra.gateway.lambda_workers import WorkerPool
from infra.gateway.sqs_poller import POLL_WAIT_S, QueuePoller, QueueSource
from infra.invoke.local_env import Backends, LocalSetupError


def sqs_client(endpoint: str, environ: Mapping[str, str]) -> Any:
    """botocore's SQS client for the poller: no retries of its own (the poller retries), a
    read timeout longer than its long poll."""
    import botocore.config
    import botocore.session

    return botocore.session.get_session().create_client(
        "sqs",
        endpoint_url=endpoint,
        region_name=environ["AWS_DEFAULT_REGION"],
        aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY"),
        config=botocore.config.Config(
            connect_timeout=2,
            read_timeout=POLL_WAIT_S + 10,
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )


def _queue_arn(client: Any, url: str) -> str:
    try:
        attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    except Exception as exc:  # the user's SQS endpoint: said, not a traceback
        raise LocalSetupError(
            f"the queue {url} does not answer GetQueueAttributes: {exc}"
        ) from None
    return str(attributes["Attributes"]["QueueArn"])


def queue_pollers(
    template: dict[str, Any],
    backends: Backends,
    pools: Mapping[str, WorkerPool],
    environ: Mapping[str, str],
) -> list[QueuePoller]:
    """The pollers of this run, not started (see the module docstring)."""
    pollers = []
    for source in sqs_event_sources(template):
        target = backends.queues.get(source.queue)
        pool = pools.get(source.function)
        if target is None or pool is None:
            continue
        client = sqs_client(target.endpoint, environ)
        bound = QueueSource(
            client=client,
            queue_url=target.url,
            queue_arn=target.arn or _queue_arn(client, target.url),
            region=environ["AWS_DEFAULT_REGION"],
            function=source.function,
            batch_size=source.batch_size,
            report_batch_item_failures=source.report_batch_item_failures,
        )
        pollers.append(QueuePoller(bound, pool.invoke))
    return pollers


def describe_source(source: QueueSource) -> str:
    """For the banner: which queue feeds which function, and how."""
    partial = ", partial batch failures" if source.report_batch_item_failures else ""
    return (
        f"{source.queue_name} -> {source.function}, batches of up to {source.batch_size}{partial}"
    )
