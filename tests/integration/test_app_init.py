"""What each handler module loads at init (a process of its own per test: a fresh import)."""

from __future__ import annotations

import os
import subprocess
import sys

# Loaded only where webhooks are handled (and the Items code only where Items are).
WEBHOOK_ONLY = "{'plaidhooks', 'jwt', 'cryptography', 'cffi'}"


def loaded(module: str, roots: str) -> list[str]:
    code = (
        f"import sys, {module}; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {roots} or m in {{'botocore.session', 'botocore.client'}}))"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter, a fixed program
        [sys.executable, "-c", code],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return list(eval(result.stdout.strip().splitlines()[-1]))  # noqa: S307 - our own print


def test_the_link_token_function_loads_no_items_or_webhook_code_at_init() -> None:
    """A new Item's link token keeps its cold start: app.py's init imports neither the Items
    package, nor the webhook package and its JWT library, nor botocore's client machinery
    (Powertools' user agent imports the bare `botocore` package, under a millisecond); only an
    update-mode request loads the Items code."""
    roots = "{'plaiditems', 'boto3', 'plaidhooks', 'jwt', 'cryptography', 'cffi'}"
    assert loaded("app", roots) == []


def test_the_items_functions_load_no_webhook_code_at_init() -> None:
    for module in ("items_app", "exchange_app"):
        assert loaded(module, WEBHOOK_ONLY) == [], module


def test_only_the_receiver_loads_the_jwt_library() -> None:
    assert "jwt" in loaded("webhook_app", WEBHOOK_ONLY)
    assert not {"jwt", "cryptography"} & set(loaded("webhook_worker_app", WEBHOOK_ONLY))


ENV = {
    "PLAID_SECRET_ID": "s",
    "PLAID_CLIENT_NAME": "Layout",
    "ITEMS_TABLE": "items-table",
    "ITEMS_KEY_ID": "alias/items",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "PATH": os.environ.get("PATH", ""),
    "WEBHOOK_QUEUE_URL": "http://127.0.0.1:5000/123456789012/webhooks.fifo",
}
