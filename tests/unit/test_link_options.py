"""The link-token body's options, update mode's `item_id` in particular (`linktoken.link_options`)."""

from __future__ import annotations

from typing import Any

import pytest

from linktoken.config import load_config
from linktoken.link_options import parse_link_options
from linktoken.plaid_request import build_update_link_token_request
from linktoken.problems import Problem

CONFIG = load_config(
    {"PLAID_SECRET_ID": "s", "PLAID_CLIENT_NAME": "Acme", "PLAID_PRODUCTS": "auth,transactions"}
)


def test_update_mode_takes_an_item_id_and_no_products() -> None:
    options = parse_link_options({"item_id": "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6"}, CONFIG)
    assert options.item_id == "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6"
    assert options.products == ()


@pytest.mark.parametrize(
    "body",
    [
        {"item_id": None},  # an app that lost its item_id must not get a new Item's token
        {"item_id": ""},
        {"item_id": 5},
        {"item_id": "../x"},
        {"item_id": "a" * 101},
        {"item_id": "abc\n"},  # `$` would pass it
        {"item_id": "abc", "products": ["auth"]},
    ],
)
def test_a_bad_update_mode_request_is_invalid(body: dict[str, Any]) -> None:
    with pytest.raises(Problem) as refused:
        parse_link_options(body, CONFIG)
    assert refused.value.code == "INVALID_REQUEST"


def test_the_update_mode_request_has_the_access_token_and_no_products() -> None:
    options = parse_link_options({"item_id": "item1", "platform": "web"}, CONFIG)
    body = build_update_link_token_request(CONFIG, options, "u1", "access-sandbox-1", False)
    assert body == {
        "client_name": "Acme",
        "language": "en",
        "country_codes": ["US"],
        "user": {"client_user_id": "u1"},
        "access_token": "access-sandbox-1",
    }
    selecting = build_update_link_token_request(CONFIG, options, "u1", "access-sandbox-1", True)
    assert selecting["update"] == {"account_selection_enabled": True}
