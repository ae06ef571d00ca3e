"""How a failed Plaid call becomes one of our problems: a lookup table, not an if-chain.

Lookup order for an answer: Plaid's `error_code`, then its `error_type`, then the HTTP status
(for answers that are not Plaid error objects at all); a rejection whose message names a known
cause (`BY_MESSAGE_HINT`) takes that cause's rule. Calls that got no usable answer (transport
failures, answers too large or unreadable) have their rules here too, beside Plaid's. Each rule
says whether the call may be retried within this invocation, whether a fresh secret is worth one
more try (key rotation), which of our codes the app gets, the operator-facing cause that goes
into the log line, and the fix: what the operator should do about it (`make doctor` prints it
beside each cause, and `docs/errors.md` lists it).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Rule:
    """What to do about one kind of Plaid failure."""

    problem_code: str
    cause: str
    retry: bool = False
    refresh_secret: bool = False
    fix: str = "see docs/troubleshooting.md and quote plaid_request_id to Plaid support"
    # What the app is told when it is not the problem code's own detail.
    detail: str | None = None


_REJECTED = "UPSTREAM_REJECTED"
_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
_NOT_YOURS = "not your configuration: Plaid is having trouble (status.plaid.com); it heals itself"
_USE_CASE_FIX = (
    "set up the Link use case in the Plaid Dashboard (Link > Link customization, Data "
    "Transparency Messaging) for these countries and language"
)
_RATE_LIMIT_FIX = (
    "not your configuration: too many calls for this client; spread them out or ask Plaid for "
    "a higher limit"
)

BY_ERROR_CODE: Final[dict[str, Rule]] = {
    "INVALID_API_KEYS": Rule(
        _REJECTED,
        "Plaid rejected client_id/secret: keys from another Plaid environment than PLAID_ENV, "
        "a rotated or mistyped secret",
        refresh_secret=True,
        fix="put the PLAID_ENV environment's keys in the secret (Dashboard > Developers > Keys; "
        "sandbox and production secrets differ, the usual cause), or replace a mistyped or "
        "rotated secret",
    ),
    "UNAUTHORIZED_ENVIRONMENT": Rule(
        _REJECTED,
        "this Plaid client is not enabled for the PLAID_ENV environment",
        fix="request access to that environment in the Plaid Dashboard, or use PLAID_ENV=sandbox",
    ),
    "INVALID_PRODUCT": Rule(
        _REJECTED,
        "a requested product is not enabled for this Plaid client or environment "
        "(check PLAID_PRODUCTS against the Plaid dashboard)",
        fix="enable the product for this environment in the Plaid Dashboard, or remove it from "
        "PLAID_PRODUCTS",
    ),
    "PRODUCTS_NOT_SUPPORTED": Rule(
        _REJECTED,
        "the product combination is not supported (check PLAID_PRODUCTS)",
        fix="change PLAID_PRODUCTS to a combination Plaid supports, or enable the products in "
        "the Plaid Dashboard",
    ),
    "INVALID_FIELD": Rule(
        _REJECTED,
        "Plaid rejected a field; most often redirect_uri is not in the dashboard's Allowed "
        "redirect URIs or android_package_name is not an Allowed Android package name",
        fix="register PLAID_REDIRECT_URI exactly in the Dashboard's Allowed redirect URIs "
        "(web/iOS), PLAID_ANDROID_PACKAGE_NAME in its Allowed Android package names (Android)",
    ),
    "INVALID_LINK_CUSTOMIZATION": Rule(
        _REJECTED,
        "the Link customization does not exist or does not match language/countries",
        fix=_USE_CASE_FIX,
    ),
    "MISSING_FIELDS": Rule(_REJECTED, "Plaid says a required field is missing"),
    "UNKNOWN_FIELDS": Rule(_REJECTED, "Plaid does not know a field the service sent"),
    "INVALID_BODY": Rule(_REJECTED, "Plaid could not parse the request body"),
    "INVALID_HEADERS": Rule(_REJECTED, "Plaid rejected the request headers"),
    "UNAUTHORIZED_ROUTE_ACCESS": Rule(
        _REJECTED,
        "this Plaid client may not call /link/token/create (contact Plaid)",
        fix="ask Plaid support to enable /link/token/create for this client",
    ),
    "INVALID_PUBLIC_TOKEN": Rule(
        "INVALID_PUBLIC_TOKEN",
        "Plaid refused the public_token: expired (30 minutes), already exchanged, or from "
        "another Plaid environment",
        fix="nothing to change in the service when it is rare (a user who waited over 30 "
        "minutes); when it is every exchange, the app's Link runs in another Plaid environment "
        "than PLAID_ENV",
    ),
    "INVALID_ACCESS_TOKEN": Rule(
        _REJECTED,
        "Plaid refused a stored access_token: it belongs to another Plaid environment or client "
        "than the secret's keys",
        fix="the secret's keys must be those of the Plaid client and PLAID_ENV that created the "
        "Items",
    ),
    "ITEM_NOT_FOUND": Rule(
        "ITEM_NOT_FOUND",
        "Plaid no longer knows this Item (removed at Plaid, e.g. from the Dashboard)",
        fix="nothing in the service: the Item was removed at Plaid; the user links the bank again",
        detail="This Item no longer exists at Plaid; link the bank again.",
    ),
    "PLANNED_MAINTENANCE": Rule(
        _UNAVAILABLE, "Plaid is in planned maintenance", retry=True, fix=_NOT_YOURS
    ),
    "INTERNAL_SERVER_ERROR": Rule(
        _UNAVAILABLE, "Plaid had an internal error", retry=True, fix=_NOT_YOURS
    ),
}

BY_ERROR_TYPE: Final[dict[str, Rule]] = {
    "RATE_LIMIT_EXCEEDED": Rule(
        "RATE_LIMITED", "Plaid rate limit exceeded", retry=True, fix=_RATE_LIMIT_FIX
    ),
    "API_ERROR": Rule(_UNAVAILABLE, "Plaid API error", retry=True, fix=_NOT_YOURS),
    "INVALID_REQUEST": Rule(_REJECTED, "Plaid says the request is invalid"),
    "INVALID_INPUT": Rule(_REJECTED, "Plaid rejected an input"),
}

# For answers that carry no Plaid error object (a proxy's HTML page, an empty body...), by
# status class: 4 -> 4xx, 5 -> 5xx; 429 is the one status with a row of its own.
BY_HTTP_STATUS: Final[dict[int, Rule]] = {
    429: Rule(
        "RATE_LIMITED", "Plaid answered 429 without an error body", retry=True, fix=_RATE_LIMIT_FIX
    ),
}
BY_STATUS_CLASS: Final[dict[int, Rule]] = {
    5: Rule(
        _UNAVAILABLE,
        "Plaid (or a proxy in front of it) answered a 5xx",
        retry=True,
        fix=_NOT_YOURS + "; if it persists, check any proxy between the function and Plaid",
    ),
}

# A rejection whose error_message names one of these (case-insensitive) has this cause,
# whatever its error_code: Plaid reports a missing Link use case (Data Transparency Messaging)
# as INVALID_FIELD or INVALID_LINK_CUSTOMIZATION, and only its message says which.
BY_MESSAGE_HINT: Final[dict[str, Rule]] = {
    "use case": Rule(
        _REJECTED,
        "Plaid wants a Link use case (Data Transparency Messaging) that is not set up in the "
        "Dashboard for these countries and language",
        fix=_USE_CASE_FIX,
    ),
}

UNKNOWN_ERROR = Rule(_REJECTED, "Plaid answered an error this service does not know")
UNPARSEABLE = Rule(_REJECTED, "Plaid's answer is not a link token nor a Plaid error")

# Calls without a usable answer; `plaid_client` decides which one applies.
_TIMEOUT = "UPSTREAM_TIMEOUT"
_PATH_FIX = (
    "check the network path to Plaid (NAT or proxy for a VPC function, egress rules) and "
    "status.plaid.com"
)
_MIDDLEBOX_FIX = "check any proxy or gateway between the function and Plaid, and PLAID_BASE_URL"
READ_TIMEOUT = Rule(
    _TIMEOUT, "Plaid did not answer within the read timeout", retry=True, fix=_PATH_FIX
)
CONNECT_FAILED = Rule(_UNAVAILABLE, "could not connect to Plaid", retry=True, fix=_PATH_FIX)
# Not retried, and not retryable for the app: only an operator can fix what a certificate that
# does not verify means here (a CA bundle without Plaid's root, an intercepting proxy).
TLS_UNTRUSTED = Rule(
    "MISCONFIGURED",
    "Plaid's TLS certificate did not verify: REQUESTS_CA_BUNDLE lacks Plaid's root CA, or an "
    "intercepting proxy presents its own certificate",
    fix="unset REQUESTS_CA_BUNDLE or add the public CA Plaid's certificate chains to; behind an "
    "intercepting (TLS-inspecting) proxy, add its CA to the bundle or exempt Plaid's host from "
    "inspection",
    detail="The service cannot reach Plaid securely; its operators have the details. "
    "Report the request_id.",
)
NO_TIME = Rule(
    _TIMEOUT,
    "no time left in the invocation to call Plaid",
    fix="look at what used the invocation's time (the secret read, the cold start)",
)
ANSWER_TOO_LARGE = Rule(
    _REJECTED, "Plaid's answer is larger than any link token answer", fix=_MIDDLEBOX_FIX
)
ANSWER_UNREADABLE = Rule(
    _REJECTED,
    "Plaid's answer is compressed in a way this service cannot read",
    fix=_MIDDLEBOX_FIX + " (it asks for gzip or deflate only)",
)
TRANSPORT_RULES: Final = (READ_TIMEOUT, CONNECT_FAILED, TLS_UNTRUSTED, NO_TIME)
ANSWER_RULES: Final = (ANSWER_TOO_LARGE, ANSWER_UNREADABLE)


@dataclass(frozen=True, slots=True)
class PlaidError:
    """Plaid's error fields, as far as the answer carried them, and the rule that applies."""

    rule: Rule
    http_status: int
    error_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    # A transport failure before any connection was made: the request never left.
    never_connected: bool = False

    @property
    def retryable(self) -> bool:
        """Worth another attempt in this invocation: the rule says transient, and the answer
        was a transport failure (status 0), a 429 or a 5xx. A 4xx is never retried, whatever
        its body says."""
        status = self.http_status
        return self.rule.retry and (status in {0, 429} or status >= 500)


