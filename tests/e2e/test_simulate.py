"""`make simulate` (python -m infra.simulate) end to end: it starts make serve itself, runs one
Item's lifecycle over HTTP, prints each step with the Item's health, and exits 0; against a
service whose webhooks never arrive it exits 1 naming the webhook step. No secret in its
output."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from infra.gateway.jwt_local import dev_token
from infra.gateway.serve_process import serve
from infra.invoke.local_env import STANDIN_KEYS
from infra.simulate.plaid_side import Sandbox
from infra.simulate.report import Printer
from infra.simulate.service import Service
from infra.simulate.steps import Lifecycle

ROOT = Path(__file__).resolve().parents[2]
STEP = re.compile(r"^(\d) (\S+(?: \S+)?)\s+health: (\S+)", re.MULTILINE)
# The webhooks are asynchronous: right after the reset (or update mode) the Item may or may not
# have had its webhook applied yet; the step after waits for what must follow.
EXPECTED = [
    ("1", "create", {"-"}),
    ("2", "exchange", {"healthy"}),
    ("3", "reset login", {"healthy", "login_required"}),
    ("4", "webhook", {"login_required"}),
    ("5", "update mode", {"login_required", "healthy"}),
    ("6", "refresh", {"healthy"}),
    ("7", "remove", {"gone"}),
]


def simulate(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PLAID_"))}
    return subprocess.run(  # noqa: S603 - this interpreter, a fixed module
        [sys.executable, "-m", "infra.simulate", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_no_secret(output: str, *secrets: str) -> None:
    assert not re.search(r"\b(?:link|public)-sandbox-[0-9a-f]{8}", output), "unmasked token"
    assert "access-sandbox" not in output
    assert "eyJ" not in output, "a JWT (its base64 JSON header) was printed"
    for secret in secrets:
        assert secret not in output


def test_the_lifecycle_prints_each_steps_health_and_exits_0() -> None:
    done = simulate()

    assert done.returncode == 0, done.stdout + done.stderr
    steps = STEP.findall(done.stdout)
    assert [(n, name) for n, name, _ in steps] == [(n, name) for n, name, _ in EXPECTED]
    for (number, name, health), (_, _, allowed) in zip(steps, EXPECTED, strict=True):
        assert health in allowed, f"step {number} {name}: {health}"
    assert re.search(
        r"^4 webhook .* ITEM ERROR \(ITEM_LOGIN_REQUIRED\) -> "
        r"http://127\.0\.0\.1:\d+/webhooks/plaid: 200, 1 attempt\(s\)$",
        done.stdout,
        re.MULTILINE,
    ), done.stdout
    assert re.search(r"^1 create .* link token link-sandbox-\*\*\*\*\w{4};", done.stdout, re.M)
    assert done.stdout.splitlines()[-2:] == [
        "simulate: every step gave what it should",
        "simulate: make serve stopped",
    ]
    assert_no_secret(done.stdout + done.stderr, STANDIN_KEYS[1])


def test_a_service_whose_webhooks_never_arrive_fails_at_the_webhook_step() -> None:
    # The stand-in is told to post the Items' webhooks where nothing listens.
    nowhere = "http://127.0.0.1:9/webhooks/plaid"
    with serve({"WORKERS": "1", "PLAID_WEBHOOK_URL": nowhere}) as server:
        assert server.standin_url is not None
        token = server.dev_token
        done = simulate(
            *("--url", server.url, "--jwt", token, "--standin", server.standin_url),
            *("--webhook-timeout", "3"),
        )
        unnamed = simulate("--url", server.url, "--jwt", token)  # the stand-in not named

    assert done.returncode == 1, done.stdout + done.stderr
    steps = STEP.findall(done.stdout)
    assert [(n, h) for n, _, h in steps] == [("1", "-"), ("2", "healthy"), ("3", "healthy")]
    assert re.search(
        r"^4 webhook: FAILED: health is still healthy after 3 s; the stand-in's deliveries:"
        rf" ITEM ERROR \(ITEM_LOGIN_REQUIRED\) -> {re.escape(nowhere)}: no answer \(.+\),"
        r" 3 attempt\(s\)$",
        done.stdout,
        re.MULTILINE,
    ), done.stdout
    assert done.stdout.splitlines()[-2:] == [
        "simulate: FAILED at step 4 (webhook)",
        "simulate: removed the Item it made",
    ]
    assert "4 webhook" not in unnamed.stdout
    assert unnamed.returncode == 1
    assert unnamed.stderr.strip() == (
        "simulate: that service plays Plaid with the loopback stand-in: pass --standin"
        " <its URL> (make serve's banner line 'Plaid stand-in')"
    )
    assert_no_secret(done.stdout + done.stderr, token, STANDIN_KEYS[1])


def test_the_sandbox_path_says_what_it_cannot_do_and_refreshes_instead() -> None:
    # The Sandbox side with the stand-in answering Sandbox's /sandbox/public_token/create (no
    # test reaches Plaid): no Link session to complete, no reset_login, no webhook.
    with serve({"WORKERS": "1"}) as server:
        assert server.standin_url is not None
        sandbox = Sandbox(*STANDIN_KEYS, base_url=server.standin_url)
        service = Service(server.url, dev_token(sub="simulate-sandbox-path"))
        out = io.StringIO()
        status = Lifecycle(service, sandbox, webhook_timeout_s=3).run(Printer(out=out))

    printed = out.getvalue()
    assert status == 0, printed
    assert [(n, h) for n, _, h in STEP.findall(printed)] == [
        ("1", "-"),
        ("2", "healthy"),
        ("3", "healthy"),
        ("4", "healthy"),
        ("5", "healthy"),
        ("6", "healthy"),
        ("7", "gone"),
    ]
    assert re.search(
        r"^3 reset login .* skipped: Sandbox's /sandbox/item/reset_login needs the Item's access"
        r" token, which the service never gives out$",
        printed,
        re.MULTILINE,
    ), printed
    assert re.search(r"^4 webhook .* Plaid cannot reach this machine, so no webhook", printed, re.M)
    assert re.search(
        r"^5 update mode .* update-mode link token link-sandbox-\*\*\*\*\w{4}; update mode on"
        r" Sandbox needs a person in Plaid Link",
        printed,
        re.MULTILINE,
    ), printed
    assert_no_secret(printed, STANDIN_KEYS[1])
