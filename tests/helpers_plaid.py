"""What the Plaid client tests send (fake keys, a minimal `/link/token/create` body) and a raw
loopback server for answers no well-behaved server would give (trickled, endless, malformed)."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from linktoken.secret_store import PlaidCredentials
from tests.conftest import CLIENT_ID, SECRET, plaid_schema

CREDENTIALS = PlaidCredentials(client_id=CLIENT_ID, secret=SECRET)
BODY = {
    "client_name": "Acme",
    "language": "en",
    "country_codes": ["US"],
    "user": {"client_user_id": "user-0001"},
    "products": ["transactions"],
}


@contextmanager
def raw_answer_server(pieces: Iterable[bytes], interval: float = 0.0) -> Iterator[str]:
    """Reads one request, then answers with `pieces` exactly as given, waiting `interval`
    seconds before each piece after the first, until they run out or the client leaves."""
    listener = socket.create_server(("127.0.0.1", 0))
    gone = threading.Event()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    request += chunk
                for index, piece in enumerate(pieces):
                    if index and interval and gone.wait(interval):
                        return
                    conn.sendall(piece)
        except OSError:
            pass  # the client gave up (what a deadline does), or nobody came

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        gone.set()
        listener.close()
        thread.join(timeout=5)


def valid_against(body: dict[str, Any], schema: dict[str, Any]) -> None:
    """`body` is valid against `schema` (Draft 2020-12, formats checked)."""
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert problems == [], problems


def valid(body: dict[str, Any], schema_name: str) -> None:
    """`body` is valid against Plaid's schema `schema_name` (../shared/plaid/)."""
    valid_against(body, json.loads(plaid_schema(schema_name).read_text()))


def assert_plaid_error(
    answer: tuple[int, dict[str, Any]], error_type: str, error_code: str, message: str | None
) -> None:
    """Plaid's error object: HTTP 400, these type and code (and message, when given)."""
    status, body = answer
    assert status == 400, body
    assert (body["error_type"], body["error_code"]) == (error_type, error_code), body
    if message is not None:
        assert body["error_message"] == message
    assert body["display_message"] is None
    assert re.fullmatch(r"[0-9a-f]{15}", body["request_id"])
