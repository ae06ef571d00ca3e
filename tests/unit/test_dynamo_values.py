"""DynamoDB attribute values to Python and back (`plaiditems.dynamo_values`)."""

from __future__ import annotations

from typing import Any

import pytest

from plaiditems.dynamo_values import from_attribute, from_item, to_attribute, to_item


def test_each_type_on_the_wire() -> None:
    assert to_attribute("x") == {"S": "x"}
    assert to_attribute(3) == {"N": "3"}
    assert to_attribute(True) == {"BOOL": True}  # not a number, though bool is an int
    assert to_attribute(None) == {"NULL": True}
    assert to_attribute(["a", 1]) == {"L": [{"S": "a"}, {"N": "1"}]}
    assert to_attribute({"k": None}) == {"M": {"k": {"NULL": True}}}


@pytest.mark.parametrize("value", ["", "ü", 0, -5, True, False, None, [], {}, [{"a": [1, "b"]}]])
def test_a_value_comes_back_as_it_went(value: Any) -> None:
    assert from_attribute(to_attribute(value)) == value


def test_an_item_leaves_out_none_fields() -> None:
    assert to_item({"a": "x", "b": None}) == {"a": {"S": "x"}}
    assert from_item({"a": {"S": "x"}, "n": {"N": "2"}}) == {"a": "x", "n": 2}


def test_types_the_table_does_not_hold_are_refused() -> None:
    with pytest.raises(TypeError):
        to_attribute(1.5)
    with pytest.raises(ValueError, match="B"):
        from_attribute({"B": "AAAA"})
