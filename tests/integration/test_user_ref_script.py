"""`infra/scripts/user-ref.py` finds the same pseudonym the function logs for a user."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import HMAC_KEY, ROOT, SECRET_ID, make_event, secret_json


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "user_ref_script", ROOT / "infra/scripts/user-ref.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("hmac_key", [HMAC_KEY, None], ids=["keyed", "unkeyed"])
def test_the_script_prints_the_user_ref_the_function_logged(
    invoke: Any, aws: Any, output: Any, hmac_key: str | None
) -> None:
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=secret_json(user_id_hmac_key=hmac_key))
    invoke(make_event({}, sub="ada@example.com"))
    [logged] = [line["user_ref"] for line in output.logs("link_token_created")]
    before = output.read()

    assert load_script().main(["--secret-id", SECRET_ID, "ada@example.com"]) == 0

    assert logged in output.read()[len(before) :].splitlines()


def test_an_unreadable_secret_is_said_without_a_traceback(aws: Any, output: Any) -> None:
    assert load_script().main(["--secret-id", "no-such-secret", "ada@example.com"]) == 1

    err = output.read()
    assert "cannot read secret 'no-such-secret'" in err
    assert "Traceback" not in err
