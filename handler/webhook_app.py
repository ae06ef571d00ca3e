"""AWS Lambda entry point of WebhookReceiverFunction (`Handler: webhook_app.lambda_handler`,
the route POST /webhooks/plaid, without the JWT authorizer): wiring only, as `app.py` is.

Init (once per container): validate configuration and build the receiver (PyJWT and
`cryptography` load here, in this function only). Per request: Powertools' logging context and
metrics flush, the X-Ray subsegment when sampled, then
`plaidhooks.receiver_endpoint.handle_webhook`, which verifies, enqueues and answers, and never
raises.
"""

import gc

gc.disable()  # as in app.py: no collections during init, then the init objects frozen

import os  # noqa: E402
from typing import Any  # noqa: E402

from aws_lambda_powertools.logging import correlation_paths  # noqa: E402

from linktoken.endpoint import Invocation  # noqa: E402
from linktoken.observability import aws_span, logger, metrics, trace_span, tracer  # noqa: E402
from plaidhooks.receiver_container import build_receiver_container  # noqa: E402
from plaidhooks.receiver_endpoint import handle_webhook  # noqa: E402

CONTAINER = build_receiver_container(os.environ, span=trace_span, aws_span=aws_span)
if CONTAINER.config_error:
    logger.error("configuration_invalid", extra={"cause": CONTAINER.config_error})

try:  # SnapStart: no credential or connection may outlive a snapshot
    from snapshot_restore_py import register_after_restore  # provided by the Lambda runtime
except ImportError:  # pragma: no cover - outside Lambda and without the test package
    pass
else:
    register_after_restore(CONTAINER.reset)


# log_event=False explicitly: a webhook's body and headers are never logged.
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False
)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: Invocation) -> dict[str, Any]:
    return handle_webhook(event, context, CONTAINER)


gc.freeze()
gc.enable()
