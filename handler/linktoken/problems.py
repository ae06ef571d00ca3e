"""The service's error contract: one exception type and the table of codes apps can rely on.

Every failure the service produces is a `Problem`. Its `code` picks a row of `PROBLEM_TYPES`
(status, title, retryable, what the app is told by default, what the operator should do);
`detail` is safe to show an app; `log` carries what an operator needs (Plaid's error fields, the
cause) and never reaches the response body. `make doctor`, `docs/errors.md`'s tables and the
web example's `errors.json` are generated from this table and `plaid_errors`' rules.
"""

from dataclasses import dataclass, field
from typing import Any, Final

# A stable, non-resolvable URI (RFC 9457 allows it); docs/errors.md documents each type.
PROBLEM_TYPE_BASE: Final = "urn:plaid-link-token-service:problem:"
# The fix of a failure the app's own request caused.
APP_SIDE_FIX: Final = (
    "the app's request, not the service: see docs/errors.md, 'What the app should do'"
)


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One row of the error contract."""

    status: int
    title: str
    retryable: bool
    # What the app is told when the failure has no more specific detail.
    detail: str
    # What the operator does about a failure of this code that no more specific rule covers
    # (Plaid's answers have their own fixes in plaid_errors).
    fix: str = APP_SIDE_FIX
    # A failure a new release can cause (a bug, a configuration value, a request Plaid
    # refuses), as opposed to Plaid's own state: what rolls back a gradual deployment.
    # Doctor reports these as problems, the others as warnings.
    release_regression: bool = False


PROBLEM_TYPES: Final[dict[str, ProblemType]] = {
    "INVALID_REQUEST": ProblemType(
        400, "The request is not valid", False, "The request is not valid."
    ),
    "UNAUTHENTICATED": ProblemType(
        401, "No usable identity", False, "The request carries no usable identity."
    ),
    "WEBHOOK_UNVERIFIED": ProblemType(
        401,
        "The webhook is not signed by Plaid",
        False,
        "The Plaid-Verification signature of this webhook was not accepted.",
        fix="a webhook failed verification: the log line's reason says which check (unknown_key "
        "or expired_key for a key Plaid does not give, body_hash for a body changed on the way, "
        "stale for an old delivery or a skewed clock); a steady stream that is Plaid's own "
        "means a proxy in front of the API rewrites requests",
    ),
    "PAYLOAD_TOO_LARGE": ProblemType(
        413, "The request body is too large", False, "The request body is too large."
    ),
    "UNSUPPORTED_MEDIA_TYPE": ProblemType(
        415, "The body must be JSON", False, "Send the body as application/json."
    ),
    "INVALID_PUBLIC_TOKEN": ProblemType(
        400,
        "The public token cannot be exchanged",
        False,
        "The public_token cannot be exchanged: it has expired (public tokens live 30 minutes), "
        "was already exchanged, or comes from another Plaid environment. Open Link again.",
        fix="the app sent a public_token of another Plaid environment than PLAID_ENV, or one "
        "older than 30 minutes: the cause says which is likely",
    ),
    "ITEM_NOT_FOUND": ProblemType(
        404, "No such Item", False, "The caller has no Item with this item_id."
    ),
    "DUPLICATE_ITEM": ProblemType(
        409,
        "This bank is already linked",
        False,
        "The user already linked these accounts at this institution: use the existing Item "
        "(item_id), or repair it in update mode.",
    ),
    "EXCHANGE_IN_PROGRESS": ProblemType(
        409,
        "This public token is being exchanged",
        True,
        "A request with this public_token is still being handled; retry shortly.",
    ),
    "RATE_LIMITED": ProblemType(
        429,
        "Plaid is rate limiting this service",
        True,
        "Plaid is rate limiting this service; retry after the Retry-After delay.",
        fix="not your configuration: Plaid rate limited the service",
    ),
    "UPSTREAM_REJECTED": ProblemType(
        502,
        "Plaid rejected the service's request",
        False,
        "Plaid rejected the service's request because of this service's configuration; "
        "the app cannot fix this. Report the request_id to the service's operators.",
        fix="Plaid refused the service's request: the cause and plaid_error_code say why; quote "
        "plaid_request_id to Plaid support",
        release_regression=True,
    ),
    "UPSTREAM_UNAVAILABLE": ProblemType(
        503,
        "A dependency is unavailable",
        True,
        "Plaid is unavailable right now; retry shortly.",
        fix="Plaid or Secrets Manager was unreachable from the function: check its network "
        "path (NAT gateway, VPC endpoint, proxy) and status.plaid.com",
    ),
    "UPSTREAM_TIMEOUT": ProblemType(
        504,
        "Plaid did not answer in time",
        True,
        "Plaid did not answer in time; retry shortly.",
        fix="Plaid did not answer in time: check status.plaid.com and the function's network "
        "path; not a configuration value",
    ),
    "STORAGE_UNAVAILABLE": ProblemType(
        503,
        "Item storage is unavailable",
        True,
        "The service could not reach its Item storage right now; retry shortly.",
        fix="DynamoDB, KMS or SQS throttled or was unreachable from the function: the cause "
        "names the service and error code; check the network path (VPC endpoints) and service "
        "quotas",
    ),
    "MISCONFIGURED": ProblemType(
        500,
        "The service is misconfigured",
        False,
        "The service is misconfigured; its operators have the details.",
        fix="the cause names the variable or secret field; make doctor's configuration and "
        "secret checks name every one",
        release_regression=True,
    ),
    "INTERNAL_ERROR": ProblemType(
        500,
        "Unexpected error",
        False,
        "Unexpected error; report the request_id.",
        fix="a bug in the service: the log line's stack_trace says where",
        release_regression=True,
    ),
}


@dataclass(eq=False)
class Problem(Exception):  # named for RFC 9457 problem details
    """A failure with a stable `code` from `PROBLEM_TYPES`; without a `detail`, the code's own.

    Example:
        >>> p = Problem("PAYLOAD_TOO_LARGE", "The body is 20000 bytes; the limit is 16384.")
        >>> p.status, p.retryable
        (413, False)
    """

    code: str
    detail: str = ""
    cause: str | None = None
    retry_after: int | None = None
    plaid_request_id: str | None = None
    plaid_error_code: str | None = None
    log: dict[str, Any] = field(default_factory=dict)
    # Fields of the problem document beyond RFC 9457's and ours (DUPLICATE_ITEM's item_id).
    extensions: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in PROBLEM_TYPES:
            raise ValueError(f"unknown problem code {self.code!r}")
        if not self.detail:
            self.detail = PROBLEM_TYPES[self.code].detail
        super().__init__(self.code, self.detail)

    @property
    def kind(self) -> ProblemType:
        return PROBLEM_TYPES[self.code]

    @property
    def status(self) -> int:
        return self.kind.status

    @property
    def retryable(self) -> bool:
        return self.kind.retryable

    def body(self, request_id: str) -> dict[str, Any]:
        """The RFC 9457 problem document for the app (no secrets, no Plaid error_message)."""
        doc: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code.lower().replace("_", "-"),
            "title": self.kind.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "retryable": self.retryable,
            "request_id": request_id,
        }
        if self.plaid_request_id:
            doc["plaid_request_id"] = self.plaid_request_id
        if self.plaid_error_code:
            doc["plaid_error_code"] = self.plaid_error_code
        return {**self.extensions, **doc}
