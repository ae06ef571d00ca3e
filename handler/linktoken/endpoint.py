"""`POST /link-token`: one request in, one response and one summary log line out.

Every outcome is mapped here, in one place: a `Problem` becomes its RFC 9457 response, any
other exception becomes INTERNAL_ERROR with the stack trace in the log and none in the body.
"""

from typing import Any, Protocol

from linktoken import observability as obs
from linktoken.http_event import parse_event, request_id_of, respond
from linktoken.identity import user_ref
from linktoken.link_options import parse_link_options
from linktoken.plaid_client import LinkToken
from linktoken.problems import Problem
from linktoken.runtime import Runtime


class Invocation(Protocol):
    """The part of the Lambda context this module uses."""

    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


def handle(event: Any, invocation: Invocation, runtime: Runtime) -> dict[str, Any]:
    """Answer one API Gateway event; never raises."""
    request_id = request_id_of(event) or invocation.aws_request_id
    service = runtime.service
    reads_before = service.secrets.reads if service else 0
    log: dict[str, Any] = {}
    sub: str | None = None
    try:
        if service is None:
            raise Problem(
                "MISCONFIGURED",
                "The service is misconfigured; its operators have the details.",
                cause=f"configuration: {runtime.config_error}",
            )
        request = parse_event(event)
        sub = request.sub
        options = parse_link_options(request.body, service.config)
        log.update(platform=options.platform, products=list(options.products))
        token = service.create(
            request.sub, options, lambda: invocation.get_remaining_time_in_millis() / 1000
        )
    except Problem as problem:
        return _failed(problem, request_id, _with_user_ref(log, sub, runtime), runtime)
    except Exception:  # a bug: log the trace, answer a bare 500
        _with_user_ref(log, sub, runtime)
        obs.logger.exception(
            "link_token_failed",
            extra={
                "error_code": "INTERNAL_ERROR",
                "status": 500,
                "cause": "unexpected exception (a bug): see the traceback",
                **log,
            },
        )
        return _failed(
            Problem("INTERNAL_ERROR", "Unexpected error; report the request_id."),
            request_id,
            log,
            runtime,
            logged=True,
        )
    finally:
        # Always at least this metric, so every invocation's EMF document is well formed.
        reads = service.secrets.reads - reads_before if service else 0
        obs.count("SecretsFetched", reads)
    return _created(token, request_id, _with_user_ref(log, sub, runtime), runtime)


def _with_user_ref(log: dict[str, Any], sub: str | None, runtime: Runtime) -> dict[str, Any]:
    """Add the user's pseudonym, keyed when the secret has a key. Before the secret was ever
    read, whether it has one is unknown: then the line carries no `user_ref` rather than an
    unkeyed hash that a list of emails could reverse."""
    credentials = runtime.service.secrets.cached if runtime.service else None
    if sub is not None and credentials is not None:
        log["user_ref"] = user_ref(sub, credentials.user_id_hmac_key)
    return log


def _created(
    token: LinkToken, request_id: str, log: dict[str, Any], runtime: Runtime
) -> dict[str, Any]:
    obs.count("LinkTokenCreated")
    obs.milliseconds("PlaidLatency", token.latency_ms)
    obs.count("PlaidRetries", token.attempts - 1)
    _annotate(runtime, "OK")
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
    runtime: Runtime,
    logged: bool = False,
) -> dict[str, Any]:
    obs.count_failure(problem.code)
    if problem.kind.release_regression:
        obs.count_release_regression()
    if "attempts" in problem.log:
        obs.count("PlaidRetries", max(problem.log["attempts"] - 1, 0))
        obs.milliseconds("PlaidLatency", problem.log["plaid_latency_ms"])
    _annotate(runtime, problem.code)
    if not logged:
        fields = {
            **log,
            "error_code": problem.code,
            "status": problem.status,
            "cause": problem.cause or problem.detail,
            **{k: v for k, v in problem.log.items() if v is not None},
        }
        level = obs.logger.error if problem.status >= 500 else obs.logger.warning
        level("link_token_failed", extra=fields)
    headers = {"Retry-After": str(problem.retry_after)} if problem.retry_after else {}
    return respond(problem.status, problem.body(request_id), headers)


def _annotate(runtime: Runtime, outcome: str) -> None:
    config = runtime.config
    obs.tracer.put_annotation("plaid_env", config.plaid_env if config else "unknown")
    obs.tracer.put_annotation("outcome", outcome)
