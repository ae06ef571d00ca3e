"""`infra/scripts/put-plaid-secret.sh` against a scripted stand-in for the AWS CLI.

The stand-in `aws` answers describe-secret / get-secret-value as a scenario says (a value, or
an error such as AccessDeniedException) and records every call and what was piped to it, so
the tests see exactly what would have been stored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from linktoken.secret_store import parse_secret, secret_problems
from tests.conftest import ROOT

SCRIPT = ROOT / "infra/scripts/put-plaid-secret.sh"
CLIENT_ID = "c" * 24
SECRET = "s" * 30
KEYS = f"{CLIENT_ID}\n{SECRET}\n"
OLD_HMAC = "0123456789abcdef0123456789abcdef"

FAKE_AWS = textwrap.dedent(
    """\
    #!/usr/bin/env python3
    import json, os, sys
    scenario = json.loads(os.environ["FAKE_AWS_SCENARIO"])
    args = sys.argv[1:]
    op = next((a for a in args if a in scenario or a in ("put-secret-value", "create-secret")), "")
    piped = sys.stdin.read() if op in ("put-secret-value", "create-secret") else None
    with open(os.environ["FAKE_AWS_LOG"], "a") as log:
        log.write(json.dumps({"args": args, "stdin": piped}) + "\\n")
    answer = scenario.get(op, {"out": "ok"})
    if "error" in answer:
        print(f"An error occurred ({answer['error']}) when calling the operation", file=sys.stderr)
        sys.exit(254)
    print(answer.get("out", ""))
    """
)


def run(tmp_path: Path, scenario: dict[str, Any], *args: str, stdin: str = KEYS) -> Any:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    fake = bin_dir / "aws"
    fake.write_text(FAKE_AWS)
    fake.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FAKE_AWS_SCENARIO": json.dumps(scenario),
        "FAKE_AWS_LOG": str(log),
        "PYTHON313": sys.executable,  # the tests' own 3.13, whatever pyenv sees under HOME
    }
    proc: Any = subprocess.run(  # noqa: S603 - our own script
        [
            shutil.which("bash") or "/bin/bash",
            str(SCRIPT),
            "--secret-id",
            "plaid/creds",
            "--region",
            "eu-west-1",
            *args,
        ],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    proc.calls = calls
    proc.stored = [json.loads(c["stdin"]) for c in calls if c["stdin"] is not None]
    return proc


EXISTS = {"describe-secret": {"out": "arn:aws:secretsmanager:eu-west-1:1:secret:plaid/creds-x"}}


def current(value: dict[str, str]) -> dict[str, Any]:
    return {**EXISTS, "get-secret-value": {"out": json.dumps(value)}}


def test_keep_stores_the_current_hmac_key_with_the_new_keys(tmp_path: Path) -> None:
    proc = run(
        tmp_path, current({"client_id": "old", "secret": "old", "user_id_hmac_key": OLD_HMAC})
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stored == [{"client_id": CLIENT_ID, "secret": SECRET, "user_id_hmac_key": OLD_HMAC}]
    assert "region eu-west-1" in proc.stderr


@pytest.mark.parametrize("error", ["AccessDeniedException", "ExpiredTokenException"])
def test_keep_stops_when_the_current_value_cannot_be_read(tmp_path: Path, error: str) -> None:
    # Empty stdin: had the script asked for the keys, it would die on "empty" instead.
    proc = run(tmp_path, {**EXISTS, "get-secret-value": {"error": error}}, stdin="")

    assert proc.returncode != 0
    assert "cannot read the current value" in proc.stderr
    assert error in proc.stderr
    assert "empty" not in proc.stderr  # it stopped before asking for the keys
    assert proc.stored == []


def assert_generated_key(proc: Any) -> None:
    """One value stored, with a new key the function accepts, printed nowhere."""
    assert proc.returncode == 0, proc.stderr
    (stored,) = [dict(value) for value in proc.stored]
    key = stored.pop("user_id_hmac_key")
    assert stored == {"client_id": CLIENT_ID, "secret": SECRET}
    assert len(bytes.fromhex(key)) == 32  # 32 random bytes, hex
    assert key != OLD_HMAC
    text = json.dumps({**stored, "user_id_hmac_key": key})
    assert secret_problems(text) == []  # the function's own validation
    assert parse_secret(text, "plaid/creds").user_id_hmac_key == key.encode()
    assert key not in proc.stdout + proc.stderr
    assert "generating a" in proc.stderr


def test_a_secret_with_no_value_yet_gets_a_new_key(tmp_path: Path) -> None:
    proc = run(tmp_path, {**EXISTS, "get-secret-value": {"error": "ResourceNotFoundException"}})

    assert_generated_key(proc)
    assert "no value yet" in proc.stderr


def test_a_value_without_a_key_gets_one(tmp_path: Path) -> None:
    """Without a key Plaid would get the raw JWT sub (often an email) as client_user_id."""
    proc = run(tmp_path, current({"client_id": "old", "secret": "old"}))

    assert_generated_key(proc)
    assert "changes once" in proc.stderr  # told that every user's id at Plaid changes


def test_two_generated_keys_differ(tmp_path: Path) -> None:
    first = run(tmp_path / "a", current({"client_id": "old", "secret": "old"}), "--hmac-key", "new")
    second = run(
        tmp_path / "b", current({"client_id": "old", "secret": "old"}), "--hmac-key", "new"
    )

    assert_generated_key(first)
    keys = {p.stored[0]["user_id_hmac_key"] for p in (first, second)}
    assert len(keys) == 2


def test_none_stores_no_key_when_asked(tmp_path: Path) -> None:
    proc = run(
        tmp_path,
        current({"client_id": "old", "secret": "old", "user_id_hmac_key": OLD_HMAC}),
        "--hmac-key",
        "none",
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stored == [{"client_id": CLIENT_ID, "secret": SECRET}]
    assert "raw JWT sub" in proc.stderr


# A key with every kind of JSON escape: quote, backslash, a \u escape, and a / escaped for no
# reason. A regular expression over the JSON text cannot take it out whole.
ESCAPED_KEY = 'k"ey\\with-\u00e9scapes/0123456789'
ESCAPED_TEXT = (
    '{"client_id": "old", "secret": "old", '
    '"user_id_hmac_key": "k\\"ey\\\\with-\\u00e9scapes\\/0123456789"}'
)


def test_a_key_with_json_escapes_is_kept_exactly(tmp_path: Path) -> None:
    assert json.loads(ESCAPED_TEXT)["user_id_hmac_key"] == ESCAPED_KEY  # the fixture itself
    proc = run(tmp_path, {**EXISTS, "get-secret-value": {"out": ESCAPED_TEXT}})

    assert proc.returncode == 0, proc.stderr
    assert proc.stored == [
        {"client_id": CLIENT_ID, "secret": SECRET, "user_id_hmac_key": ESCAPED_KEY}
    ]
    # The bytes the function keys its HMAC with are the same as before the rotation.
    written = parse_secret(proc.calls[-1]["stdin"], "plaid/creds").user_id_hmac_key
    assert written == parse_secret(ESCAPED_TEXT, "plaid/creds").user_id_hmac_key
    assert written == ESCAPED_KEY.encode()
    assert "keeping the current user_id_hmac_key" in proc.stderr


UNREADABLE_KEY = "unreadable-3e9f"


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (json.dumps({"client_id": "old", "user_id_hmac_key": 12345}), "must be a string"),
        (json.dumps({"client_id": "old", "user_id_hmac_key": ""}), "must be a string"),
        (json.dumps({"client_id": "old", "user_id_hmac_key": UNREADABLE_KEY}), "at least 16"),
        (json.dumps({"client_id": "old", "user_id_hmac_key": ["k" * 32]}), "must be a string"),
        ('{"client_id": "old", "user_id_hmac_key": "' + OLD_HMAC + '", ', "not JSON"),
        (json.dumps([{"user_id_hmac_key": OLD_HMAC}]), "not a JSON object"),
        ('{"user_id_hmac_key": "' + OLD_HMAC + '\\udc00"}', "not valid Unicode"),
    ],
    ids=["number", "empty", "too short", "list", "bad JSON", "not an object", "lone surrogate"],
)
def test_a_key_that_cannot_be_read_stops_before_anything_is_written(
    tmp_path: Path, value: str, said: str
) -> None:
    # Empty stdin: had the script asked for the keys, it would die on "client_id: empty".
    proc = run(tmp_path, {**EXISTS, "get-secret-value": {"out": value}}, stdin="")

    assert proc.returncode != 0
    assert said in proc.stderr
    assert "cannot keep the user_id_hmac_key" in proc.stderr
    assert "client_id: empty" not in proc.stderr  # it stopped before asking for the keys
    assert proc.stored == []
    assert UNREADABLE_KEY not in proc.stderr and OLD_HMAC not in proc.stderr


def test_not_found_is_told_apart_from_not_authorized(tmp_path: Path) -> None:
    missing = run(tmp_path, {"describe-secret": {"error": "ResourceNotFoundException"}}, stdin="")
    denied = run(tmp_path, {"describe-secret": {"error": "AccessDeniedException"}}, stdin="")

    assert "not found in eu-west-1" in missing.stderr
    assert "AccessDeniedException" in denied.stderr and "not found" not in denied.stderr
    assert missing.returncode != 0 and denied.returncode != 0
    assert missing.stored == denied.stored == []


def test_create_makes_a_missing_secret(tmp_path: Path) -> None:
    proc = run(
        tmp_path,
        {
            "describe-secret": {"error": "ResourceNotFoundException"},
            "create-secret": {"out": "arn"},
        },
        "--create",
    )

    assert_generated_key(proc)
    assert any("create-secret" in call["args"] for call in proc.calls)


def test_keys_never_reach_a_command_line(tmp_path: Path) -> None:
    proc = run(tmp_path, current({"client_id": "old", "secret": "old"}))

    assert proc.returncode == 0, proc.stderr
    assert not [call for call in proc.calls if SECRET in " ".join(call["args"])]
    assert SECRET not in proc.stderr + proc.stdout
