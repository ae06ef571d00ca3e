"""`POST /items`'s body as Link's onSuccess gives it (`plaiditems.link_metadata`)."""

from __future__ import annotations

from typing import Any

import pytest

from linktoken.problems import Problem
from plaiditems.link_metadata import parse_exchange
from plaiditems.records import Account, Institution

TOKEN = "public-sandbox-5c2ff5d1-c5ad-4b59-8d44-35ac0e2a7d21"


def body(**metadata: Any) -> dict[str, Any]:
    base = {
        "institution": {"institution_id": "ins_109508", "name": "First Platypus Bank"},
        "accounts": [
            {
                "id": "a1",
                "name": "Checking",
                "mask": "0000",
                "type": "depository",
                "subtype": "checking",
            }
        ],
        "link_session_id": "79e772be-547d-4c9c-8b76-4ac4ed4c441a",
    }
    return {"public_token": TOKEN, "metadata": {**base, **metadata}}


def test_the_web_sdks_metadata() -> None:
    request = parse_exchange(body())
    assert request.public_token == TOKEN
    assert request.token_environment == "sandbox"
    assert request.institution == Institution("ins_109508", "First Platypus Bank")
    assert request.accounts == (Account("a1", "Checking", "0000", "depository", "checking"),)
    assert request.link_session_id == "79e772be-547d-4c9c-8b76-4ac4ed4c441a"


def test_the_mobile_sdks_institution_id_and_a_null_mask() -> None:
    request = parse_exchange(
        body(
            institution={"id": "ins_3", "name": "Chase"},
            accounts=[{"id": "a", "name": "C", "mask": None}],
        )
    )
    assert request.institution.institution_id == "ins_3"
    assert request.accounts[0].mask is None


def test_unknown_metadata_fields_are_ignored_unknown_top_level_fields_refused() -> None:
    assert parse_exchange(body(transfer_status=None, status="connected")).institution.name
    with pytest.raises(Problem, match="Unknown field"):
        parse_exchange({**body(), "access_token": "x"})


def test_repr_never_shows_the_public_token() -> None:
    assert TOKEN not in repr(parse_exchange(body()))


@pytest.mark.parametrize(
    "bad",
    [
        None,
        {},
        {"public_token": TOKEN},
        {"public_token": "link-sandbox-1", "metadata": body()["metadata"]},
        {"public_token": 7, "metadata": body()["metadata"]},
        {"public_token": "public-sandbox-" + "a" * 101, "metadata": body()["metadata"]},
        body(institution=None),
        body(institution={"name": "No id"}),
        body(institution={"institution_id": "ins_1", "name": ""}),
        body(accounts=[]),
        body(accounts=[{"name": "no id"}]),
        body(accounts=[{"id": "a", "mask": 1234}]),
        body(accounts=[{"id": "a", "name": "x" * 201}]),
        body(accounts=[{"id": f"a{i}"} for i in range(101)]),
        body(link_session_id=5),
        body(institution={"institution_id": "ins\x00", "name": "Bank"}),
        {"public_token": TOKEN + "\n", "metadata": body()["metadata"]},  # `$` would pass it
    ],
)
def test_what_is_not_link_metadata_is_invalid_request(bad: Any) -> None:
    with pytest.raises(Problem) as refused:
        parse_exchange(bad)
    assert refused.value.code == "INVALID_REQUEST"
