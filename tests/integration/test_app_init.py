"""What each handler module loads at init (a process of its own per test: a fresh import)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_link_token_function_loads_no_items_code_at_init() -> None:
    """A new Item's link token keeps its cold start: app.py's init imports neither the Items
    package nor botocore's client machinery (Powertools' user agent imports the bare `botocore`
    package, under a millisecond); only an update-mode request loads the Items code."""
    code = (
        "import sys, app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'plaiditems', 'boto3'} or m in {'botocore.session', 'botocore.client'}))"
    )
    env = {
        "PLAID_SECRET_ID": "s",
        "PLAID_CLIENT_NAME": "Layout",
        "ITEMS_TABLE": "items-table",
        "ITEMS_KEY_ID": "alias/items",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PATH": os.environ.get("PATH", ""),
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter, a fixed program
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