def classify(http_status: int, payload: Any) -> PlaidError:
    """Map a non-success Plaid answer to its rule.

    Example:
        >>> err = classify(400, {"error_type": "INVALID_INPUT", "error_code": "INVALID_API_KEYS",
        ...                      "error_message": "invalid client_id or secret provided"})
        >>> err.rule.problem_code, err.rule.refresh_secret
        ('UPSTREAM_REJECTED', True)
    """
    by_status = BY_HTTP_STATUS.get(http_status) or BY_STATUS_CLASS.get(http_status // 100)
    if not isinstance(payload, Mapping) or not isinstance(payload.get("error_code"), str):
        return PlaidError(by_status or UNPARSEABLE, http_status)
    error_type = _text(payload.get("error_type"))
    error_code = _text(payload.get("error_code"))
    rule = (
        BY_ERROR_CODE.get(error_code or "")
        or BY_ERROR_TYPE.get(error_type or "")
        or by_status
        or UNKNOWN_ERROR
    )
    error_message = _text(payload.get("error_message"))
    if error_message and not (rule.retry or rule.refresh_secret):
        lowered = error_message.lower()
        rule = next((hint for words, hint in BY_MESSAGE_HINT.items() if words in lowered), rule)
    return PlaidError(
        rule=rule,
        http_status=http_status,
        error_type=error_type,
        error_code=error_code,
        error_message=error_message,
        request_id=_text(payload.get("request_id")),
    )


def all_rules() -> tuple[Rule, ...]:
    """Every rule, each once, in table order: what the documentation and doctor list."""
    rules = [
        *BY_ERROR_CODE.values(),
        *BY_ERROR_TYPE.values(),
        *BY_HTTP_STATUS.values(),
        *BY_STATUS_CLASS.values(),
        *BY_MESSAGE_HINT.values(),
        UNKNOWN_ERROR,
        UNPARSEABLE,
        *TRANSPORT_RULES,
        *ANSWER_RULES,
    ]
    return tuple(dict.fromkeys(rules))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
