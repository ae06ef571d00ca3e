"""`POST /link-token`: one request in, one response and one summary log line out.

Every outcome is mapped here, in one place: a `Problem` becomes its RFC 9457 response, any
other exception becomes INTERNAL_ERROR with the stack trace in the log and none in the body.
"""

from dataclasses import replace
from typing import Any, Protocol

from linktoken import observability as obs
from linktoken.container import Container
from linktoken.http_event import parse_event, request_id_of, respond
from linktoken.link_options import parse_link_options
from linktoken.plaid_client import LinkToken
from linktoken.plaid_request import stack_webhook_url
from linktoken.problems import Problem
from linktoken.service import Outcome


class Invocation(Protocol):
    """The part of the Lambda context this module uses."""

    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


def handle(event: Any, invocation: Invocation, container: Container) -> dict[str, Any]:
    """Answer one API Gateway event; never raises."""
    request_id = request_id_of(event) or invocation.aws_request_id
    service = container.service
    log: dict[str, Any] = {}
    sub: str | None = None
    try:
        if service is None:
            raise Problem("MISCONFIGURED", cause=f"configuration: {container.config_error}")
        request = parse_event(event)
        sub = request.sub
        options = parse_link_options(request.body, service.config)
        options = replace(options, stack_webhook=stack_webhook_url(request.domain, service.config))
        log.update(platform=options.platform, products=list(options.products))
        outcome = service.create(
            request.sub, options, lambda: invocation.get_remaining_time_in_millis() / 1000
        )
    except Problem as problem:  # before the service ran: nothing read, Plaid not called
        _with_user_ref(log, container, sub)
        return _secret_reads(_failed(problem, request_id, log, container), 0)
    except Exception as exc:  # a bug before the service ran: log the trace, answer a bare 500
        _with_user_ref(log, container, sub)
        return _secret_reads(_bug(exc, request_id, log, container), 0)
    if outcome.user_ref is not None:
        log["user_ref"] = outcome.user_ref
    if outcome.token is not None:
        obs.count("SecretsFetched", outcome.secret_reads)
        return _created(outcome.token, request_id, log, container)
    if outcome.bug is not None:
        answer = _bug(outcome.bug, request_id, log, container)
    else:
        failure = outcome.problem or Problem("INTERNAL_ERROR")  # the service always sets one
        answer = _failed(failure, request_id, log, container, outcome)
    return _secret_reads(answer, outcome.secret_reads)


def _secret_reads(answer: dict[str, Any], reads: int) -> dict[str, Any]:
    """Count the secret reads after a failure's own metrics (before a success's): every
    invocation's EMF document carries this metric, so it is always well formed."""
    obs.count("SecretsFetched", reads)
    return answer


def _with_user_ref(log: dict[str, Any], container: Container, sub: str | None) -> None:
    """The user's pseudonym when the service can give one (`LinkTokenService.user_ref`)."""
    ref = container.service.user_ref(sub) if container.service and sub is not None else None
    if ref is not None:
        log["user_ref"] = ref


def _bug(
    exc: Exception, request_id: str, log: dict[str, Any], container: Container
) -> dict[str, Any]:
    obs.logger.exception(
        "link_token_failed",
        exc_info=exc,
        extra={
            "error_code": "INTERNAL_ERROR",
            "status": 500,
            "cause": "unexpected exception (a bug): see the traceback",
            **log,
        },
    )
    return _failed(Problem("INTERNAL_ERROR"), request_id, log, container, logged=True)


def _created(
    token: LinkToken, request_id: str, log: dict[str, Any], container: Container
) -> dict[str, Any]:
    obs.count("LinkTokenCreated")
    obs.milliseconds("PlaidLatency", token.latency_ms)
    obs.count("PlaidRetries", token.attempts - 1)
    _annotate(container, "OK")
    obs.logger.info(
        "link_token_created",
        extra={
            **log,
            "status": 200,
            "link_token": obs.mask_token(token.link_token),
            "expiration": token.expiration,
            "plaid_request_id": token.request_id,
            "attempts": token.attempts,
            "plaid_latency_ms": token.latency_ms,
        },
    )
    body = {
        "link_token": token.link_token,
        "expiration": token.expiration,
        "request_id": request_id,
        "plaid_request_id": token.request_id,
    }
    return respond(200, body)


def _failed(
    problem: Problem,
    request_id: str,
    log: dict[str, Any],
    container: Container,
    outcome: Outcome | None = None,
    logged: bool = False,
) -> dict[str, Any]:
    obs.count_failure(problem.code)
    if problem.kind.release_regression:
        obs.count_release_regression()
    # What the Plaid calls cost, when Plaid was called.
    spent: dict[str, Any] = {}
    if outcome is not None and outcome.attempts is not None:
        spent = {"attempts": outcome.attempts, "plaid_latency_ms": outcome.plaid_latency_ms}
        obs.count("PlaidRetries", max(outcome.attempts - 1, 0))
        obs.milliseconds("PlaidLatency", outcome.plaid_latency_ms or 0.0)
    _annotate(container, problem.code)
    if not logged:
        fields = {
            **log,
            "error_code": problem.code,
            "status": problem.status,
            "cause": problem.cause or problem.detail,
            **{k: v for k, v in problem.log.items() if v is not None},
            **spent,
        }
        level = obs.logger.error if problem.status >= 500 else obs.logger.warning
        level("link_token_failed", extra=fields)
    headers = {"Retry-After": str(problem.retry_after)} if problem.retry_after else {}
    return respond(problem.status, problem.body(request_id), headers)


def _annotate(container: Container, outcome: str) -> None:
    config = container.config
    obs.tracer.put_annotation("plaid_env", config.plaid_env if config else "unknown")
    obs.tracer.put_annotation("outcome", outcome)
