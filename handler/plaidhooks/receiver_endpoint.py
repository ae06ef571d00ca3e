"""`POST /webhooks/plaid` in, one answer and one log line out: `webhook_received`,
`webhook_rejected` (with the failed check's `reason`) or `webhook_receive_failed`. No body,
header or token is logged: a webhook's fields are its type, code and item_id.
"""

from collections.abc import Mapping
from typing import Any, Final

from linktoken import observability as obs
from linktoken.endpoint import Invocation
from linktoken.http_event import header, raw_body, request_id_of, respond
from linktoken.problems import Problem
from plaidhooks.receiver import ReceiverOutcome
from plaidhooks.receiver_container import ReceiverContainer

VERIFICATION_HEADER: Final = "plaid-verification"


def handle_webhook(
    event: Any, invocation: Invocation, container: ReceiverContainer
) -> dict[str, Any]:
    """`POST /webhooks/plaid`; never raises."""
    request_id = request_id_of(event) or invocation.aws_request_id
    try:
        if container.receiver is None:
            raise Problem("MISCONFIGURED", cause=f"configuration: {container.config_error}")
        if not isinstance(event, Mapping) or event.get("version") != "2.0":
            raise Problem("INVALID_REQUEST", "Not an API Gateway HTTP API request.")
        body = raw_body(event)
        token = header(event, VERIFICATION_HEADER)
        outcome = container.receiver.receive(
            body, token, lambda: invocation.get_remaining_time_in_millis() / 1000
        )
    except Problem as problem:
        outcome = ReceiverOutcome(problem.status, problem)
    except Exception as exc:  # a bug before the receiver ran
        outcome = ReceiverOutcome(500, Problem("INTERNAL_ERROR"), bug=exc)
    obs.count("SecretsFetched", outcome.secret_reads)
    if outcome.problem is None:
        obs.count("WebhookReceived")
        obs.logger.info("webhook_received", extra=_present(outcome.log, status=200))
        return respond(200, {"received": True, "request_id": request_id})
    return _refused(outcome, request_id)


def _refused(outcome: ReceiverOutcome, request_id: str) -> dict[str, Any]:
    problem = outcome.problem or Problem("INTERNAL_ERROR")
    fields = _present(
        outcome.log,
        error_code=problem.code,
        status=problem.status,
        cause=problem.cause or problem.detail,
        **problem.log,
    )
    if outcome.rejected:
        obs.count_by("WebhookRejected", "Reason", outcome.rejected)
        obs.logger.warning("webhook_rejected", extra=fields)
    else:
        obs.count_failure(problem.code, "WebhookReceiveFailed")
        if problem.kind.release_regression:
            obs.count_release_regression()
        if outcome.bug is not None:
            fields["cause"] = "unexpected exception (a bug): see the traceback"
            obs.logger.exception("webhook_receive_failed", exc_info=outcome.bug, extra=fields)
        elif problem.status >= 500:
            obs.logger.error("webhook_receive_failed", extra=fields)
        else:
            obs.logger.warning("webhook_receive_failed", extra=fields)
    headers = {"Retry-After": str(problem.retry_after)} if problem.retry_after else {}
    return respond(problem.status, problem.body(request_id), headers)


def _present(log: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    return {k: v for k, v in {**log, **more}.items() if v is not None}
