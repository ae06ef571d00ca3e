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

from local_env import ROOT, LocalContext, local_backends


def main() -> int:
    event_path = Path(os.environ.get("EVENT") or ROOT / "infra/events/ok.json")
    event: Any = json.loads(event_path.read_text())
    with local_backends(os.environ) as backends:
        print(
            f"Plaid: {backends.plaid}\nSecret: {backends.secrets}\n"
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


if __name__ == "__main__":
    sys.exit(main())
