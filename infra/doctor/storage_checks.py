"""`--function` / `--stack`: the Items table and key a deployed function names, read with the
caller's AWS configuration through the service's own client (`linktoken.aws_clients`,
`plaiditems.aws_calls`): the same endpoint rules, and a failure the function would meet named in
the words its log line uses (`storage_problem`).

- the table (DescribeTable, DescribeContinuousBackups, DescribeTimeToLive): it exists and is
  usable, point-in-time recovery is on, TTL is on `expires_at` (tombstones and exchange records
  carry it);
- the key (DescribeKey, GetKeyRotationStatus): enabled, a symmetric ENCRYPT_DECRYPT key,
  rotation on.

What the caller may not read (no permission, an unreachable endpoint) is a `skip` saying so:
the function's role is another principal. Nothing read here is secret: names, states, ARNs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from infra.doctor.findings import Finding
from linktoken.aws_clients import DYNAMODB, KMS, JsonCall, ServiceSpec, json_client
from linktoken.aws_json import AwsServiceError
from linktoken.config import SETTINGS, Setting
from linktoken.problems import Problem
from linktoken.xray import no_span
from plaiditems.aws_calls import aws_call, storage_problem
from plaiditems.store import EXCHANGE_RECORD_HOURS, TOMBSTONE_DAYS, TTL_ATTRIBUTE

GROUP = "items storage"
# Answers about the caller's own credentials or permissions, not the function's: not checked.
_CALLERS: Final = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "IncompleteSignature",
    }
)
_USABLE_TABLE: Final = frozenset({"ACTIVE", "UPDATING"})
# A key's state and what the function's Encrypt/Decrypt answer then (its log line's code).
_KEY_STATE_CODES: Final = {
    "Disabled": "DisabledException",
    "PendingDeletion": "KMSInvalidStateException",
    "PendingReplicaDeletion": "KMSInvalidStateException",
    "PendingImport": "KMSInvalidStateException",
    "Unavailable": "KMSInvalidStateException",
    "Creating": "KMSInvalidStateException",
    "Updating": "KMSInvalidStateException",
}

ClientFactory = Callable[[ServiceSpec], JsonCall]


def _setting(field: str) -> Setting:
    return next(s for s in SETTINGS if s.field == field)


TABLE_SETTING: Final = _setting("items_table")
KEY_SETTING: Final = _setting("items_key_id")


def default_client(spec: ServiceSpec) -> JsonCall:
    """The service's client for `spec`, on the caller's environment (profile, region,
    AWS_ENDPOINT_URL)."""
    return json_client(spec)


def _client(factory: ClientFactory, spec: ServiceSpec, check: str, operation: str) -> JsonCall:
    try:
        return factory(spec)
    except Exception as exc:  # botocore's client without a region, a malformed endpoint...
        raise _Skip(_not_read(check, f"{type(exc).__name__}: {exc}", operation)) from None


class _Skip(Exception):
    """The caller could not read it; the finding says why."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.detail)
        self.finding = finding


def check_table(table: str, client_factory: ClientFactory = default_client) -> list[Finding]:
    """The table exists and is usable, PITR is on, TTL is on `expires_at`."""
    try:
        client = _client(client_factory, DYNAMODB, "table", "DescribeTable")
    except _Skip as skip:
        return [skip.finding]
    try:
        return _table_findings(client, table)
    finally:
        client.close()


def check_key(
    key_id: str, kms_operation: str, client_factory: ClientFactory = default_client
) -> list[Finding]:
    """The key is enabled, symmetric ENCRYPT_DECRYPT, with rotation on. `kms_operation` is
    what the function asks of it (Encrypt, Decrypt), for the words its log line would use."""
    try:
        client = _client(client_factory, KMS, "key", "DescribeKey")
    except _Skip as skip:
        return [skip.finding]
    try:
        return _key_findings(client, key_id, kms_operation)
    finally:
        client.close()


