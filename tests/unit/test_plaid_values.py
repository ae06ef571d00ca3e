"""`linktoken.plaid_values`: the Link languages are exactly the ones Plaid's request schema lists."""

from __future__ import annotations

import json
import re

from linktoken.plaid_values import LANGUAGES
from tests.conftest import (
    plaid_schema,
)

REQUEST_SCHEMA = "link_token_create_request.schema.json"


# --- the body sent to Plaid -------------------------------------------------------------------


def test_languages_are_the_ones_plaids_schema_lists() -> None:
    description = json.loads(plaid_schema(REQUEST_SCHEMA).read_text())["properties"]["language"][
        "description"
    ]
    # The spec has no enum for `language`; its description lists them as (`'xx'`).
    assert set(re.findall(r"\(`'([a-z]{2})'`\)", description)) == LANGUAGES
