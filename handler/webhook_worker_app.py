"""AWS Lambda entry point of WebhookProcessorFunction (`Handler:
webhook_worker_app.lambda_handler`, the webhook queue's consumer): wiring only.

Init: validate configuration and build the processor (the Items service's table, key, secret
and Plaid client; no PyJWT: webhooks arrive verified).
Per batch: Powertools' logging context and metrics flush, then
`plaidhooks.processor_endpoint.handle_batch`, which answers the partial-batch failures
(ReportBatchItemFailures) and never raises.
"""

import gc

gc.disable()  # as in app.py: no collections during init, then the init objects frozen

import os  # noqa: E402
from typing import Any  # noqa: E402

from linktoken.endpoint import Invocation  # noqa: E402
from linktoken.observability import aws_span, logger, metrics, trace_span, tracer  # noqa: E402
from plaidhooks.processor_container import build_processor_container  # noqa: E402
from plaidhooks.processor_endpoint import handle_batch  # noqa: E402

CONTAINER = build_processor_container(os.environ, span=trace_span, aws_span=aws_span)
if CONTAINER.config_error:
    logger.error("configuration_invalid", extra={"cause": CONTAINER.config_error})


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: Invocation) -> dict[str, Any]:
    return handle_batch(event, CONTAINER, context)


gc.freeze()
gc.enable()
