"""AWS Lambda entry point (`Handler: app.lambda_handler`): wiring only.

Init (once per container, during Lambda's init phase): validate configuration and build the
service. Per request: Powertools' logging context (correlation id, cold start) and metrics
flush, the handler's X-Ray subsegment when the invocation is sampled (`linktoken.xray`, not
Powertools Tracer), then `endpoint.handle`, which maps every outcome to a response and never
raises.
"""

import gc

# Init creates ~75,000 objects the collector tracks (modules, classes, functions, botocore's
# models), all living as long as the container: collecting during init is wasted work
# (measured: docs/performance.md). Collector off until init is done, then everything frozen
# out of its sight and the collector back on (bottom of this file).
gc.disable()

import os  # noqa: E402
from typing import Any  # noqa: E402

from aws_lambda_powertools.logging import correlation_paths  # noqa: E402

from linktoken.container import build_container  # noqa: E402
from linktoken.endpoint import Invocation, handle  # noqa: E402
from linktoken.observability import aws_span, logger, metrics, trace_span, tracer  # noqa: E402

CONTAINER = build_container(os.environ, span=trace_span, aws_span=aws_span)
if CONTAINER.config_error:
    logger.error("configuration_invalid", extra={"cause": CONTAINER.config_error})

try:  # SnapStart: no credential, connection or jitter seed may outlive a snapshot
    from snapshot_restore_py import register_after_restore  # provided by the Lambda runtime
except ImportError:  # pragma: no cover - outside Lambda and without the test package
    pass
else:
    register_after_restore(CONTAINER.reset)


# log_event=False explicitly: POWERTOOLS_LOGGER_LOG_EVENT must not be able to log JWT claims.
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False
)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: Invocation) -> dict[str, Any]:
    return handle(event, context, CONTAINER)


# Everything allocated so far lives for the container's lifetime: move it out of the
# collector's sight so per-request collections stay short.
gc.freeze()
gc.enable()
