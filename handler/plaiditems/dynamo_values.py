"""DynamoDB's typed attribute values (`{"S": "x"}`, `{"N": "1"}`, ...) to Python and back,
for the types the Items table holds: strings, numbers (int), booleans, null, lists, maps."""

from collections.abc import Mapping
from typing import Any


def to_attribute(value: Any) -> dict[str, Any]:
    """One Python value as an attribute value.

    Example:
        >>> to_attribute({"mask": "0000", "n": 2, "ok": True})
        {'M': {'mask': {'S': '0000'}, 'n': {'N': '2'}, 'ok': {'BOOL': True}}}
    """
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attribute(v) for k, v in value.items()}}
    raise TypeError(f"no DynamoDB attribute for {type(value).__name__}")


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A record as DynamoDB's `Item`: every field but those that are None."""
    return {k: to_attribute(v) for k, v in values.items() if v is not None}


def from_attribute(attribute: Mapping[str, Any]) -> Any:
    """An attribute value as Python (numbers as int)."""
    ((kind, value),) = attribute.items()
    if kind == "NULL":
        return None
    if kind in {"S", "BOOL"}:
        return value
    if kind == "N":
        return int(value)
    if kind == "L":
        return [from_attribute(v) for v in value]
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    raise ValueError(f"attribute type {kind} is not one the Items table holds")


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: from_attribute(v) for k, v in item.items()}
