"""One DynamoDB, KMS or SQS call: traced like the secret read, and its failure as our problem.

Throttling, AWS's own 5xx and an unreachable endpoint are STORAGE_UNAVAILABLE (retryable: the
client already made its two attempts); what only an operator can fix (a table or key that does
not exist or may not be used, credentials that are not valid) is MISCONFIGURED, with a cause
that names the variable. Nothing here logs, and no message of AWS's reaches a cause: it can
quote the request.
"""

from collections.abc import Mapping
from typing import Any, Final

from linktoken.aws_clients import JsonCall
from linktoken.aws_credentials import CredentialRetrievalError
from linktoken.aws_json import AwsServiceError, AwsTransportError
from linktoken.problems import Problem
from linktoken.xray import Span

# What each code means for the operator, by service; any other code is STORAGE_UNAVAILABLE.
_MISCONFIGURED: Final[dict[str, str]] = {
    "ResourceNotFoundException": "does not exist in this region (check {variable})",
    "NotFoundException": "does not exist in this region (check {variable})",
    "AccessDeniedException": "may not be used by the function's role (IAM or key policy)",
    "DisabledException": "is disabled (check {variable})",
    "KMSInvalidStateException": "is pending deletion or not usable (check {variable})",
    "InvalidKeyUsageException": "is not a symmetric ENCRYPT_DECRYPT key (check {variable})",
    "UnrecognizedClientException": "refused the function's AWS credentials",
    "ValidationException": "refused the request as invalid (check {variable})",
    "QueueDoesNotExist": "does not exist in this region (check {variable})",
    "AWS.SimpleQueueService.NonExistentQueue": "does not exist in this region (check {variable})",
}
_NAMES: Final = {
    "dynamodb": ("the Items table", "ITEMS_TABLE"),
    "kms": ("the key", "ITEMS_KEY_ID"),
    "sqs": ("the webhook queue", "WEBHOOK_QUEUE_URL"),
}
_NO_SETUP: Final = frozenset({"NoCredentialsError", "NoRegionError", "PartialCredentialsError"})


def aws_call(
    client: JsonCall, span: Span, service: str, operation: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """The operation's answer; raises `AwsServiceError` for the caller to read (a failed
    condition) after recording it, or `Problem` for everything else."""
    try:
        with span(service) as sub:
            try:
                answer = client.call(operation, params)
            except AwsServiceError as exc:
                _record(sub, client, operation, exc.response)
                raise
            _record(sub, client, operation, answer)
            return answer
    except AwsServiceError:
        raise
    except (AwsTransportError, CredentialRetrievalError) as exc:
        raise storage_problem(service, operation, exc) from None


def storage_problem(service: str, operation: str, exc: Exception) -> Problem:
    """Our problem for a DynamoDB, KMS or SQS failure the caller does not handle itself."""
    what, variable = _NAMES.get(service, (service, service))
    code = exc.code if isinstance(exc, AwsServiceError) else type(exc).__name__
    if isinstance(exc, AwsServiceError) and code in _MISCONFIGURED:
        meaning = _MISCONFIGURED[code].format(variable=variable)
        return Problem("MISCONFIGURED", cause=f"{service} {operation}: {code}: {what} {meaning}")
    if str(exc) in _NO_SETUP or code in _NO_SETUP:
        return Problem(
            "MISCONFIGURED", cause=f"{service} {operation}: {exc}: no AWS credentials or region"
        )
    if isinstance(exc, AwsServiceError):
        return Problem("STORAGE_UNAVAILABLE", cause=f"{service} {operation} answered {code}")
    return Problem("STORAGE_UNAVAILABLE", cause=f"{service} {operation} unreachable: {exc}")


def _record(span: Any, client: JsonCall, operation: str, answer: Mapping[str, Any]) -> None:
    if span is None:
        return
    meta = answer.get("ResponseMetadata", {})
    span.aws.update(
        operation=operation,
        region=client.meta.region_name,
        request_id=meta.get("RequestId"),
        retries=meta.get("RetryAttempts", 0),
    )
    if "HTTPStatusCode" in meta:
        span.put_http_meta("status", meta["HTTPStatusCode"])
