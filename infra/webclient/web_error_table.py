"""The documents made from the service's error table, so that no fix or code is typed twice.

The service's table is `handler/linktoken/problems.py` (each code's status, title,
retryability, the app's default detail and the operator's fix) and
`handler/linktoken/plaid_errors.py` (every failed Plaid call: its cause, as the log line says
it, and its fix). This module adds only what no code uses: what the app should do with each
code and with API Gateway's own answers, when each code happens, and what Link's `onExit`
errors mean. From both it writes

- the tables of `docs/errors.md` and `docs/clients.md` between their `<!-- generated: ... -->`
  markers (the prose around them is hand-written);
- `examples/web/errors.json`, the web example's copy (the page is static and cannot import
  Python): `problems`, `api_gateway`, `plaid_rejections` (the cause for each Plaid
  `error_code`) and `link_exit`.

    python -m infra.webclient           # rewrite them (make docs, make web-errors)
    python -m infra.webclient --check   # exit 1 if any is stale

`tests/unit/test_web_error_table.py` fails when a generated file drifts from this output.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

from linktoken import plaid_errors
from linktoken.plaid_errors import Rule
from linktoken.problems import PROBLEM_TYPES

ROOT = Path(__file__).resolve().parents[2]

OUTPUT = ROOT / "examples/web/errors.json"
ERRORS_DOC = ROOT / "docs/errors.md"
CLIENTS_DOC = ROOT / "docs/clients.md"
GENERATED_BY = "infra/webclient/web_error_table.py (do not edit by hand)"


class GatewayAnswer(NamedTuple):
    """An answer API Gateway gives itself, without the function."""

    status: int
    body: str
    produced_by: str
    app_should: str
    operator_looks_at: str


class LinkExit(NamedTuple):
    """An error Plaid Link reports to the app in `onExit`."""

    error_code: str
    means: str
    app_should: str


# When the function answers each code (Markdown).
WHEN: Final[dict[str, str]] = {
    "INVALID_REQUEST": (
        "malformed JSON, a body that is not an object, wrong types, unknown fields, unsupported "
        "values (a product not in `PLAID_PRODUCTS`, a language Plaid does not offer, `platform: "
        "android` without `PLAID_ANDROID_PACKAGE_NAME`), not an HTTP API payload 2.0 `POST` "
        "event"
    ),
    "UNAUTHENTICATED": (
        "the event has no usable `requestContext.authorizer.jwt.claims.sub` (blank, missing, "
        "over 255 characters)"
    ),
    "WEBHOOK_UNVERIFIED": (
        "`POST /webhooks/plaid` only: the `Plaid-Verification` JWT is missing or malformed, not "
        "ES256, names a key Plaid does not give or one that has expired, does not verify, is "
        "over five minutes old, or does not match the body's SHA-256; the log line's `reason` "
        "says which"
    ),
    "PAYLOAD_TOO_LARGE": "the body is over 16384 bytes after base64 decoding",
    "UNSUPPORTED_MEDIA_TYPE": (
        "a body with a content type other than `application/json`, or an unknown charset"
    ),
    "INVALID_PUBLIC_TOKEN": (
        "`POST /items`: Plaid refused the `public_token` (`INVALID_PUBLIC_TOKEN`): older than 30 "
        "minutes, already exchanged, or made by Link in another Plaid environment than "
        "`PLAID_ENV`; the log line's cause says which is likely"
    ),
    "ITEM_NOT_FOUND": (
        "`DELETE /items/{item_id}` or `POST /link-token` with an `item_id` the caller has no Item "
        "for (another user's Items included); or Plaid no longer knows the Item (removed at "
        "Plaid)"
    ),
    "DUPLICATE_ITEM": (
        "`POST /items` for an institution and set of account masks the user already linked; "
        "nothing was exchanged; the problem's `item_id` names the existing Item"
    ),
    "EXCHANGE_IN_PROGRESS": (
        "`POST /items` while another request with the same `public_token` is still being handled"
    ),
    "RATE_LIMITED": (
        "Plaid answered `RATE_LIMIT_EXCEEDED` (or a bare 429) after the retries; `Retry-After` "
        "header set (Plaid's value, else 2 s)"
    ),
    "UPSTREAM_REJECTED": (
        "Plaid rejected the request for a configuration reason (`INVALID_API_KEYS` after one "
        "secret refresh, `INVALID_PRODUCT`, `INVALID_FIELD`, `UNAUTHORIZED_ENVIRONMENT`, "
        "`INVALID_LINK_CUSTOMIZATION`, `PRODUCTS_NOT_SUPPORTED`, `MISSING_FIELDS`, ...), an "
        "error this service does not know, an answer that is neither a link token nor a Plaid "
        "error, larger than 256 KiB (as read, or once decoded), or compressed in a way the "
        "service cannot read (it asks for `gzip, deflate` and decodes both; data after the end "
        "of the compressed stream, a second gzip member included, makes it unreadable)"
    ),
    "UPSTREAM_UNAVAILABLE": (
        "`PLANNED_MAINTENANCE`, `INTERNAL_SERVER_ERROR`/`API_ERROR`, any HTTP 5xx without a "
        "Plaid error body, connection failures (a TLS handshake cut short included), after the "
        "retries; Secrets Manager unreachable or throttling"
    ),
    "UPSTREAM_TIMEOUT": (
        "Plaid did not answer within the read timeout (6 s, less when the invocation has less "
        "time left) or did not finish its answer (status line, headers and body) within the "
        "attempt's connect + read timeouts (8 s), or too little time was left to call it at all"
    ),
    "STORAGE_UNAVAILABLE": (
        "the Items table (DynamoDB) or the access-token key (KMS) throttled, failed or was "
        "unreachable after the retries"
    ),
    "MISCONFIGURED": (
        "missing, unreadable or malformed secret, invalid environment configuration, Plaid's "
        "TLS certificate not verified (CA bundle, intercepting proxy; not retried); the log "
        "line names exactly what is wrong"
    ),
    "INTERNAL_ERROR": (
        "a bug: anything unexpected; the log line has the stack trace, the body has none"
    ),
}

# What the app should do with each code (Markdown).
APP_SHOULD: Final[dict[str, str]] = {
    "INVALID_REQUEST": (
        "Not retry. It is a bug in the app (or a stale app build asking for a product the "
        "service no longer offers): log `detail` and `request_id`, show a generic \"can't "
        'connect your bank right now".'
    ),
    "UNAUTHENTICATED": (
        "Refresh or re-acquire the user's JWT, then retry once. Behind API Gateway this "
        "normally arrives as API Gateway's own 401 (below)."
    ),
    "WEBHOOK_UNVERIFIED": (
        "Never sent to an app: only the webhook receiver answers it, to a sender that is not "
        "Plaid or to a webhook changed on the way."
    ),
    "PAYLOAD_TOO_LARGE": (
        "Not retry; the body has at most three small fields, so this is an app bug."
    ),
    "UNSUPPORTED_MEDIA_TYPE": "Not retry; send `Content-Type: application/json` (or no body).",
    "INVALID_PUBLIC_TOKEN": (
        "Not retry with the same token: open Link again for a new `public_token` and exchange "
        "that one at once."
    ),
    "ITEM_NOT_FOUND": (
        "Not retry; refresh the list of Items (`GET /items`): the Item is gone or was never "
        "this user's."
    ),
    "DUPLICATE_ITEM": (
        "Not retry; use the existing Item (`item_id` in the problem): show it, or repair it in "
        "update mode."
    ),
    "EXCHANGE_IN_PROGRESS": (
        "Retry the same request after a second or two: it then gets the first request's answer."
    ),
    "RATE_LIMITED": (
        "Retry after `Retry-After` seconds (add jitter); after a few attempts, tell the user to "
        "try again later."
    ),
    "UPSTREAM_REJECTED": (
        "Not retry: the service's Plaid configuration is wrong and only an operator can fix it. "
        'Show "bank connection is unavailable", report `request_id` (and `plaid_request_id`) to '
        "your error tracker."
    ),
    "UPSTREAM_UNAVAILABLE": (
        "Retry with exponential backoff and jitter (e.g. 1 s, 2 s, 4 s), then give up politely."
    ),
    "UPSTREAM_TIMEOUT": (
        "Same as `UPSTREAM_UNAVAILABLE`. The service already spent up to ~16 s; do not retry in "
        "a tight loop."
    ),
    "STORAGE_UNAVAILABLE": "Same as `UPSTREAM_UNAVAILABLE`.",
    "MISCONFIGURED": (
        "Not retry; report `request_id`. Every request fails until an operator fixes the "
        "configuration."
    ),
    "INTERNAL_ERROR": "Not retry automatically; report `request_id`.",
}

API_GATEWAY: Final[tuple[GatewayAnswer, ...]] = (
    GatewayAnswer(
        401,
        '`{"message":"Unauthorized"}`',
        "the JWT authorizer: token missing, malformed, expired, wrong issuer or audience; "
        "the `www-authenticate` header says which",
        "refresh the user's token, then retry once",
        "the authorizer's issuer/audience against the token's `iss`/`aud` (or `client_id`)",
    ),
    GatewayAnswer(
        403,
        '`{"message":"Forbidden"}`',
        "the JWT authorizer: the token lacks a scope the route requires",
        "not retry; request the right scopes",
        "the route's authorization scopes",
    ),
    GatewayAnswer(
        404,
        '`{"message":"Not Found"}`',
        "no route for this method and path (`GET /link-token`, a typo, a stage prefix)",
        "not retry; fix the URL",
        "the API's routes",
    ),
    GatewayAnswer(
        429,
        '`{"message":"Too Many Requests"}`',
        "stage throttling (rate and burst limits); no `Retry-After`",
        "back off exponentially with jitter",
        "the stage's throttling settings and traffic",
    ),
    GatewayAnswer(
        500,
        '`{"message":"Internal Server Error"}`',
        "the function crashed, timed out, was throttled by Lambda, or returned an invalid "
        "payload 2.0 response",
        "not retry automatically; report the `apigw-requestid`",
        "the function's `Errors`/`Throttles` metrics and its log stream (`Task timed out`, "
        "init errors)",
    ),
    GatewayAnswer(
        503,
        '`{"message":"Service Unavailable"}`',
        "the integration could not be reached or did not answer",
        "retry with backoff",
        "API Gateway and Lambda health",
    ),
    GatewayAnswer(
        504,
        '`{"message":"Endpoint request timed out"}` or `{"message":"Service Unavailable"}`',
        "the integration did not answer within API Gateway's 30 s (not expected: the "
        "function's own timeout is 20 s and then shows as a 500)",
        "retry with backoff",
        "the function's duration",
    ),
)

LINK_EXIT: Final[tuple[LinkExit, ...]] = (
    LinkExit(
        "INVALID_LINK_TOKEN",
        "the token expired (4 hours), was already used for a finished session, was "
        "invalidated by too many failed logins or 30+ minutes in Link, or belongs to "
        "another Plaid environment",
        "Fetch a new token from `POST /link-token` and open Link again with it; never reuse "
        "or cache a token across Link sessions.",
    ),
    LinkExit(
        "INVALID_CREDENTIALS",
        "the user entered wrong bank credentials too often",
        "Let the user try again later; nothing to fix in the app.",
    ),
    LinkExit(
        "ITEM_LOCKED",
        "the bank locked the account after failed logins",
        "Tell the user to unlock the account with the bank, then try again.",
    ),
    LinkExit(
        "INSTITUTION_DOWN",
        "the bank is unavailable",
        "Offer to try again later or pick another bank.",
    ),
    LinkExit(
        "INSTITUTION_NOT_RESPONDING",
        "the bank did not answer in time",
        "Offer to try again in a few minutes.",
    ),
    LinkExit(
        "INSTITUTION_NOT_AVAILABLE",
        "Plaid cannot connect to this bank right now",
        "Offer another bank or a later try.",
    ),
    LinkExit(
        "INSTITUTION_NO_LONGER_SUPPORTED",
        "Plaid no longer supports this bank",
        "Offer another bank.",
    ),
    LinkExit(
        "RATE_LIMIT_EXCEEDED",
        "too many attempts in a short time",
        "Wait a minute before opening Link again; do not loop.",
    ),
    LinkExit(
        "INTERNAL_SERVER_ERROR",
        "Plaid had an internal error",
        "Try again later; report `metadata.request_id` if it persists.",
    ),
)

# Where each kind of rule applies, for the table of causes (Markdown).
_WHERE: Final[dict[str, str]] = {
    "BY_ERROR_CODE": "`error_code` `{}`",
    "BY_ERROR_TYPE": "`error_type` `{}` (any other code)",
    "BY_HTTP_STATUS": "HTTP {} without a Plaid error",
    "BY_STATUS_CLASS": "HTTP {}xx without a Plaid error",
    "BY_MESSAGE_HINT": '`error_message` mentions "{}" (a rejection)',
}
_OTHER_RULES: Final[dict[str, str]] = {
    "UNKNOWN_ERROR": "any other Plaid error",
    "UNPARSEABLE": "an answer that is no Plaid error (any other status)",
    "READ_TIMEOUT": "no answer within the read timeout",
    "CONNECT_FAILED": "no connection (or it broke)",
    "TLS_UNTRUSTED": "a certificate that does not verify",
    "NO_TIME": "no time left to call Plaid",
    "ANSWER_TOO_LARGE": "an answer over 256 KiB",
    "ANSWER_UNREADABLE": "an answer compressed unreadably",
}
_MARKER = re.compile(
    r"(<!-- generated: (?P<name>[a-z-]+) [^\n]*-->\n)(?P<body>.*?)"
    r"(<!-- end generated: (?P=name) -->)",
    re.DOTALL,
)


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def _table(header: tuple[str, ...], rows: Sequence[tuple[object, ...]]) -> str:
    lines = [_row(*header), "|" + "---|" * len(header), *(_row(*row) for row in rows)]
    return "\n".join(lines) + "\n"


def _app_gets(rule: Rule) -> str:
    return f"{PROBLEM_TYPES[rule.problem_code].status} `{rule.problem_code}`"


def cause_rows() -> list[tuple[str, str, str, str]]:
    """Every rule with where it applies, then each code's fix for causes without a rule."""
    rows: list[tuple[str, str, str, str]] = []
    for table, where in _WHERE.items():
        for key, rule in getattr(plaid_errors, table).items():
            rows.append((where.format(key), _app_gets(rule), rule.cause, rule.fix))
    for name, where in _OTHER_RULES.items():
        rule = getattr(plaid_errors, name)
        rows.append((where, _app_gets(rule), rule.cause, rule.fix))
    listed = {row[2] for row in rows}
    missing = [rule.cause for rule in plaid_errors.all_rules() if rule.cause not in listed]
    if missing:
        raise ValueError(f"rules without a row in the table of causes: {missing}")
    for code, kind in PROBLEM_TYPES.items():
        rows.append(("any other cause", f"{kind.status} `{code}`", "(as logged)", kind.fix))
    return rows


