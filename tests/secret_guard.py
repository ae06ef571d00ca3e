"""The suite-wide secret guard: a secret value never leaves the service by any channel.

conftest's autouse `output` fixture runs every test inside a `SecretGuard`, which watches:

- output: everything printed (JSON log lines, EMF metric documents), via capfd;
- log records: every record that reaches the root logger's handlers, where Lambda's runtime
  prints (botocore's and urllib3's after `linktoken.observability`'s library log gate),
  formatted with its exception text;
- responses: every response body the endpoints build (`linktoken.endpoint.respond`,
  `plaiditems.endpoint.respond`);
- traces: every X-Ray document the service's own sender sends (`linktoken.xray.Tracer._send`,
  one per sampled invocation);
- exceptions: every exception raised anywhere in the process, any thread, while the test runs
  (its arguments; `sys.monitoring` RAISE events).

The canaries are conftest's fixed secret and HMAC key, plus every secret and HMAC key the
service parses during the test (`linktoken.secret_store.parse_secret`), so a rotated or
test-specific secret is guarded too, and every Plaid access token the service seals or opens
(`plaiditems.vault.TokenVault`). A leak fails the test naming the channel and where, never
the value.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import CodeType
from typing import Any

import pytest

MIN_CANARY_LENGTH = 12  # shorter values ("x", "secret") would match ordinary text
CONTROL_FLOW = (StopIteration, StopAsyncIteration, GeneratorExit)
RUNNER = ("/_pytest/", "/pluggy/", "/hypothesis/")


class SecretGuard:
    """Collects what a test sent out by each channel; `leaks()` says where a canary appeared."""

    def __init__(self, canaries: Iterable[str]) -> None:
        self.canaries: set[str] = set()
        self.sent: dict[str, list[str]] = {}
        for canary in canaries:
            self.learn(canary)

    def learn(self, value: str | bytes | None) -> None:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if value and len(value) >= MIN_CANARY_LENGTH:
            self.canaries.add(value)

    def observe(self, channel: str, text: str) -> None:
        self.sent.setdefault(channel, []).append(text)

    def leaks(self) -> list[str]:
        found = []
        for channel, texts in self.sent.items():
            hits = [text for text in texts if any(canary in text for canary in self.canaries)]
            if hits:
                # The first line of an exception record names its type and place, not the value.
                where = hits[0].split("\n", 1)[0] if channel == "exceptions" else ""
                found.append(f"{channel}: {len(hits)} of {len(texts)} {where}".rstrip())
        return found

    def check(self) -> None:
        leaks = self.leaks()
        assert not leaks, f"a secret value left the service: {'; '.join(leaks)}"


class _RecordingHandler(logging.Handler):
    def __init__(self, guard: SecretGuard) -> None:
        super().__init__(logging.DEBUG)
        self.guard = guard
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.guard.observe("log records", self.format(record))
        except Exception:  # a record that cannot be formatted is not this guard's business
            self.guard.observe("log records", repr(record.msg))


@contextmanager
def _exceptions_watched(guard: SecretGuard) -> Iterator[None]:
    """Every exception raised while the block runs, in any thread: its type, place and args."""
    monitoring = sys.monitoring
    tool = next((t for t in range(6) if monitoring.get_tool(t) is None), None)
    if tool is None:  # every tool id taken (a debugger and a profiler and ...): skip the channel
        yield
        return

    def raised(code: CodeType, _offset: int, exception: BaseException) -> None:
        # Iteration control and the test runner's own machinery (which carries test
        # parameters, secrets included, through StopIteration) are not the service's.
        if isinstance(exception, CONTROL_FLOW) or any(p in code.co_filename for p in RUNNER):
            return
        text = " ".join(a if isinstance(a, str) else repr(a) for a in exception.args)
        if any(canary in text for canary in guard.canaries):
            place = f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}"
            guard.observe("exceptions", f"{type(exception).__name__} raised in {place}\n{text}")

    monitoring.use_tool_id(tool, "secret-guard")
    try:
        monitoring.register_callback(tool, monitoring.events.RAISE, raised)
        monitoring.set_events(tool, monitoring.events.RAISE)
        yield
    finally:
        monitoring.set_events(tool, 0)
        monitoring.register_callback(tool, monitoring.events.RAISE, None)
        monitoring.free_tool_id(tool)


@contextmanager
def guarded(canaries: Iterable[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretGuard]:
    """Run the block with every channel watched; the caller adds captured output, then checks."""
    from linktoken import endpoint, secret_store, xray
    from plaiditems import endpoint as items_endpoint
    from plaiditems import vault

    guard = SecretGuard(canaries)

    seal, open_sealed = vault.TokenVault.seal, vault.TokenVault.open

    def learning_seal(self: vault.TokenVault, access_token: str, *args: str) -> str:
        guard.learn(access_token)
        return seal(self, access_token, *args)

    def learning_open(self: vault.TokenVault, *args: str) -> str:
        access_token = open_sealed(self, *args)
        guard.learn(access_token)
        return access_token

    parse = secret_store.parse_secret

    def learning_parse(secret_string: str | None, secret_id: str) -> Any:
        credentials = parse(secret_string, secret_id)
        guard.learn(credentials.secret)
        guard.learn(credentials.user_id_hmac_key)
        return credentials

    # endpoint's own name for http_event.respond: what it calls, so what is observed.
    respond = endpoint.respond  # type: ignore[attr-defined]  # imported there, not re-exported

    def observed_respond(*args: Any, **kwargs: Any) -> dict[str, Any]:
        response = respond(*args, **kwargs)
        guard.observe("responses", f"{response['headers']} {response['body']}")
        return response

    send = xray.Tracer._send

    def observed_send(tracer: xray.Tracer, root: xray.Subsegment, *trace: str) -> None:
        guard.observe("traces", json.dumps(root.document()))
        send(tracer, root, *trace)

    monkeypatch.setattr(secret_store, "parse_secret", learning_parse)
    monkeypatch.setattr(endpoint, "respond", observed_respond)
    monkeypatch.setattr(items_endpoint, "respond", observed_respond)
    monkeypatch.setattr(vault.TokenVault, "seal", learning_seal)
    monkeypatch.setattr(vault.TokenVault, "open", learning_open)
    monkeypatch.setattr(xray.Tracer, "_send", observed_send)
    handler = _RecordingHandler(guard)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with _exceptions_watched(guard):
            yield guard
    finally:
        root.removeHandler(handler)
