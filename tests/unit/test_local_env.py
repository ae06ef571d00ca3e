"""infra/invoke/local_env.py's choices that start nothing: with real AWS (AWS_PROFILE and
PLAID_SECRET_ID) the Items settings must be the user's, and a key moto cannot have is named
before anything starts (tests/integration/test_local_env.py runs the moto side)."""

from __future__ import annotations

import pytest

from infra.invoke.local_env import LocalSetupError, local_backends

# Real AWS for the secret, Plaid at an address of the user's with their keys: nothing to start.
REAL = {
    "AWS_PROFILE": "someone",
    "PLAID_SECRET_ID": "prod/plaid",
    "PLAID_CLIENT_ID": "cid",
    "PLAID_SECRET": "sec",
    "PLAID_BASE_URL": "http://127.0.0.1:9",
}


def test_real_aws_without_the_items_settings_names_them_and_keeps_env_json_out() -> None:
    environ = dict(REAL)
    with local_backends(environ) as backends:
        assert backends.items_missing == ("ITEMS_TABLE", "ITEMS_KEY_ID")
        assert "ITEMS_TABLE" not in environ, "infra/env.json's name is no stack's table"
        assert "ITEMS_KEY_ID" not in environ
        assert backends.items.startswith("NOT configured")
        assert "ItemsTableName" in backends.items and "ItemsKeyArn" in backends.items
        assert not backends.items_local
        assert "AWS_ENDPOINT_URL_DYNAMODB" not in environ
        assert environ["PLAID_ENV"] == "sandbox", "the rest of infra/env.json still applies"


def test_real_aws_with_the_users_table_and_key_uses_them_as_given() -> None:
    arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    environ = {**REAL, "ITEMS_TABLE": "stack-ItemsTable-1X", "ITEMS_KEY_ID": arn}
    with local_backends(environ) as backends:
        assert backends.items_missing == ()
        assert (environ["ITEMS_TABLE"], environ["ITEMS_KEY_ID"]) == ("stack-ItemsTable-1X", arn)
        assert backends.items == f"table 'stack-ItemsTable-1X' at AWS, key {arn} at AWS"
        assert "AWS_ENDPOINT_URL_KMS" not in environ


def test_real_aws_with_an_endpoint_of_the_users_needs_only_the_other_setting() -> None:
    environ = {**REAL, "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000"}
    with local_backends(environ) as backends:
        assert backends.items_missing == ("ITEMS_KEY_ID",)


@pytest.mark.parametrize(
    "key", ["1234abcd-12ab-34cd-56ef-1234567890ab", "arn:aws:kms:us-east-1:1:key/x"]
)
def test_a_key_id_the_local_kms_cannot_have_is_refused_before_anything_starts(key: str) -> None:
    environ = {"ITEMS_KEY_ID": key}
    with pytest.raises(LocalSetupError, match="alias name"), local_backends(environ):
        pass
    assert environ == {"ITEMS_KEY_ID": key}, "nothing was filled in"
