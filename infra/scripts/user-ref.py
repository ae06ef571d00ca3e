#!/usr/bin/env python3
"""Print the `user_ref` the function logs for a user, to find that user's requests.

    infra/scripts/user-ref.py --secret-id <PlaidSecretId> [--region R] [SUB]

Reads the Plaid secret with your AWS configuration (profile, region, AWS_ENDPOINT_URL), takes
its `user_id_hmac_key` if it has one, and computes the pseudonym with the function's own code
(handler/linktoken/identity.py). The JWT `sub` comes from the argument or, safer for personal
data, from standard input. Prints the pseudonym and nothing of the secret.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "handler"))

from linktoken.identity import user_ref  # noqa: E402


def hmac_key_of(secret_id: str, region: str | None) -> bytes | None:
    """The secret's `user_id_hmac_key`, or None when it has none."""
    import botocore.session

    session = botocore.session.get_session()  # untyped: its clients are made at run time
    client: Any = session.create_client("secretsmanager", region_name=region)
    secret = client.get_secret_value(SecretId=secret_id).get("SecretString") or "{}"
    key = json.loads(secret).get("user_id_hmac_key")
    return key.encode() if isinstance(key, str) and key else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret-id", required=True, help="the function's PLAID_SECRET_ID")
    parser.add_argument("--region", help="the secret's region (default: your AWS config)")
    parser.add_argument("sub", nargs="?", help="the JWT sub (default: read from stdin)")
    args = parser.parse_args(argv)
    sub = args.sub if args.sub is not None else sys.stdin.readline().rstrip("\n")
    if not sub:
        parser.error("no sub given")
    try:
        key = hmac_key_of(args.secret_id, args.region)
    except Exception as exc:  # an operator tool: say what failed, no traceback
        print(f"user-ref: cannot read secret {args.secret_id!r}: {exc}", file=sys.stderr)
        return 1
    if key is None:
        print("user-ref: the secret has no user_id_hmac_key: unkeyed pseudonym", file=sys.stderr)
    print(user_ref(sub, key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
