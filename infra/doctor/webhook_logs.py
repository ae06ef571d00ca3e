"""`--function` / `--stack`: what the webhook functions' log lines say beyond their failures.

- the receiver's `webhook_rejected` lines, by `reason` (the verification step that refused the
  webhook): a few are the noise any public URL gets; a steady stream of one reason is read as
  what it likely means (an attack, a proxy in front of the API changing requests, webhooks of
  another Plaid environment, deliveries held back);
- the processor's `webhook_applied` lines, by `outcome`: applied and ignored are the normal
  ones; stale, superseded, unknown_type, item_unknown and item_removed are acknowledged as
  designed and said for information.

The receiver's `webhook_receive_failed` and the processor's `webhook_failed` lines are failures
like the other functions' (`deployed.summarise`). A rejected webhook's `kid` is the sender's
text: it is shown only when printable, and shortened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from infra.doctor.findings import Finding, Status
from infra.doctor.roles import WEBHOOK_APPLIED, WEBHOOK_REJECTED

REJECTIONS = "webhook rejections"
OUTCOMES = "webhook outcomes"
# As many of one reason as the stack's webhook-rejected alarm pages for (in 5 minutes).
STEADY: Final = 10
# Distinct key ids behind unknown_key rejections that say "many senders", not one.
MANY_KIDS: Final = 3
_KID_SHOWN: Final = 40

_BLOCK = (
    "nothing is accepted (the receiver refuses them); if they persist, block or rate-limit "
    'the senders in front of the API (AWS WAF); the saved query "<stack>/12 Webhook '
    'rejections by reason" lists them'
)
_IN_FRONT = (
    "find what sits between Plaid and API Gateway (a proxy, CDN or WAF rule) and make it pass "
    "requests unchanged; Plaid's own webhooks are refused until then"
)


@dataclass(frozen=True, slots=True)
class Reading:
    """A reason's steady meaning and what to do about it."""

    meaning: str
    fix: str


# What each step's refusal is, in a few words.
REFUSED: Final[dict[str, str]] = {
    "missing_header": "no Plaid-Verification header",
    "malformed": "a Plaid-Verification header that is not a JWT Plaid sends",
    "wrong_algorithm": "a JWT signed with another algorithm than ES256",
    "unknown_key": "a key id Plaid gives no key for",
    "expired_key": "a key Plaid has rotated out",
    "bad_signature": "a signature that does not verify with Plaid's key",
    "stale": "signed by Plaid over 5 minutes before it arrived (or over 60 s ahead)",
    "body_hash": "signed by Plaid, but for another body",
}
# What a steady stream of each likely means.
STEADY_READINGS: Final[dict[str, Reading]] = {
    "missing_header": Reading(
        "requests that are not Plaid's (scanners of the public URL), or a proxy in front of "
        "the API that drops the header from Plaid's own",
        "compare with Plaid's webhook deliveries in the Dashboard: if they are Plaid's, "
        + _IN_FRONT,
    ),
    "malformed": Reading(
        "probes of the public URL, or a proxy in front of the API that rewrites headers",
        "compare with Plaid's webhook deliveries in the Dashboard: if they are Plaid's, "
        + _IN_FRONT,
    ),
    "wrong_algorithm": Reading(
        "an attempt to forge webhooks (algorithm confusion): Plaid signs with ES256 only, "
        "and these were refused before any key lookup",
        _BLOCK,
    ),
    "unknown_key": Reading(
        "made-up key ids from many senders: an attempt to forge webhooks (each new id costs "
        "Plaid at most 5 lookups a minute per container)",
        _BLOCK,
    ),
    "expired_key": Reading(
        "old webhooks replayed (an attack): Plaid signs new deliveries with a current key",
        _BLOCK,
    ),
    "bad_signature": Reading(
        "forged webhooks (an attack), or a proxy in front of the API that rewrites the header",
        _BLOCK + "; if Plaid's deliveries fail too, " + _IN_FRONT,
    ),
    "stale": Reading(
        "Plaid-signed deliveries held back on the way (a slow queue or proxy in front of the "
        "API), captured webhooks replayed later, or a clock that is off",
        "look for what delays requests in front of API Gateway (Plaid delivers within "
        "seconds); replays are refused as they should be",
        # The receiver's clock is Lambda's (NTP-synchronised): a skew is the sender's.
    ),
    "body_hash": Reading(
        "Plaid's own deliveries with their body changed on the way: a proxy, CDN or WAF in "
        "front of the API rewriting bodies (re-encoded JSON, whitespace, charset); or a "
        "fresh Plaid header replayed with another body (an attack)",
        _IN_FRONT,
    ),
}
# Key ids Plaid does not know, one of them steadily: not an attack but the wrong Plaid.
_ONE_UNKNOWN_KEY = Reading(
    "one key id Plaid does not know, steadily: webhooks signed in another Plaid environment "
    "than PLAID_ENV (the key is looked up in PLAID_ENV's), or keys in the secret of another "
    "Plaid client than the one that made the Items",
    "check that PLAID_ENV and the secret's keys are the environment and client the Items were "
    "made with; quote the kid to Plaid support if they are",
)