def _table_findings(client: JsonCall, table: str) -> list[Finding]:
    try:
        described = _read(client, "dynamodb", "DescribeTable", {"TableName": table}, "table")
    except _Skip as skip:
        return [skip.finding]
    except _Missing as missing:
        return [Finding(GROUP, "table", "problem", missing.cause, TABLE_SETTING.fix)]
    findings = [_table_status(table, described.get("Table") or {})]
    if findings[0].status == "problem":
        return findings
    for check in (_pitr, _ttl):
        try:
            findings.append(check(client, table))
        except _Skip as skip:
            findings.append(skip.finding)
        except _Missing as missing:  # deleted between two calls
            findings.append(Finding(GROUP, "table", "problem", missing.cause, TABLE_SETTING.fix))
    return findings


def _key_findings(client: JsonCall, key_id: str, kms_operation: str) -> list[Finding]:
    try:
        described = _read(client, "kms", "DescribeKey", {"KeyId": key_id}, "key")
    except _Skip as skip:
        return [skip.finding]
    except _Missing as missing:
        return [Finding(GROUP, "key", "problem", missing.cause, KEY_SETTING.fix)]
    meta: dict[str, Any] = described.get("KeyMetadata") or {}
    arn = str(meta.get("Arn") or key_id)
    named = arn if arn == key_id else f"{key_id} ({arn})"
    state = str(meta.get("KeyState") or ("Enabled" if meta.get("Enabled") else "Disabled"))
    spec = str(meta.get("KeySpec") or meta.get("CustomerMasterKeySpec") or "")
    usage = str(meta.get("KeyUsage") or "")
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
        said = _function_cause(kms_operation, "InvalidKeyUsageException")
        return [
            Finding(
                GROUP,
                "key",
                "problem",
                f"{named} is a {spec or '?'} {usage or '?'} key, not a symmetric "
                f"ENCRYPT_DECRYPT one: the function's calls fail ({said})",
                KEY_SETTING.fix,
            )
        ]
    if state != "Enabled" or meta.get("Enabled") is False:
        return [_unusable_key(named, arn, state, meta, kms_operation)]
    ok = Finding(GROUP, "key", "ok", f"{named}: enabled, symmetric ENCRYPT_DECRYPT ({state})")
    return [ok, _rotation(client, arn)]


