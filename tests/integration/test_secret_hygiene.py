"""With tracing on, as deployed: the secret and the HMAC key appear in no X-Ray segment, log
line, metric or response, through successes, Plaid rejections and a re-read of the secret.

The suite runs with tracing disabled (Powertools decides once per process), so this runs the
handler in a child interpreter with Tracing: Active's environment: X-Ray segments go to an
`XRaySink` on loopback, Secrets Manager is moto in server mode, Plaid the loopback stand-in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from infra.doubles.loopback import XRaySink
from infra.doubles.plaid_standin import PlaidStandIn, plaid_error
from infra.smoke.smoke_build import secrets_manager
from tests.conftest import CLIENT_ID, HMAC_KEY, SECRET, SECRET_ID, make_event, secret_json

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, os, sys

import app
from infra.doubles.lambda_runtime import LambdaContext, trace_header

responses = []
for event in json.load(open(sys.argv[1])):
    # What the runtime sets per invocation under active tracing.
    os.environ["_X_AMZN_TRACE_ID"] = trace_header(sampled=True)
    context = LambdaContext(
        function_name="hygiene",
        function_version="1",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:hygiene:live",
        memory_limit_in_mb=1024,
    )
    responses.append(app.lambda_handler(event, context))
json.dump(responses, open(sys.argv[2], "w"))
"""


def run_traced(tmp_path: Path, events: list[dict[str, Any]], plaid: PlaidStandIn) -> dict[str, Any]:
    """Invoke the handler once per event in a traced child; what it printed, sent and answered."""
    secret = secret_json(user_id_hmac_key=HMAC_KEY)
    with secrets_manager(SECRET_ID, secret) as endpoint, XRaySink() as xray:
        (tmp_path / "events.json").write_text(json.dumps(events))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_TRACE")},
            "PYTHONPATH": str(ROOT / "handler"),
            "LAMBDA_TASK_ROOT": str(ROOT / "handler"),
            "AWS_LAMBDA_FUNCTION_NAME": "hygiene",
            "AWS_XRAY_DAEMON_ADDRESS": xray.address,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "POWERTOOLS_TRACE_DISABLED": "false",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
            "PLAID_SECRET_ID": SECRET_ID,
            "PLAID_BASE_URL": plaid.base_url,
            "PLAID_PRODUCTS": "transactions,auth",
            "PLAID_SECRET_TTL_SECONDS": "300",
        }
        child = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
            [
                sys.executable,
                "-c",
                CHILD,
                str(tmp_path / "events.json"),
                str(tmp_path / "out.json"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        # The segments travel over UDP to the sink's thread: wait for the ones the test
        # asserts (generously), then a moment for any later one a leak check should see.
        deadline = time.monotonic() + 30
        while child.returncode == 0 and time.monotonic() < deadline:
            traces = b"\n".join(xray.datagrams)
            if b"## plaid /link/token/create" in traces and b"secretsmanager" in traces.lower():
                break
            time.sleep(0.02)
        time.sleep(0.2)
    return {
        "stdout": child.stdout,
        "stderr": child.stderr,
        "responses": (tmp_path / "out.json").read_text() if child.returncode == 0 else "",
        "traces": "\n".join(d.decode("utf-8", "replace") for d in xray.datagrams),
    }


def test_no_secret_in_traces_logs_metrics_or_responses_with_tracing_on(tmp_path: Path) -> None:
    with PlaidStandIn(client_id=CLIENT_ID, secret=SECRET) as plaid:
        plaid.script(
            # Rejected keys: the service re-reads the secret, finds the same keys, gives up.
            plaid_error(400, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret"),
            plaid_error(400, "INVALID_REQUEST", "INVALID_FIELD", "redirect_uri not allowed"),
        )
        events = [
            make_event({"platform": "web"}),  # rejected keys, one re-read: 502
            make_event({"platform": "web"}),  # INVALID_FIELD: 502
            make_event({"platform": "web"}, sub="ada@example.com"),  # 200, HMAC'd user id
            make_event({"user": {"client_user_id": "x"}}),  # 400 before anything upstream
            make_event({"platform": "web"}),  # 200 again, warm
        ]
        seen = run_traced(tmp_path, events, plaid)
        sent = plaid.requests

    assert seen["responses"], seen["stderr"][-2000:]
    statuses = [r["statusCode"] for r in json.loads(seen["responses"])]
    assert statuses == [502, 502, 200, 400, 200]
    # Tracing really was on: segments reached the sink, with the Plaid and secret subsegments.
    assert "## plaid /link/token/create" in seen["traces"]
    assert "secretsmanager" in seen["traces"].lower()
    assert len(sent) == 4  # the rejected keys, the field error, 2 tokens
    assert all(request["headers"]["PLAID-SECRET"] == SECRET for request in sent)
    # Named, never shown: pytest would print the value of a failed `canary not in text`.
    leaked = [where for where, text in seen.items() if SECRET in text or HMAC_KEY in text]
    assert not leaked, "a secret reached these channels"
    # The HMAC'd user id went to Plaid instead of the address.
    assert "ada@example.com" not in json.dumps([r["body"].decode() for r in sent])