# What each outcome means; applied and ignored are the normal ones.
OUTCOME_MEANINGS: Final[dict[str, str]] = {
    "applied": "applied to the Item's health",
    "ignored": "no health change for this webhook (WEBHOOK_UPDATE_ACKNOWLEDGED, or an ITEM "
    "ERROR other than ITEM_LOGIN_REQUIRED)",
    "stale": "older than the health the Item holds (Plaid redelivered, or delivered out of "
    "order): left unapplied, as designed",
    "superseded": "a login webhook (ERROR ITEM_LOGIN_REQUIRED, LOGIN_REPAIRED) that Plaid's "
    "/item/get contradicted: Plaid's answer was stored instead (a retry that came after a "
    "newer change), as designed",
    "unknown_type": "a webhook type or code the processor has no rule for: acknowledged and "
    "counted, the Item unchanged (Plaid sends a webhook this service does not use yet)",
    "item_unknown": "for an item_id the Items table does not hold: an Item of another stack "
    "or environment whose link token named this receiver, or one not stored yet",
    "item_removed": "for an Item removed from the service: acknowledged",
}


def rejection_rows(lines: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A row per reason: count, distinct key ids, the newest line's time, request id and kid;
    most frequent first."""
    rows: dict[str, dict[str, Any]] = {}
    kids: dict[str, set[str]] = {}
    for line in lines:
        reason = _printable(line.get("reason")) or "unknown"
        row = rows.setdefault(reason, {"reason": reason, "count": 0, "_timestamp": -1})
        row["count"] += 1
        kid = _printable(line.get("kid"))
        if kid:
            kids.setdefault(reason, set()).add(kid)
        if line["_timestamp"] >= row["_timestamp"]:
            row.update(
                last_seen=_iso(line["_timestamp"]),
                request_id=_printable(line.get("correlation_id")),
                last_kid=kid,
                _timestamp=line["_timestamp"],
            )
    for reason, row in rows.items():
        row["kids"] = len(kids.get(reason, ()))
    return _ordered(rows.values())


def rejection_findings(rows: list[dict[str, Any]], since: str) -> list[Finding]:
    """One finding per reason: `ok` for a few, `warn` with its likely meaning when steady."""
    if not rows:
        return [Finding(REJECTIONS, "rejected", "ok", f"no {WEBHOOK_REJECTED} lines in {since}")]
    findings = []
    for row in rows:
        reason, count = row["reason"], row["count"]
        ids = [f"request_id {row['request_id']}"] if row.get("request_id") else []
        if row.get("last_kid"):
            ids.append(f"kid {_short(row['last_kid'])}")
        if row["kids"] > 1:
            ids.append(f"{row['kids']} distinct kids")
        seen = f"{count} in {since}, last {row['last_seen']}" + (
            f" ({', '.join(ids)})" if ids else ""
        )
        what = REFUSED.get(reason, "a reason this doctor does not know")
        status: Status = "ok"
        fix = None
        if count >= STEADY:
            reading = _reading(reason, row["kids"])
            status = "warn"
            detail = f"{seen}: {what}; steadily, that is likely {reading.meaning}"
            fix = reading.fix
        else:
            detail = f"{seen}: {what}; refused, as a public URL's noise should be"
        findings.append(Finding(REJECTIONS, reason, status, detail, fix))
    return findings


def outcome_rows(lines: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A row per outcome: count and the newest line's time, item_id, type and code."""
    rows: dict[str, dict[str, Any]] = {}
    for line in lines:
        outcome = _printable(line.get("outcome")) or "unknown"
        row = rows.setdefault(outcome, {"outcome": outcome, "count": 0, "_timestamp": -1})
        row["count"] += 1
        if line["_timestamp"] >= row["_timestamp"]:
            row.update(
                last_seen=_iso(line["_timestamp"]),
                item_id=_printable(line.get("item_id")),
                webhook=_webhook(line),
                _timestamp=line["_timestamp"],
            )
    return _ordered(rows.values())


def outcome_findings(rows: list[dict[str, Any]], since: str) -> list[Finding]:
    """A count per outcome, each with what it means; none of them is a fault."""
    if not rows:
        return [Finding(OUTCOMES, "applied", "ok", f"no {WEBHOOK_APPLIED} lines in {since}")]
    findings = []
    for row in rows:
        last = [f"last {row['last_seen']}"]
        last += [f"{row['webhook']}"] if row.get("webhook") else []
        last += [f"item_id {row['item_id']}"] if row.get("item_id") else []
        meaning = OUTCOME_MEANINGS.get(row["outcome"], "an outcome this doctor does not know")
        findings.append(
            Finding(
                OUTCOMES,
                row["outcome"],
                "ok",
                f"{row['count']} in {since} ({', '.join(last)}): {meaning}",
            )
        )
    return findings


def _reading(reason: str, kids: int) -> Reading:
    if reason == "unknown_key" and kids < MANY_KIDS:
        return _ONE_UNKNOWN_KEY
    return STEADY_READINGS.get(
        reason,
        Reading("a check this doctor does not know", "see docs/webhooks.md, 'The receiver'"),
    )


def _webhook(line: dict[str, Any]) -> str | None:
    kind, code = _printable(line.get("webhook_type")), _printable(line.get("webhook_code"))
    return f"{kind}/{code}" if kind and code else (kind or code)


def _printable(value: object) -> str | None:
    """A logged string that is safe to print: no control characters (a sender's kid could
    carry terminal escapes), at most 128 characters."""
    if not isinstance(value, str) or not value:
        return None
    if not value.isprintable():
        return repr(value)[:128]
    return value[:128]


def _short(text: str) -> str:
    return text if len(text) <= _KID_SHOWN else text[: _KID_SHOWN - 3] + "..."


def _ordered(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    ordered = sorted(rows, key=lambda r: (-r["count"], -r["_timestamp"]))
    return [{k: v for k, v in row.items() if not k.startswith("_")} for row in ordered]


def _iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
