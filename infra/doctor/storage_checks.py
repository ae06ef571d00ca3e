"""`--function` / `--stack`: the Items table and key a deployed function names, read with the
caller's AWS configuration through the service's own client (`linktoken.aws_clients`,
`plaiditems.aws_calls`): the same endpoint rules, and a failure the function would meet named in
the words its log line uses (`storage_problem`).

- the table (DescribeTable, DescribeContinuousBackups, DescribeTimeToLive): it exists and is
  usable, has the index `ByItemId` the webhook processor finds Items by, point-in-time recovery
  is on, TTL is on `expires_at` (tombstones and exchange records carry it);
- the key (DescribeKey, GetKeyRotationStatus): enabled, a symmetric ENCRYPT_DECRYPT key,
  rotation on.

What the caller may not read (no permission, an unreachable endpoint) is a `skip` saying so
(`aws_reads`). Nothing read here is secret: names, states, ARNs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from infra.doctor import aws_reads
from infra.doctor.aws_reads import ClientFactory, Missing, Skip, default_client
from infra.doctor.findings import Finding
from linktoken.aws_clients import DYNAMODB, KMS, JsonCall
from linktoken.aws_json import AwsServiceError
from linktoken.config import SETTINGS, Setting
from plaiditems.aws_calls import storage_problem
from plaiditems.store import BY_ITEM_ID, EXCHANGE_RECORD_HOURS, TOMBSTONE_DAYS, TTL_ATTRIBUTE

GROUP = "items storage"
_USABLE_TABLE: Final = frozenset({"ACTIVE", "UPDATING"})
_INVALID: Final = "ValidationException"  # DynamoDB's answer to a Query of an index it lacks
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


def _setting(field: str) -> Setting:
    return next(s for s in SETTINGS if s.field == field)


TABLE_SETTING: Final = _setting("items_table")
KEY_SETTING: Final = _setting("items_key_id")


def check_table(table: str, client_factory: ClientFactory = default_client) -> list[Finding]:
    """The table exists and is usable, has its index, PITR is on, TTL is on `expires_at`."""
    try:
        call = aws_reads.client(client_factory, DYNAMODB, GROUP, "table", "DescribeTable")
    except Skip as skip:
        return [skip.finding]
    try:
        return _table_findings(call, table)
    finally:
        call.close()


def check_key(
    key_id: str, kms_operation: str, client_factory: ClientFactory = default_client
) -> list[Finding]:
    """The key is enabled, symmetric ENCRYPT_DECRYPT, with rotation on. `kms_operation` is
    what the function asks of it (Encrypt, Decrypt), for the words its log line would use."""
    try:
        call = aws_reads.client(client_factory, KMS, GROUP, "key", "DescribeKey")
    except Skip as skip:
        return [skip.finding]
    try:
        return _key_findings(call, key_id, kms_operation)
    finally:
        call.close()


def _table_findings(client: JsonCall, table: str) -> list[Finding]:
    try:
        described = aws_reads.read(
            client, "dynamodb", "DescribeTable", {"TableName": table}, GROUP, "table"
        )
    except Skip as skip:
        return [skip.finding]
    except Missing as missing:
        return [Finding(GROUP, "table", "problem", missing.cause, TABLE_SETTING.fix)]
    findings = [_table_status(table, described.get("Table") or {})]
    if findings[0].status == "problem":
        return findings
    findings.append(_index(table, described.get("Table") or {}))
    for check in (_pitr, _ttl):
        try:
            findings.append(check(client, table))
        except Skip as skip:
            findings.append(skip.finding)
        except Missing as missing:  # deleted between two calls
            findings.append(Finding(GROUP, "table", "problem", missing.cause, TABLE_SETTING.fix))
    return findings


def _key_findings(client: JsonCall, key_id: str, kms_operation: str) -> list[Finding]:
    try:
        described = aws_reads.read(client, "kms", "DescribeKey", {"KeyId": key_id}, GROUP, "key")
    except Skip as skip:
        return [skip.finding]
    except Missing as missing:
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


def _index(table: str, described: dict[str, Any]) -> Finding:
    """The webhook processor finds an Item by its item_id through `ByItemId` (keys only)."""
    indexes = {str(i.get("IndexName")): i for i in described.get("GlobalSecondaryIndexes") or []}
    index = indexes.get(BY_ITEM_ID)
    hash_keys = [
        k.get("AttributeName")
        for k in (index or {}).get("KeySchema") or []
        if k.get("KeyType") == "HASH"
    ]
    status = str((index or {}).get("IndexStatus") or "?")
    fix = "deploy the stack again (its ItemsTable has the index), or point ITEMS_TABLE at it"
    if index is None or hash_keys != ["item_id"]:
        seen = "has no index ByItemId" if index is None else f"ByItemId is keyed on {hash_keys}"
        said = _function_cause("Query", _INVALID, "dynamodb")
        return Finding(
            GROUP,
            "table index",
            "problem",
            f"{table} {seen} (hash key item_id): the webhook processor cannot find the Item a "
            f"webhook names, and every webhook fails ({said})",
            fix,
        )
    if status == "CREATING":
        return Finding(
            GROUP,
            "table index",
            "warn",
            f"{table}: ByItemId is still CREATING (backfilling): webhooks fail until it is ACTIVE",
            "wait for the index to become ACTIVE",
        )
    if status not in _USABLE_TABLE:
        return Finding(
            GROUP, "table index", "problem", f"{table}: ByItemId is {status}: webhooks fail", fix
        )
    return Finding(GROUP, "table index", "ok", f"ByItemId on item_id for {table} ({status})")


def _pitr(client: JsonCall, table: str) -> Finding:
    answer = aws_reads.read(
        client, "dynamodb", "DescribeContinuousBackups", {"TableName": table}, GROUP, "table PITR"
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
    answer = aws_reads.read(
        client, "dynamodb", "DescribeTimeToLive", {"TableName": table}, GROUP, "table TTL"
    )
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
        rotation = aws_reads.read(
            client, "kms", "GetKeyRotationStatus", {"KeyId": arn}, GROUP, "key rotation"
        )
    except Skip as skip:
        return skip.finding
    except Missing as missing:
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


# ----------------------------------------------------------------------------- helpers -----
def _function_cause(operation: str, code: str, service: str = "kms") -> str:
    """The cause the function's log line gives when `service` answers `code` to `operation`."""
    error = AwsServiceError({"Error": {"Code": code}, "ResponseMetadata": {}})
    return storage_problem(service, operation, error).cause or code


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
