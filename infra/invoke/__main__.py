"""`make invoke`: run the real Lambda handler once, locally, and print its response.

Secrets Manager is moto (on loopback). Plaid is the loopback stand-in (which is not Plaid),
unless PLAID_CLIENT_ID and PLAID_SECRET are set: then the call goes to Plaid Sandbox for real.
Every default (local_env.py, shared with `make serve`) gives way to a variable already set.

    make invoke                          # infra/events/ok.json
    make invoke EVENT=infra/events/platform-ios.json
    PLAID_CLIENT_ID=... PLAID_SECRET=... make invoke    # real Plaid Sandbox
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from infra.doubles.lambda_runtime import LambdaContext
from infra.invoke.local_env import ROOT, local_backends

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
    with local_backends(os.environ) as backends:
        print(
            f"Plaid: {backends.plaid}\nSecret: {backends.secrets}\n"
            f"Event: {event_path}\n--- handler logs and EMF metrics ---",
            file=sys.stderr,
            flush=True,
        )
        import app

        response = app.lambda_handler(event, LambdaContext())
    sys.stdout.flush()
    print("--- response ---", file=sys.stderr, flush=True)
    shown = dict(response)
    with contextlib.suppress(ValueError, TypeError):
        shown["body"] = json.loads(response["body"])
    print(json.dumps(shown, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
