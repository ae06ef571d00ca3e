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
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

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
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "aws"
    fake.write_text(FAKE_AWS)
    fake.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FAKE_AWS_SCENARIO": json.dumps(scenario),
        "FAKE_AWS_LOG": str(log),
    }
    proc = subprocess.run(  # noqa: S603 - our own script
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


def test_a_secret_with_no_value_yet_is_stored_without_a_key(tmp_path: Path) -> None:
    proc = run(tmp_path, {**EXISTS, "get-secret-value": {"error": "ResourceNotFoundException"}})

    assert proc.returncode == 0, proc.stderr
    assert proc.stored == [{"client_id": CLIENT_ID, "secret": SECRET}]
    assert "no value yet" in proc.stderr


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

    assert proc.returncode == 0, proc.stderr
    assert proc.stored == [{"client_id": CLIENT_ID, "secret": SECRET}]
    assert any("create-secret" in call["args"] for call in proc.calls)


def test_keys_never_reach_a_command_line(tmp_path: Path) -> None:
    proc = run(tmp_path, current({"client_id": "old", "secret": "old"}))

    assert proc.returncode == 0, proc.stderr
    assert not [call for call in proc.calls if SECRET in " ".join(call["args"])]
    assert SECRET not in proc.stderr + proc.stdout
