"""`make invoke`: run the real Lambda handler once, locally, and print its response.

Secrets Manager is moto, in process. Plaid is the loopback stand-in (which is not Plaid),
unless PLAID_CLIENT_ID and PLAID_SECRET are set: then the call goes to Plaid Sandbox for real.
Every default below gives way to a variable already set in the environment.

    make invoke                          # infra/events/ok.json
    make invoke EVENT=infra/events/platform-ios.json
    PLAID_CLIENT_ID=... PLAID_SECRET=... make invoke    # real Plaid Sandbox
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The function's configuration is the one `sam local invoke --env-vars` uses (infra/env.json);
# these only make it runnable on a laptop.
LOCAL_ONLY = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon on a laptop
}
TIMEOUT_MS = 20_000  # the deployed function's timeout (template.yaml)


class LocalContext:
    """Enough of the Lambda context for the handler and Powertools."""

    function_name = "plaid-link-token-local"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + TIMEOUT_MS / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


EVENTS = ROOT / "infra/events"


def event_file(name: str) -> Path:
    """EVENT as given, or the file of that name in infra/events/ (`EVENT=ok.json`)."""
    for candidate in (Path(name), EVENTS / name, EVENTS / f"{name}.json"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.name for p in EVENTS.glob("*.json") if p.name != "expected.json"))
    raise SystemExit(f"invoke: no event file {name!r}; infra/events/ has: {known}")


def main() -> int:
    event_path = event_file(os.environ.get("EVENT") or "ok.json")
    try:
        event: Any = json.loads(event_path.read_text())
    except ValueError as exc:
        raise SystemExit(f"invoke: {event_path} is not JSON: {exc}") from None
    function_env = json.loads((ROOT / "infra/env.json").read_text())["LinkTokenFunction"]
    for key, value in {**function_env, **LOCAL_ONLY}.items():
        os.environ.setdefault(key, value)

    real_keys = os.environ.get("PLAID_CLIENT_ID"), os.environ.get("PLAID_SECRET")
    with contextlib.ExitStack() as stack:
        if all(real_keys):
            client_id, secret = real_keys
            print(
                "Plaid: Sandbox (https://sandbox.plaid.com) with your keys",
                file=sys.stderr,
                flush=True,
            )
        else:
            from plaid_standin import PlaidStandIn

            standin = stack.enter_context(PlaidStandIn())
            client_id, secret = standin.client_id, standin.secret
            os.environ.setdefault("PLAID_BASE_URL", standin.base_url)
            print(
                f"Plaid: a loopback STAND-IN at {standin.base_url}. It is NOT Plaid; its tokens"
                " work nowhere. Set PLAID_CLIENT_ID and PLAID_SECRET to use Plaid Sandbox.",
                file=sys.stderr,
                flush=True,
            )
        if not os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER"):
            from moto import mock_aws

            stack.enter_context(mock_aws())
            _create_secret(os.environ["PLAID_SECRET_ID"], client_id or "", secret or "")
        print(
            f"Event: {event_path}\n--- handler logs and EMF metrics ---",
            file=sys.stderr,
            flush=True,
        )
        sys.path.insert(0, str(ROOT / "handler"))
        import app

        response = app.lambda_handler(event, LocalContext())
    sys.stdout.flush()
    print("--- response ---", file=sys.stderr, flush=True)
    shown = dict(response)
    with contextlib.suppress(ValueError, TypeError):
        shown["body"] = json.loads(response["body"])
    print(json.dumps(shown, indent=2))
    return 0


def _create_secret(secret_id: str, client_id: str, secret: str) -> None:
    import botocore.session

    client = botocore.session.get_session().create_client("secretsmanager")
    client.create_secret(
        Name=secret_id, SecretString=json.dumps({"client_id": client_id, "secret": secret})
    )


if __name__ == "__main__":
    sys.exit(main())
