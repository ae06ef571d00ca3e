"""The Items table: each owner's Items, and one record per public token being exchanged.

Keys: an Item is `pk = owner#<owner>`, `sk = item#<item_id>`; an exchange is
`pk = exchange#<keyed digest of the public token>`, `sk = exchange`. The index `ByItemId`
(keys only) finds an Item's owner from its `item_id`, which is all a webhook names. A removed Item
stays as a tombstone (no sealed token, `removed_at`, expiring through the table's TTL after 30
days), so that repeating a DELETE is a 204 while an unknown `item_id` stays a 404.

An exchange record is the idempotency lock of `POST /items`: claimed with a conditional put
(free, or held by a request whose lock has expired), completed with the Item's id, or released
when the exchange failed before Plaid made an Item.
"""

from dataclasses import dataclass
from typing import Any, Final

from linktoken.aws_clients import JsonCall
from linktoken.aws_json import AwsServiceError
from linktoken.xray import Span, no_span
from plaiditems.aws_calls import aws_call, storage_problem
from plaiditems.dynamo_values import from_item, to_attribute, to_item
from plaiditems.records import ItemRecord

TOMBSTONE_DAYS: Final = 30
TTL_ATTRIBUTE: Final = "expires_at"  # the table's TTL attribute (template.yaml)
EXCHANGE_RECORD_HOURS: Final = 24
MAX_PAGES: Final = 10  # 10 pages of up to 1 MB: far beyond any one user's Items
_CONDITION_FAILED: Final = "ConditionalCheckFailedException"
UNKNOWN: Final = "UNKNOWN"  # an exchange whose answer never came back
_ITEM_FIELDS: Final = (
    "item_id, institution_id, institution_name, accounts, created_at, health, health_at, "
    "consent_expiration_time, disconnect_time, health_signed_at, link_session_id, removed_at"
)
BY_ITEM_ID: Final = "ByItemId"  # the table's index on item_id (template.yaml)
# The health's time fields: the one that goes with the new health is set, the others removed.
HEALTH_TIMES: Final = ("consent_expiration_time", "disconnect_time")


@dataclass(frozen=True, slots=True)
class Claim:
    """Who holds an exchange: `mine` (this request may exchange; `status` then says what the
    record was before, UNKNOWN for an earlier exchange whose answer never came back), or
    another request's record: COMPLETED with its `item_id`, or IN_PROGRESS."""

    mine: bool
    status: str | None = None
    owner: str | None = None
    item_id: str | None = None