# ---------------------------------------------------------------------------- the table ----
def _table_status(table: str, described: dict[str, Any]) -> Finding:
    status = str(described.get("TableStatus") or "?")
    billing = (described.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED"
    if status in _USABLE_TABLE:
        return Finding(GROUP, "table", "ok", f"{table}: {status}, {billing}")
    if status == "CREATING":
        return Finding(
            GROUP,
            "table",
            "warn",
            f"{table}: still CREATING: the functions' calls fail until it is ACTIVE",
            "wait for the stack's deployment to finish",
        )
    return Finding(
        GROUP,
        "table",
        "problem",
        f"{table}: {status}: the functions cannot read or write it",
        TABLE_SETTING.fix,
    )


def _pitr(client: JsonCall, table: str) -> Finding:
    answer = _read(
        client, "dynamodb", "DescribeContinuousBackups", {"TableName": table}, "table PITR"
    )
    backups = answer.get("ContinuousBackupsDescription") or {}
    status = (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus")
    if status == "ENABLED":
        return Finding(GROUP, "table PITR", "ok", f"point-in-time recovery on for {table}")
    return Finding(
        GROUP,
        "table PITR",
        "problem",
        f"point-in-time recovery is {status or 'off'} for {table}: a deleted or overwritten "
        "Item cannot be restored, and with its sealed token goes the only way to remove it at "
        "Plaid (the stack's ItemsTable has it on)",
        f"aws dynamodb update-continuous-backups --table-name {table} "
        "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true, or deploy "
        "the stack again",
    )


def _ttl(client: JsonCall, table: str) -> Finding:
    answer = _read(client, "dynamodb", "DescribeTimeToLive", {"TableName": table}, "table TTL")
    described = answer.get("TimeToLiveDescription") or {}
    status = described.get("TimeToLiveStatus") or "DISABLED"
    attribute = described.get("AttributeName")
    if status in ("ENABLED", "ENABLING") and attribute == TTL_ATTRIBUTE:
        return Finding(GROUP, "table TTL", "ok", f"{status} on {TTL_ATTRIBUTE} for {table}")
    seen = f"on {attribute!r}" if attribute and status in ("ENABLED", "ENABLING") else status
    return Finding(
        GROUP,
        "table TTL",
        "problem",
        f"TTL is {seen} for {table}, not on {TTL_ATTRIBUTE}: removed Items' tombstones "
        f"({TOMBSTONE_DAYS} days) and exchange records ({EXCHANGE_RECORD_HOURS} h) are never "
        "deleted",
        f"aws dynamodb update-time-to-live --table-name {table} --time-to-live-specification "
        f"Enabled=true,AttributeName={TTL_ATTRIBUTE} (a table has one TTL attribute: disable "
        "another one first), or deploy the stack again",
    )


# ------------------------------------------------------------------------------ the key ----
def _rotation(client: JsonCall, arn: str) -> Finding:
    try:
        rotation = _read(client, "kms", "GetKeyRotationStatus", {"KeyId": arn}, "key rotation")
    except _Skip as skip:
        return skip.finding
    except _Missing as missing:
        return Finding(GROUP, "key rotation", "problem", missing.cause, KEY_SETTING.fix)
    if rotation.get("KeyRotationEnabled") is True:
        return Finding(GROUP, "key rotation", "ok", f"on for {arn}")
    return Finding(
        GROUP,
        "key rotation",
        "problem",
        f"off for {arn}: the key material that seals every access token never changes (the "
        "stack's ItemsKey has EnableKeyRotation: true)",
        f"aws kms enable-key-rotation --key-id {arn}, or deploy the stack again",
    )


def _unusable_key(
    named: str, arn: str, state: str, meta: dict[str, Any], kms_operation: str
) -> Finding:
    said = _function_cause(kms_operation, _KEY_STATE_CODES.get(state, "KMSInvalidStateException"))
    detail = f"{named} is {state}: the function's calls fail ({said})"
    if state == "PendingDeletion":
        when = meta.get("DeletionDate")
        if isinstance(when, int | float):
            detail += f"; it will be deleted on {_iso(when)}, and every sealed token with it"
        fix = (
            f"aws kms cancel-key-deletion --key-id {arn}, then aws kms enable-key --key-id "
            f"{arn}: a deleted key leaves every stored access token unreadable"
        )
    elif state == "Disabled":
        fix = f"aws kms enable-key --key-id {arn}, or {KEY_SETTING.fix}"
    else:
        fix = KEY_SETTING.fix
    return Finding(GROUP, "key", "problem", detail, fix)


# ---------------------------------------------------------------------------- reading ------
class _Missing(Exception):
    """AWS says it is not there (or not usable as named); `cause` in the function's words."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def _read(
    client: JsonCall, service: str, operation: str, params: dict[str, Any], check: str
) -> dict[str, Any]:
    """One read through the service's call; raises `_Skip` for what the caller may not read,
    `_Missing` (with the cause the function's log line would give) for the rest."""
    try:
        return aws_call(client, no_span, service, operation, params)
    except AwsServiceError as exc:
        if exc.code in _CALLERS:
            raise _Skip(_not_read(check, f"{service} {operation}: {exc.code}", operation)) from None
        problem = storage_problem(service, operation, exc)
        cause = problem.cause or f"{service} {operation}: {exc.code}"
        if problem.code != "MISCONFIGURED":  # throttled, AWS's own 5xx: try again later
            raise _Skip(_not_read(check, cause, operation)) from None
        raise _Missing(cause) from None
    except Problem as problem:  # unreachable, no credentials or region: the caller's setup
        raise _Skip(_not_read(check, problem.cause or problem.code, operation)) from None


def _not_read(check: str, why: str, operation: str) -> Finding:
    service = "dynamodb" if check.startswith("table") else "kms"
    return Finding(
        GROUP,
        check,
        "skip",
        f"could not read it: {why} (read with your AWS profile and region, not the "
        "function's role)",
        f"grant {service}:{operation} to the caller, or check the region and network",
    )


def _function_cause(operation: str, code: str) -> str:
    """The cause the function's log line gives when KMS answers `code` to `operation`."""
    error = AwsServiceError({"Error": {"Code": code}, "ResponseMetadata": {}})
    return storage_problem("kms", operation, error).cause or code


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
