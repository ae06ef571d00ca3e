"""`make invoke` (`python -m infra.invoke`) as a new user runs it: a subprocess, no AWS, no keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest


def invoke(event: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAID_", "AWS_"))}
    return subprocess.run(
        [sys.executable, "-m", "infra.invoke"],
        env={**env, "EVENT": event},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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
    assert "Traceback" not in proc.stderr
