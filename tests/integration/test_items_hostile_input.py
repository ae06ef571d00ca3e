"""Hostile input to the Items routes, property-based: whatever the body, the metadata or the
path parameter, the answer is a documented problem (or a created Item made of the request's
own checked values), never a 5xx, and no bad request reaches Plaid or the table.

The real handlers run against moto (Secrets Manager, DynamoDB, KMS) and the Plaid stand-in
(tests/helpers_items.py). Examples per property: HOSTILE_EXAMPLES (default 200, as
test_hostile_input.py).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.doubles.lambda_runtime import LambdaContext
from linktoken.endpoint import handle
from plaiditems.endpoint import handle_exchange, handle_items
from tests.helpers_items import World, body_of, event, exchange_context, items_world

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "200"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DOCUMENTED = {
    code: int(status)
    for status, code in re.findall(
        r"^\| (\d{3}) \| `([A-Z_]+)` \|", (ROOT / "docs/errors.md").read_text(), re.MULTILINE
    )
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
texts = st.text(max_size=300) | st.sampled_from(["", " ", "\x00", "ins_1", "a" * 201, "\ud800"])
accounts = (
    st.lists(
        st.fixed_dictionaries(
            {"id": texts, "name": texts | st.none()},
            optional={
                "mask": texts | st.none() | st.integers(),
                "type": json_values,
                "subtype": json_values,
            },
        ),
        max_size=3,
    )
    | json_values
)
metadata = st.fixed_dictionaries(
    {},
    optional={
        "institution": st.fixed_dictionaries(
            {},
            optional={
                "institution_id": texts | json_values,
                "id": texts,
                "name": texts | json_values,
            },
        )
        | json_values,
        "accounts": accounts,
        "link_session_id": texts | json_values,
        "extra": json_values,
    },
)
bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            "public_token": st.sampled_from(["public-sandbox-x", "public-", "access-sandbox-1"])
            | texts
            | json_values,
            "metadata": metadata | json_values,
            "unknown": json_values,
        },
    )
    | json_values
)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with items_world() as built:
        yield built


def documented(answer: dict[str, Any], *allowed: int) -> dict[str, Any] | None:
    """The answer is a documented 4xx problem, or one of `allowed` success statuses."""
    status = answer["statusCode"]
    problem: dict[str, Any] | None = body_of(answer)
    if status in allowed:
        return problem
    assert problem is not None
    assert 400 <= status < 500, problem
    assert DOCUMENTED[problem["code"]] == status, problem
    return problem


@PROPERTY
@given(body=bodies)
def test_any_exchange_body_is_a_documented_4xx_or_an_item_of_its_own_values(
    world: World, body: Any
) -> None:
    before = len(world.plaid.requests)
    raw = handle_exchange(
        event("POST", "/items", "hostile-user", None) | {"body": json.dumps(body)},
        exchange_context(),
        world.items,
    )
    answer = documented(raw, 201)
    if raw["statusCode"] == 201:
        assert (
            answer is not None
            and answer["institution"]["name"] == body["metadata"]["institution"]["name"]
        )
    elif answer is not None and answer["code"] == "INVALID_REQUEST":
        assert len(world.plaid.requests) == before  # refused before anything was called


@PROPERTY
@given(item_id=st.text(max_size=300) | st.sampled_from(["", "..", "item#x", "a" * 2000, "%00"]))
def test_any_item_id_on_delete_is_404_for_a_stranger(world: World, item_id: str) -> None:
    raw = handle_items(
        event("DELETE", "/items/x", "stranger", item_id=item_id), LambdaContext(), world.items
    )
    problem = documented(raw)
    assert problem is not None and problem["code"] in {"ITEM_NOT_FOUND", "UNAUTHENTICATED"}


@PROPERTY
@given(item_id=json_values | st.text(max_size=300))
def test_any_update_mode_item_id_is_400_or_404(world: World, item_id: Any) -> None:
    raw = handle(
        event("POST", "/link-token", "stranger", {"item_id": item_id}), LambdaContext(), world.link
    )
    problem = documented(raw)
    assert problem is not None and problem["code"] in {"INVALID_REQUEST", "ITEM_NOT_FOUND"}


def test_the_table_holds_nothing_a_refused_request_sent(world: World) -> None:
    dump = world.table_dump()
    assert "hostile-user" not in dump and "stranger" not in dump
