"""Powertools Logger and Metrics and the X-Ray tracer, configured once per container.

Logs: JSON with RFC 3339 timestamps (Lambda's log filter treats a line whose timestamp it cannot
read as INFO), no event logging, correlation id from the API Gateway request id. The service's
own level is POWERTOOLS_LOG_LEVEL, applied even where Lambda's log level (AWS_LAMBDA_LOG_LEVEL)
says otherwise: the template keeps Lambda's filter at INFO or below, so that it never drops the
EMF documents (they carry no level) while this logger still honours WARNING or ERROR. Library
logs (botocore, urllib3, requests) pass only as warnings and errors or as an allow-list of
lines that carry no credential, header or body (`linktoken.library_logs`), whatever any
level says.
Traces: X-Ray subsegments of sampled invocations only (`linktoken.xray`, no X-Ray SDK): the
handler, the Plaid call as a `remote` subsegment with the HTTP method, URL and status, and the
Secrets Manager call as an `aws` one with its operation, region, request id and status. Our
`X-Amzn-Trace-Id` header is never sent to Plaid. Responses and errors are not recorded.
Metrics: EMF in the log stream; per-code failures go out as single metrics so the `ErrorCode`
dimension does not split the latency metrics.
"""

import logging
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from linktoken.library_logs import gate_library_logs
from linktoken.xray import Tracer

SERVICE: Final = os.environ.get("POWERTOOLS_SERVICE_NAME") or "plaid-link-token"
NAMESPACE: Final = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "PlaidLinkToken"
FUNCTION_VERSION: Final = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION") or "$LATEST"
FUNCTION_NAME: Final = os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "local"


def _message_as_is(message: Any) -> Any:
    """Powertools parses every plain log message with this (json.loads by default: a raised
    and caught exception per line for plain text, ~20 % of a summary line's cost) and logs
    what it returns; this service's messages are event names, logged as written."""
    return message


logger = Logger(
    service=SERVICE,
    log_uncaught_exceptions=False,
    use_rfc3339=True,
    json_deserializer=_message_as_is,
)
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})


def service_log_level(environ: Mapping[str, str]) -> str:
    """The service logger's level: POWERTOOLS_LOG_LEVEL when it names a level, else INFO."""
    level = environ.get("POWERTOOLS_LOG_LEVEL", "").strip().upper()
    return level if level in _LEVELS else "INFO"


# Powertools lets Lambda's level win over POWERTOOLS_LOG_LEVEL; set the logger's own level.
logging.getLogger(logger.name).setLevel(service_log_level(os.environ))


# Before any library logs a line: what botocore, urllib3 and requests may print.
gate_library_logs()


def trace_span(name: str) -> AbstractContextManager[Any]:
    """An X-Ray subsegment for a call to a remote service (yields None when the invocation is
    not sampled); the caller puts the HTTP facts on it with `put_http_meta`."""
    return tracer.subsegment(f"## {name}", namespace="remote")


def aws_span(service: str) -> AbstractContextManager[Any]:
    """An X-Ray subsegment for an AWS call, named after the service as X-Ray's service map
    names it (`secretsmanager`); the caller adds the `aws` facts."""
    return tracer.subsegment(service, namespace="aws")


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def milliseconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)


def count_failure(code: str, metric: str = "LinkTokenFailed") -> None:
    """`metric` (`LinkTokenFailed`, `ItemExchangeFailed`, ...) with our error code as dimension
    (the codes of problems.py: bounded cardinality)."""
    _count_by(metric, "ErrorCode", code)


def count_release_regression() -> None:
    """`ReleaseRegression` per function and version, so a canary's alarm counts only the new
    version's failures: not those of the version it is replacing, nor those of another function
    of the stack whose version has the same number."""
    _count_by("ReleaseRegression", FunctionName=FUNCTION_NAME, FunctionVersion=FUNCTION_VERSION)


def count_by(name: str, dimension: str, value: str) -> None:
    """`name` with one dimension of a bounded set of values (a rejection's reason, ...)."""
    _count_by(name, dimension, value)


def _count_by(name: str, dimension: str | None = None, value: str = "", **more: str) -> None:
    """A count of 1 in a document of its own, so its dimensions split no other metric."""
    dimensions = {dimension: value, **more} if dimension else more
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as metric:
        for key, item in dimensions.items():
            metric.add_dimension(name=key, value=item)


def mask_token(token: str) -> str:
    """`link-sandbox-1b2c...7f3a` -> `link-sandbox-****7f3a`: enough to match, useless to replay."""
    parts = token.split("-", 2)
    head = f"{parts[0]}-{parts[1]}-" if len(parts) == 3 else ""
    return f"{head}****{token[-4:]}"