def tables() -> dict[str, str]:
    """Each generated Markdown table, by its marker's name."""
    if set(WHEN) != set(PROBLEM_TYPES) or set(APP_SHOULD) != set(PROBLEM_TYPES):
        raise ValueError("WHEN and APP_SHOULD must have one row per code of PROBLEM_TYPES")
    return {
        "problem-codes": _table(
            ("status", "code", "retryable", "when"),
            [
                (kind.status, f"`{code}`", "yes" if kind.retryable else "no", WHEN[code])
                for code, kind in PROBLEM_TYPES.items()
            ],
        ),
        "app-should": _table(
            ("code", "the app should"), [(f"`{code}`", APP_SHOULD[code]) for code in PROBLEM_TYPES]
        ),
        "causes-and-fixes": _table(
            ("Plaid's answer, or what happened", "the app gets", "`cause`", "fix"), cause_rows()
        ),
        "api-gateway": _table(
            (
                "status",
                "body (`application/json`)",
                "produced by",
                "the app should",
                "the operator looks at",
            ),
            [tuple(answer) for answer in API_GATEWAY],
        ),
        "link-exit": _table(
            ("error_code", "what it means", "the app should"),
            [(f"`{e.error_code}`", e.means, e.app_should) for e in LINK_EXIT],
        ),
    }


