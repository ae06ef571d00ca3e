"""The secret guard itself: a test that leaks on purpose, by each channel, must fail.

A separate pytest run (a subprocess, with tests/conftest.py loaded as a plugin, exactly as the
suite loads it) executes one test per channel, each leaking a canary secret the service parsed
(or an access token it sealed), plus one clean test. Every leaking test must fail naming its channel, the clean one must pass,
and the failure report itself must not contain the canary.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

LEAKING_TESTS = '''
import json
import logging

from infra.doubles.loopback import XRaySink

from linktoken import endpoint, secret_store

CANARY = {canary!r}


def parsed_canary():
    """The canary becomes a secret the service knows, as a read from Secrets Manager makes it."""
    doc = json.dumps({{"client_id": "client-id-guard", "secret": CANARY}})
    return secret_store.parse_secret(doc, "guard-test").secret


def test_clean():
    assert parsed_canary() == CANARY
    print("a line without secrets")


def test_output():
    print(json.dumps({{"message": "oops", "secret": parsed_canary()}}))


def test_log_records():
    logging.getLogger("some.library").warning("sending key %s", parsed_canary())


def test_responses():
    endpoint.respond(400, {{"detail": "bad " + parsed_canary()}})


def test_traces():
    from linktoken.xray import Subsegment, Tracer

    with XRaySink() as sink:
        environ = {{"LAMBDA_TASK_ROOT": "/var/task", "AWS_XRAY_DAEMON_ADDRESS": sink.address}}
        handler = Subsegment("## plaid")
        handler.put_annotation("key", parsed_canary())
        Tracer("svc", environ)._send(handler, "1-5e0b2c3d-a1b2c3d4e5f6a7b8c9d0e1f2", "53995c3f42cd8ad8")
    assert sink.datagrams


def test_exceptions():
    try:
        raise ValueError("invalid header value " + parsed_canary())
    except ValueError:
        pass  # swallowed, yet the message carried the secret


def sealed_access_token():
    """The canary becomes an access token the service sealed, as the exchange makes it."""
    from plaiditems.vault import TokenVault

    class Kms:
        def call(self, operation, params):
            return {{"CiphertextBlob": "c2VhbGVk"}}

    token = "access-sandbox-" + CANARY
    TokenVault(Kms(), "alias/guard").seal(token, "item-guard", "owner-guard")
    return token


def test_access_token_output():
    print(json.dumps({{"message": "item_exchanged", "token": sealed_access_token()}}))


def test_items_responses():
    from plaiditems import endpoint as items_endpoint

    items_endpoint.respond(201, {{"item_id": "i", "access_token": sealed_access_token()}})
'''

CHANNELS = {
    "test_output": "output (log lines, EMF metrics)",
    "test_log_records": "log records",
    "test_responses": "responses",
    "test_traces": "traces",
    "test_exceptions": "exceptions: 1 of 1 ValueError raised in test_leaks.py:test_exceptions",
    "test_access_token_output": "output (log lines, EMF metrics)",
    "test_items_responses": "responses",
}


def test_a_test_that_leaks_a_secret_by_any_channel_fails(tmp_path: Path) -> None:
    canary = "guard-canary-" + secrets.token_hex(12)  # unknown to this run's own guard
    (tmp_path / "test_leaks.py").write_text(LEAKING_TESTS.format(canary=canary))
    # COLUMNS: wide enough that the summary lines keep the whole failure message.
    env = {**os.environ, "COLUMNS": "400"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--tb=no",
            "-rE",
            "test_leaks.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = result.stdout + result.stderr
    assert canary not in report, "the failure report itself shows the secret"
    errors = dict(re.findall(r"^ERROR test_leaks\.py::(\w+) - AssertionError: (.*)$", report, re.M))
    assert set(errors) == set(CHANNELS), report[-3000:]
    for test, channel in CHANNELS.items():
        assert errors[test].startswith("a secret value left the service: " + channel), errors[test]
    # Each call passes; the guard fails the leaking ones when they end (test_clean does not).
    assert re.search(r"\b8 passed, 7 errors\b", report), report[-3000:]