class ItemStore:
    def __init__(self, client: JsonCall, table: str, span: Span = no_span) -> None:
        self._client = client
        self._table = table
        self._span = span

    # ---------------------------------------------------------------- Items --------------
    def list_items(self, owner: str) -> list[ItemRecord]:
        """The owner's Items, removed ones left out, oldest first."""
        records: list[ItemRecord] = []
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :item)",
            "ExpressionAttributeValues": {
                ":pk": to_attribute(_owner_pk(owner)),
                ":item": to_attribute("item#"),
            },
            "ProjectionExpression": _ITEM_FIELDS,
            "ConsistentRead": True,
        }
        for _ in range(MAX_PAGES):
            answer = self._call("Query", params)
            records += [ItemRecord.from_fields(from_item(i)) for i in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                break
            params["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        live = [record for record in records if not record.removed]
        return sorted(live, key=lambda record: (record.created_at, record.item_id))

    def get_item(self, owner: str, item_id: str) -> ItemRecord | None:
        """The owner's Item (a tombstone included), with its sealed token; None if the owner
        has none of that id."""
        answer = self._call(
            "GetItem",
            {"TableName": self._table, "Key": _item_key(owner, item_id), "ConsistentRead": True},
        )
        item = answer.get("Item")
        return ItemRecord.from_fields(from_item(item)) if item else None

    def put_item(self, owner: str, record: ItemRecord) -> None:
        """Store a new Item; an Item of that id already stored is left as it is."""
        item = {**to_item(record.fields()), **_item_key(owner, record.item_id)}
        try:
            self._call(
                "PutItem",
                {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                },
                handled=True,
            )
        except AwsServiceError as exc:
            if exc.code != _CONDITION_FAILED:
                raise storage_problem("dynamodb", "PutItem", exc) from None

    def tombstone(self, owner: str, item_id: str, removed_at: str, now_epoch: int) -> None:
        """Drop the sealed token and mark the Item removed; it expires after 30 days."""
        self._call(
            "UpdateItem",
            {
                "TableName": self._table,
                "Key": _item_key(owner, item_id),
                "UpdateExpression": (
                    f"SET removed_at = :at, {TTL_ATTRIBUTE} = :exp REMOVE sealed_token"
                ),
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {
                    ":at": to_attribute(removed_at),
                    ":exp": to_attribute(now_epoch + TOMBSTONE_DAYS * 86_400),
                },
            },
        )

    def find_owner(self, item_id: str) -> str | None:
        """The owner key of the Item `item_id` (removed or not), from the index; None if no
        Item has that id (yet: the index is eventually consistent)."""
        answer = self._call(
            "Query",
            {
                "TableName": self._table,
                "IndexName": BY_ITEM_ID,
                "KeyConditionExpression": "item_id = :item",
                "ExpressionAttributeValues": {":item": to_attribute(item_id)},
            },
        )
        for key in answer.get("Items", []):
            found = from_item(key)
            pk, sk = str(found.get("pk", "")), str(found.get("sk", ""))
            if sk == f"item#{item_id}" and pk.startswith("owner#"):
                return pk.removeprefix("owner#")
        return None

    def set_health(
        self,
        owner: str,
        item_id: str,
        health: str,
        signed_at: int,
        times: dict[str, str],
        health_at: str,
    ) -> bool:
        """Store the Item's health as of `signed_at`; False (nothing written) when the Item is
        removed, revoked, or already holds newer information."""
        names = {"#health": "health"}
        values: dict[str, Any] = {
            ":health": to_attribute(health),
            ":at": to_attribute(health_at),
            ":signed": to_attribute(signed_at),
            ":revoked": to_attribute("revoked"),
        }
        sets = ["#health = :health", "health_at = :at", "health_signed_at = :signed"]
        removes = []
        for name in HEALTH_TIMES:
            if name in times:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = to_attribute(times[name])
            else:
                removes.append(name)
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            self._call(
                "UpdateItem",
                {
                    "TableName": self._table,
                    "Key": _item_key(owner, item_id),
                    "UpdateExpression": update,
                    # Equal times: a redelivery of the same webhook, which writes the same.
                    "ConditionExpression": "attribute_exists(pk) AND "
                    "attribute_not_exists(removed_at) AND "
                    "(attribute_not_exists(health_signed_at) OR health_signed_at <= :signed) "
                    "AND (attribute_not_exists(#health) OR #health <> :revoked)",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                },
                handled=True,
            )
        except AwsServiceError as exc:
            if exc.code != _CONDITION_FAILED:
                raise storage_problem("dynamodb", "UpdateItem", exc) from None
            return False
        return True

    # ------------------------------------------------------------ exchanges --------------
    def claim_exchange(
        self, digest: str, owner: str, now_epoch: int, lock_seconds: int, tries: int = 2
    ) -> Claim:
        """Take the exchange of one public token, or say who has it."""
        item = {
            "pk": to_attribute(_exchange_pk(digest)),
            "sk": to_attribute("exchange"),
            "status": to_attribute("IN_PROGRESS"),
            "owner": to_attribute(owner),
            "locked_until": to_attribute(now_epoch + lock_seconds),
            TTL_ATTRIBUTE: to_attribute(now_epoch + EXCHANGE_RECORD_HOURS * 3600),
        }
        try:
            answer = self._call(
                "PutItem",
                {
                    "TableName": self._table,
                    "Item": item,
                    # Free, held by a request that died, or left by one whose exchange's
                    # outcome is unknown (the retry then learns it from Plaid).
                    "ConditionExpression": "attribute_not_exists(pk) OR "
                    "(#status = :in_progress AND locked_until < :now) OR #status = :unknown",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        ":in_progress": to_attribute("IN_PROGRESS"),
                        ":unknown": to_attribute(UNKNOWN),
                        ":now": to_attribute(now_epoch),
                    },
                    "ReturnValues": "ALL_OLD",
                },
                handled=True,
            )
        except AwsServiceError as exc:
            if exc.code != _CONDITION_FAILED:
                raise storage_problem("dynamodb", "PutItem", exc) from None
            held = self._call(
                "GetItem",
                {"TableName": self._table, "Key": _exchange_key(digest), "ConsistentRead": True},
            ).get("Item")
            if not held and tries > 1:  # released between our put and this read: free again
                return self.claim_exchange(digest, owner, now_epoch, lock_seconds, tries - 1)
            if not held:  # taken and released again meanwhile: another request is at it
                return Claim(False, "IN_PROGRESS", owner)
            record = from_item(held)
            return Claim(False, record.get("status"), record.get("owner"), record.get("item_id"))
        before = from_item(answer.get("Attributes") or {})
        return Claim(True, before.get("status"), before.get("owner"))

    def complete_exchange(self, digest: str, item_id: str) -> None:
        self._call(
            "UpdateItem",
            {
                "TableName": self._table,
                "Key": _exchange_key(digest),
                "UpdateExpression": "SET #status = :done, item_id = :item",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":done": to_attribute("COMPLETED"),
                    ":item": to_attribute(item_id),
                },
            },
        )

    def exchange_unknown(self, digest: str) -> None:
        """The exchange reached Plaid but no answer came back: Plaid may have made an Item. The
        claim stays, marked, so that a retry with the token can tell what Plaid did."""
        self._call(
            "UpdateItem",
            {
                "TableName": self._table,
                "Key": _exchange_key(digest),
                "UpdateExpression": "SET #status = :unknown",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":unknown": to_attribute(UNKNOWN)},
            },
        )

    def release_exchange(self, digest: str) -> None:
        self._call("DeleteItem", {"TableName": self._table, "Key": _exchange_key(digest)})

    def close(self) -> None:
        """Drop the client's connections (SnapStart after-restore)."""
        self._client.close()

    def _call(self, operation: str, params: dict[str, Any], handled: bool = False) -> Any:
        """`handled`: the caller reads AWS's error itself (a failed condition)."""
        try:
            return aws_call(self._client, self._span, "dynamodb", operation, params)
        except AwsServiceError as exc:
            if handled:
                raise
            raise storage_problem("dynamodb", operation, exc) from None


def _owner_pk(owner: str) -> str:
    return f"owner#{owner}"


def _exchange_pk(digest: str) -> str:
    return f"exchange#{digest}"


def _item_key(owner: str, item_id: str) -> dict[str, Any]:
    return {"pk": to_attribute(_owner_pk(owner)), "sk": to_attribute(f"item#{item_id}")}


def _exchange_key(digest: str) -> dict[str, Any]:
    return {"pk": to_attribute(_exchange_pk(digest)), "sk": to_attribute("exchange")}