def _plain(text: str) -> str:
    return text.replace("`", "")


def build() -> dict[str, Any]:
    """The table the page reads."""
    return {
        "generated_by": GENERATED_BY,
        "problems": {
            code: {
                "status": kind.status,
                "title": kind.title,
                "retryable": kind.retryable,
                "app_should": _plain(APP_SHOULD[code]),
            }
            for code, kind in PROBLEM_TYPES.items()
        },
        "api_gateway": {
            str(answer.status): {
                "app_should": _plain(answer.app_should),
                "produced_by": _plain(answer.produced_by),
            }
            for answer in API_GATEWAY
        },
        "plaid_rejections": {code: rule.cause for code, rule in plaid_errors.BY_ERROR_CODE.items()},
        "link_exit": {e.error_code: _plain(e.app_should) for e in LINK_EXIT},
    }


def render() -> str:
    """`examples/web/errors.json`."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def render_doc(text: str, generated: dict[str, str] | None = None) -> str:
    """`text` with every generated table replaced; a marker without a table is an error."""
    generated = generated if generated is not None else tables()

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in generated:
            raise ValueError(f"no generated table {name!r}")
        return match[1] + generated[name] + match[4]

    return _MARKER.sub(replace, text)


def outputs() -> dict[Path, str]:
    """Every generated file and what it must hold."""
    generated = tables()
    return {
        OUTPUT: render(),
        ERRORS_DOC: render_doc(ERRORS_DOC.read_text(), generated),
        CLIENTS_DOC: render_doc(CLIENTS_DOC.read_text(), generated),
    }


_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def markdown_table(text: str, heading: str) -> list[dict[str, str]]:
    """The first table under `heading`, as rows keyed by the header cells (backticks and
    escaped pipes resolved): how tests read a hand-written table they check."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip("# ").strip() == heading)
    except StopIteration:
        raise ValueError(f"no heading {heading!r}") from None
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            cells = [_cell(cell) for cell in _CELL_SPLIT.split(line.strip().strip("|"))]
            if not all(set(cell) <= set("-: ") for cell in cells):
                rows.append(cells)
        elif rows and not line.startswith("<!--"):
            break
    if not rows:
        raise ValueError(f"no table under {heading!r}")
    header, *body = rows
    return [dict(zip(header, row, strict=True)) for row in body]


def _cell(cell: str) -> str:
    return cell.strip().replace("\\|", "|").replace("`", "")


def main(argv: list[str]) -> int:
    stale = []
    for path, text in outputs().items():
        if path.read_text() != text:
            stale.append(path)
            if "--check" not in argv:
                path.write_text(text)
                print(f"wrote {path.relative_to(ROOT)}")
    if "--check" in argv and stale:
        names = ", ".join(str(path.relative_to(ROOT)) for path in stale)
        print(f"{names} stale: run make docs", file=sys.stderr)
        return 1
    return 0
