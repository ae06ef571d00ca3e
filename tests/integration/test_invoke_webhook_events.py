"""`make invoke` (`python -m infra.invoke`, a subprocess as a new user runs it) with the events of
the webhook and refresh routes (infra/events/items/): each gets its expected status from its
route's function; a webhook marked for signing is signed with the stand-in's key, an unsigned
or oversized one is refused, and none needs the Items table."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers_app import invoke

ROOT = Path(__file__).resolve().parents[2]
EXPECTED: dict[str, int] = json.loads((ROOT / "infra/events/items/expected.json").read_text())


def response_of(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout[proc.stdout.index("{\n") :])


@pytest.mark.parametrize(
    ("event", "status", "code", "function"),
    [
        ("webhook-item-error.json", 200, None, "WebhookReceiverFunction (webhook_app"),
        (
            "webhook-unsigned.json",
            401,
            "WEBHOOK_UNVERIFIED",
            "WebhookReceiverFunction (webhook_app",
        ),
        (
            "webhook-too-large.json",
            413,
            "PAYLOAD_TOO_LARGE",
            "WebhookReceiverFunction (webhook_app",
        ),
        ("items-refresh.json", 200, None, "ItemsFunction (items_app"),
    ],
)
def test_each_new_event_gets_its_expected_status(
    event: str, status: int, code: str | None, function: str
) -> None:
    assert EXPECTED[event] == status, "infra/events/items/expected.json says so too"

    proc = invoke(event)

    assert proc.returncode == 0, proc.stderr
    response = response_of(proc)
    assert response["statusCode"] == status, proc.stderr
    assert response["body"].get("code") == code
    assert f"Function: {function}" in proc.stderr
    assert "Queue: plaid-link-webhooks-dev.fifo (visibility 10 s locally)" in proc.stderr
    assert "access-sandbox" not in proc.stdout + proc.stderr


def test_a_webhook_marked_for_signing_is_signed_with_the_standins_key() -> None:
    proc = invoke("webhook-item-error.json")

    assert "invoke: signed the webhook's body as Plaid does, with the stand-in's key" in proc.stderr
    received = [
        json.loads(line)
        for line in proc.stdout.splitlines()
        if line.startswith("{") and '"webhook_received"' in line
    ]
    assert len(received) == 1, proc.stdout
    assert response_of(proc)["body"]["received"] is True


def test_with_plaid_itself_the_webhook_is_not_signed_and_so_refused() -> None:
    # A PLAID_BASE_URL of the user's: no stand-in, so no key to sign with (nothing is called:
    # the receiver refuses an unsigned webhook before any key lookup).
    proc = invoke("webhook-item-error.json", PLAID_BASE_URL="http://127.0.0.1:9")

    assert proc.returncode == 0, proc.stderr
    assert "the webhook is NOT signed: only the stand-in's key is here" in proc.stderr
    assert response_of(proc)["statusCode"] == 401


def test_a_webhook_is_invoked_without_the_items_settings_with_real_aws() -> None:
    proc = invoke(
        "webhook-unsigned.json",
        AWS_PROFILE="no-such-profile-for-this-test",
        PLAID_SECRET_ID="some/secret",
    )

    # Not refused for the Items table (an Items event is: tests/e2e/test_make_invoke.py); the
    # receiver itself says what it lacks: the queue's URL, which infra/env.json cannot give.
    assert proc.returncode == 0, proc.stderr
    assert "Queue: NOT configured: with real AWS set WEBHOOK_QUEUE_URL" in proc.stderr
    assert "WEBHOOK_QUEUE_URL is required by the webhook receiver" in proc.stdout
    assert response_of(proc)["body"]["code"] == "MISCONFIGURED"
    assert "Traceback" not in proc.stderr
