"""The Plaid secret's JSON for `put-plaid-secret.sh`, read and written with the function's rules.

    plaid_secret_json.py inspect      stdin: the current SecretString
        prints `key` (it has a usable user_id_hmac_key) or `none` (it has none)
    plaid_secret_json.py build MODE   MODE: keep, new or none; stdin: the client_id and the
                                      secret, one per line, then the current SecretString
        prints the new SecretString

Everything comes in on standard input and goes out on standard output, never on a command
line. A current value that cannot be read (not JSON, not an object, a key that is not a
usable string) stops with exit status 1 and a message naming the problem, never a value:
keeping going would silently replace the key and change every user's id at Plaid.

A real JSON parser, so a key holding escapes (`\\"`, `\\\\`, `\\u00e9`) is kept as the function
decodes it. The result is checked with the function's own `secret_problems` before it is
printed, so nothing the function would reject gets stored. A generated key is 32 random bytes,
hex-encoded: the function uses the string's UTF-8 bytes as the HMAC key.
"""

from __future__ import annotations

import json
import secrets
import sys

from linktoken.secret_store import secret_problems  # handler/ is on PYTHONPATH (the caller's)

KEY = "user_id_hmac_key"


class Unreadable(Exception):
    """The current value or its key cannot be used; the message names no value."""


def current_key(text: str) -> str | None:
    """The current value's usable key, or None when it has none (no value, no field, null)."""
    if not text.strip():
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        raise Unreadable("the current value is not JSON") from None
    if not isinstance(doc, dict):
        raise Unreadable("the current value is not a JSON object")
    key = doc.get(KEY)
    if key is None:  # absent or null: the function reads both as "no key"
        return None
    # The function's own rule for the key, on a value that is otherwise valid.
    probe = json.dumps({"client_id": "probe", "secret": "probe", KEY: key})
    problems = secret_problems(probe)
    if problems:
        raise Unreadable(f"the current value's {problems[0]}")
    return str(key)


def build(mode: str, client_id: str, secret: str, current: str) -> str:
    """The new SecretString; `keep` generates a key when the current value has none."""
    doc = {"client_id": client_id, "secret": secret}
    key = current_key(current) if mode == "keep" else None
    if mode != "none":
        doc[KEY] = key or secrets.token_hex(32)
    text = json.dumps(doc)
    problems = secret_problems(text)
    if problems:
        raise Unreadable(f"the new value {problems[0]}")
    return text


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["inspect"]:
            print("key" if current_key(sys.stdin.read()) else "none")
            return 0
        if len(argv) == 2 and argv[0] == "build" and argv[1] in {"keep", "new", "none"}:
            client_id, secret, current = [*sys.stdin.read().split("\n", 2), "", ""][:3]
            print(build(argv[1], client_id, secret, current))
            return 0
    except Unreadable as exc:
        print(f"put-plaid-secret: {exc}", file=sys.stderr)
        return 1
    print("usage: plaid_secret_json.py inspect | build keep|new|none", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
