"""infra/invoke/local_env.py's moto side, as `make serve` and `make invoke` start it: one moto
server plays Secrets Manager, DynamoDB and KMS; the table (pk/sk) and a key are made for every
run, empty and new; the secret gets a random user_id_hmac_key per run; a setting of the user's
is kept; the description names the table and the key and never holds a key's material."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest

from infra.doubles.moto_server import moto_server
from infra.invoke.local_env import Backends, local_backends


def client(service: str, endpoint: str) -> Any:
    return botocore.session.get_session().create_client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def secret_doc(environ: dict[str, str]) -> dict[str, str]:
    sm = client("secretsmanager", environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"])
    doc: dict[str, str] = json.loads(
        sm.get_secret_value(SecretId=environ["PLAID_SECRET_ID"])["SecretString"]
    )
    return doc


@pytest.fixture
def run() -> Iterator[tuple[dict[str, str], Backends]]:
    environ: dict[str, str] = {}
    with local_backends(environ) as backends:
        yield environ, backends


def test_one_moto_plays_the_secret_the_table_and_the_key(
    run: tuple[dict[str, str], Backends],
) -> None:
    environ, backends = run
    endpoint = environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"]
    assert environ["AWS_ENDPOINT_URL_DYNAMODB"] == environ["AWS_ENDPOINT_URL_KMS"] == endpoint
    table = client("dynamodb", endpoint).describe_table(TableName=environ["ITEMS_TABLE"])
    assert environ["ITEMS_TABLE"] == "plaid-link-items-dev"  # infra/env.json's name
    assert {(k["AttributeName"], k["KeyType"]) for k in table["Table"]["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }
    key = client("kms", endpoint).describe_key(KeyId=environ["ITEMS_KEY_ID"])["KeyMetadata"]
    assert environ["ITEMS_KEY_ID"] == key["Arn"], "the key's ARN, as the stack sets it"
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert backends.items_local
    assert f"table 'plaid-link-items-dev' in moto's DynamoDB, key {key['Arn']}" in backends.items
    assert endpoint in backends.items


def test_the_secret_has_a_random_hmac_key_never_in_the_description(
    run: tuple[dict[str, str], Backends],
) -> None:
    environ, backends = run
    doc = secret_doc(environ)
    assert set(doc) == {"client_id", "secret", "user_id_hmac_key"}
    assert len(bytes.fromhex(doc["user_id_hmac_key"])) == 32
    described = f"{backends!r} {backends.plaid} {backends.secrets} {backends.items}"
    assert doc["user_id_hmac_key"] not in described
    again: dict[str, str] = {}
    with local_backends(again):
        assert secret_doc(again)["user_id_hmac_key"] != doc["user_id_hmac_key"]


def test_every_run_starts_with_an_empty_table_and_a_new_key() -> None:
    first: dict[str, str] = {}
    with local_backends(first):
        dynamodb = client("dynamodb", first["AWS_ENDPOINT_URL_DYNAMODB"])
        dynamodb.put_item(
            TableName=first["ITEMS_TABLE"], Item={"pk": {"S": "owner#x"}, "sk": {"S": "item#1"}}
        )
        first_key = first["ITEMS_KEY_ID"]
    second: dict[str, str] = {}
    with local_backends(second):
        dynamodb = client("dynamodb", second["AWS_ENDPOINT_URL_DYNAMODB"])
        assert dynamodb.scan(TableName=second["ITEMS_TABLE"])["Items"] == []
        assert second["ITEMS_KEY_ID"] != first_key


def test_the_users_table_name_and_key_alias_are_what_moto_makes() -> None:
    environ = {"ITEMS_TABLE": "my-items", "ITEMS_KEY_ID": "alias/my-items-key"}
    with local_backends(environ) as backends:
        endpoint = environ["AWS_ENDPOINT_URL_DYNAMODB"]
        assert environ["ITEMS_TABLE"] == "my-items"
        client("dynamodb", endpoint).describe_table(TableName="my-items")
        assert environ["ITEMS_KEY_ID"] == "alias/my-items-key"
        kms = client("kms", environ["AWS_ENDPOINT_URL_KMS"])
        sealed = kms.encrypt(KeyId="alias/my-items-key", Plaintext=b"x")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"x"
        assert "key alias/my-items-key (arn:aws:kms:" in backends.items


def test_endpoints_of_the_users_are_left_alone() -> None:
    with moto_server() as theirs:
        # moto's state is per process: every moto server of this one shares its tables.
        tables = client("dynamodb", theirs).list_tables()["TableNames"]
        environ = {
            "AWS_ENDPOINT_URL_DYNAMODB": theirs,
            "AWS_ENDPOINT_URL_KMS": theirs,
            "ITEMS_TABLE": "their-table",
            "ITEMS_KEY_ID": "alias/theirs",
        }
        with local_backends(environ) as backends:
            assert environ["AWS_ENDPOINT_URL_DYNAMODB"] == theirs
            assert environ["AWS_ENDPOINT_URL_KMS"] == theirs
            assert environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"] != theirs, "the secret is moto's"
            assert client("dynamodb", theirs).list_tables()["TableNames"] == tables, "none made"
            assert not backends.items_local
            assert backends.items == (
                f"table 'their-table' at {theirs}, key alias/theirs at {theirs}"
            )


def test_a_public_token_comes_from_the_standin_with_its_keys(
    run: tuple[dict[str, str], Backends],
) -> None:
    _, backends = run
    assert backends.public_token is not None
    token = backends.public_token("ins_109508", ["transactions"])
    assert token.startswith("public-sandbox-")
    assert backends.standin is not None
    made = [r for r in backends.standin.requests if r["path"] == "/sandbox/public_token/create"]
    assert len(made) == 1


def test_no_public_token_where_the_functions_keys_are_in_a_secret_of_the_users() -> None:
    with moto_server() as theirs:
        environ = {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": theirs,
            "PLAID_BASE_URL": "http://127.0.0.1:9",
        }
        with local_backends(environ) as backends:
            assert backends.public_token is None
