"""`make invoke` (`python -m infra.invoke`) as a new user runs it: a subprocess, no AWS, no keys."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers_app import invoke


@pytest.mark.parametrize("event", ["infra/events/ok.json", "ok.json"])
def test_an_event_is_found_by_path_or_by_name(event: str) -> None:
    proc = invoke(event)

    assert proc.returncode == 0, proc.stderr
    response = json.loads(proc.stdout[proc.stdout.index("{\n") :])
    assert response["statusCode"] == 200
    assert "NOT Plaid" in proc.stderr  # the stand-in says what it is


def test_an_unknown_event_is_named_with_the_choices() -> None:
    proc = invoke("missing.json")

    assert proc.returncode == 1
    assert "no event file 'missing.json'" in proc.stderr
    assert "platform-ios.json" in proc.stderr
    assert "items-list.json" in proc.stderr
    assert "Traceback" not in proc.stderr


ITEMS_EVENTS = Path(__file__).resolve().parents[2] / "infra/events/items"
ITEMS_EXPECTED: dict[str, int] = json.loads((ITEMS_EVENTS / "expected.json").read_text())


def response_of(proc: Any) -> Any:
    return json.loads(proc.stdout[proc.stdout.index("{\n") :])


def test_every_items_event_has_an_expectation_and_a_route_of_the_template() -> None:
    from infra.gateway.apigw_routes import RouteTable
    from infra.gateway.cfn_template import function_routes, load_template

    on_disk = {p.name for p in ITEMS_EVENTS.glob("*.json")} - {"expected.json"}
    assert set(ITEMS_EXPECTED) == on_disk
    table = RouteTable(function_routes(load_template()))
    keys = set()
    for name in ITEMS_EXPECTED:
        event = json.loads((ITEMS_EVENTS / name).read_text())
        route = table.route_for_key(event["routeKey"])
        assert route is not None, name
        context = event["requestContext"]
        assert context["routeKey"] == event["routeKey"]
        assert (context["http"]["method"], context["http"]["path"]) == (
            route.method,
            event["rawPath"],
        )
        match = table.match(route.method, event["rawPath"])
        assert match is not None and match.route == route, name
        assert event.get("pathParameters", {}) == match.path_parameters, name
        keys.add(event["routeKey"])
    assert keys == {r.route_key for r in table.routes}, "an event for every route"


@pytest.mark.parametrize(("event", "function"), [
    ("items-exchange.json", "ItemExchangeFunction (exchange_app.lambda_handler)"),
    ("items-list.json", "ItemsFunction (items_app.lambda_handler)"),
    ("item-remove.json", "ItemsFunction (items_app.lambda_handler)"),
    ("link-token-update.json", "LinkTokenFunction (app.lambda_handler)"),
])  # fmt: skip
def test_each_items_event_gets_its_expected_status_from_its_routes_function(
    event: str, function: str
) -> None:
    proc = invoke(event)

    assert proc.returncode == 0, proc.stderr
    response = response_of(proc)
    assert response["statusCode"] == ITEMS_EXPECTED[event], proc.stderr
    assert f"Function: {function}, route " in proc.stderr
    assert "in moto's DynamoDB" in proc.stderr and "in moto's KMS" in proc.stderr
    assert "access-sandbox" not in proc.stdout + proc.stderr
    assert "user_id_hmac_key" not in proc.stdout + proc.stderr


def test_an_exchange_gets_a_fresh_public_token_from_the_standin_first() -> None:
    proc = invoke("items-exchange.json")

    assert proc.returncode == 0, proc.stderr
    assert "a fresh public token for ins_109508, from the stand-in's" in proc.stderr
    body = response_of(proc)["body"]
    assert body["institution"]["name"] == "First Platypus Bank"
    assert response_of(proc)["headers"]["Location"] == f"/items/{body['item_id']}"


def test_an_event_about_an_item_gets_one_of_its_user_stored_first() -> None:
    proc = invoke("item-remove.json")

    assert proc.returncode == 0, proc.stderr
    stored = re.search(r"its item_id (\w+) replaces the event's", proc.stderr)
    assert stored, proc.stderr
    removed = [
        json.loads(line)
        for line in proc.stdout.splitlines()
        if line.startswith("{") and '"item_removed"' in line
    ]
    assert [line["item_id"] for line in removed] == [stored.group(1)]
    listed = response_of(invoke("items-list.json"))
    (item,) = listed["body"]["items"]
    assert item["health"] == "healthy"


def test_with_real_aws_the_items_events_say_which_settings_are_missing() -> None:
    proc = invoke(
        "items-list.json",
        AWS_PROFILE="no-such-profile-for-this-test",
        PLAID_SECRET_ID="some/secret",
    )

    assert proc.returncode == 2
    assert "ITEMS_TABLE (the stack's ItemsTableName output)" in proc.stderr
    assert "ITEMS_KEY_ID (the stack's ItemsKeyArn output)" in proc.stderr
    assert "Traceback" not in proc.stderr
