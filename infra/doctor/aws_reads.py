"""One read of an AWS resource a deployed function names (a table, a key, a queue), with the
caller's AWS configuration, through the service's own client (`linktoken.aws_clients`,
`plaiditems.aws_calls`): the same endpoint rules, and a fault named in the words the function's
log line uses (`storage_problem`).

What the caller may not or cannot read (no permission, throttled, unreachable) raises `Skip`
with the finding saying so: the function's role is another principal. What AWS says is not
there raises `Missing` with the function's cause.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from infra.doctor.findings import Finding
from linktoken.aws_clients import JsonCall, ServiceSpec, json_client
from linktoken.aws_json import AwsServiceError
from linktoken.problems import Problem
from linktoken.xray import no_span
from plaiditems.aws_calls import aws_call, storage_problem

# Answers about the caller's own credentials or permissions, not the function's: not checked.
CALLERS: Final = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",  # SQS's
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "IncompleteSignature",
        "InvalidClientTokenId",
    }
)

ClientFactory = Callable[[ServiceSpec], JsonCall]


def default_client(spec: ServiceSpec) -> JsonCall:
    """The service's client for `spec`, on the caller's environment (profile, region,
    AWS_ENDPOINT_URL)."""
    return json_client(spec)


class Skip(Exception):
    """The caller could not read it; the finding says why."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.detail)
        self.finding = finding


class Missing(Exception):
    """AWS says it is not there (or not usable as named); `cause` in the function's words."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def client(
    factory: ClientFactory, spec: ServiceSpec, group: str, check: str, operation: str
) -> JsonCall:
    """`factory`'s client; `Skip` (saying `operation` was not made) when there is none."""
    try:
        return factory(spec)
    except Exception as exc:  # botocore's client without a region, a malformed endpoint...
        why = f"{type(exc).__name__}: {exc}"
        grant = f"{spec.signing_name}:{operation}"
        raise Skip(not_read(group, check, why, grant)) from None


def read(
    call: JsonCall, service: str, operation: str, params: dict[str, Any], group: str, check: str
) -> dict[str, Any]:
    """One read through the service's call; raises `Skip` for what the caller may not read,
    `Missing` (with the cause the function's log line would give) for the rest."""
    grant = f"{service}:{operation}"
    try:
        return aws_call(call, no_span, service, operation, params)
    except AwsServiceError as exc:
        if exc.code in CALLERS:
            raise Skip(
                not_read(group, check, f"{service} {operation}: {exc.code}", grant)
            ) from None
        problem = storage_problem(service, operation, exc)
        cause = problem.cause or f"{service} {operation}: {exc.code}"
        if problem.code != "MISCONFIGURED":  # throttled, AWS's own 5xx: try again later
            raise Skip(not_read(group, check, cause, grant)) from None
        raise Missing(cause) from None
    except Problem as problem:  # unreachable, no credentials or region: the caller's setup
        raise Skip(not_read(group, check, problem.cause or problem.code, grant)) from None


def not_read(group: str, check: str, why: str, grant: str) -> Finding:
    return Finding(
        group,
        check,
        "skip",
        f"could not read it: {why} (read with your AWS profile and region, not the "
        "function's role)",
        f"grant {grant} to the caller, or check the region and network",
    )
