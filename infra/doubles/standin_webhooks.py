"""How the Plaid stand-in delivers its webhooks: signed, to loopback only, off the request's
thread, with a few quick retries. It is NOT Plaid's delivery service.

Plaid POSTs each webhook (a JSON body, `Content-Type: application/json`) to the Item's webhook
URL with a `Plaid-Verification` JWT (webhook_signer.py), and retries one that got no answer or
a non-2xx one for up to a day. `WebhookSender` makes `ATTEMPTS` quick attempts instead,
`RETRY_PAUSE` seconds apart, each with a `TIMEOUT` second timeout. Each attempt is signed afresh
(its `iat` is then, so a retry is not stale); the body bytes never change. Webhooks go out one
at a time in the order they were sent, on one background thread started at the first one: an
Item's ERROR is never overtaken by its LOGIN_REPAIRED.

It sends only to an http or https URL whose host is a loopback address (127.0.0.0/8, ::1) or
`localhost` (taken as 127.0.0.1, never looked up): any other URL is recorded as refused and
nothing is sent. No proxy and no redirect (http.client, not requests, which reads proxies from
the environment). https is verified with the `tls` context given (the system's CAs otherwise).

Every webhook ends as one `Delivery` (body, URL, attempts, final status or error), kept in
order; `wait_deliveries(n)` blocks until n webhooks are done.

    sender = WebhookSender(lambda body: key.sign(body))
    sender.send("http://127.0.0.1:3000/webhooks/plaid", {"webhook_type": "ITEM", ...})
    [delivery] = sender.wait_deliveries(1)
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import queue
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from infra.doubles.webhook_signer import HEADER

ATTEMPTS: Final = 3
RETRY_PAUSE: Final = 0.2  # seconds between attempts
TIMEOUT: Final = 2.0  # seconds, connecting and answering, per attempt
MAX_DELIVERIES: Final = 10_000  # deliveries kept for deliveries(), newest kept
_MAX_ANSWER: Final = 64 * 1024  # bytes of a receiver's answer read (and dropped)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Delivery:
    """What became of one webhook: `attempts` 0 when it was refused and never sent; `status`
    the last HTTP status answered (None if none was); `error` why it did not succeed."""

    url: str
    webhook: dict[str, Any]
    attempts: int
    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class _Target:
    scheme: str
    address: str  # what is connected to: a loopback IP address
    port: int
    host: str  # the Host header: as the URL names it
    path: str


def loopback_target(url: str) -> _Target:
    """Where `url` is to be posted; ValueError saying why it is refused when it is not an
    http(s) URL of a loopback address."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError("only http and https webhook URLs are delivered")
    hostname = parts.hostname or ""
    if hostname == "localhost":
        address = "127.0.0.1"  # never resolved: a hosts file could point it anywhere
    else:
        try:
            ip = ipaddress.ip_address(hostname)
        except ValueError:
            raise ValueError("the webhook URL names no loopback address") from None
        if not ip.is_loopback:
            raise ValueError("the webhook URL's address is not a loopback address")
        address = str(ip)
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError("the webhook URL's port is not a port") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(parts.scheme, address, port, parts.netloc.rpartition("@")[2], path)


class WebhookSender:
    """Posts webhooks signed by `sign(raw_body) -> Plaid-Verification value` (see the module
    docstring). Thread-safe; `close` stops its thread once what was sent before is done."""

    def __init__(
        self,
        sign: Callable[[bytes], str],
        *,
        tls: ssl.SSLContext | None = None,
        attempts: int = ATTEMPTS,
        retry_pause: float = RETRY_PAUSE,
        timeout: float = TIMEOUT,
    ) -> None:
        self._sign = sign
        self._tls = tls
        self._attempts = attempts
        self._retry_pause = retry_pause
        self._timeout = timeout
        self._queue: queue.SimpleQueue[tuple[str, dict[str, Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._done = threading.Condition()
        self._deliveries: deque[Delivery] = deque(maxlen=MAX_DELIVERIES)
        self._count = 0  # deliveries done, including those no longer kept

    def send(self, url: str, webhook: dict[str, Any]) -> None:
        """Queue `webhook` for `url` and return at once."""
        with self._done:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="standin-webhooks", daemon=True
                )
                self._thread.start()
            self._queue.put((url, webhook))

    def deliveries(self) -> tuple[Delivery, ...]:
        """The deliveries done so far, oldest first."""
        with self._done:
            return tuple(self._deliveries)

    def wait_deliveries(self, n: int, timeout: float = 5.0) -> tuple[Delivery, ...]:
        """`deliveries()` once at least `n` webhooks are done; TimeoutError if they are not
        within `timeout` seconds."""
        with self._done:
            if not self._done.wait_for(lambda: self._count >= n, timeout):
                raise TimeoutError(f"{self._count} of {n} webhooks delivered in {timeout} s")
            return tuple(self._deliveries)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after the webhooks already sent (waiting at most `timeout` s)."""
        with self._done:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._queue.put(None)
        thread.join(timeout)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            delivery = self._deliver(*job)
            with self._done:
                self._deliveries.append(delivery)
                self._count += 1
                self._done.notify_all()

    def _deliver(self, url: str, webhook: dict[str, Any]) -> Delivery:
        body = json.dumps(webhook).encode()
        try:
            target = loopback_target(url)
        except ValueError as refused:
            return Delivery(url, webhook, 0, None, f"refused: {refused}")
        status: int | None = None
        error: str | None = None
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                time.sleep(self._retry_pause)
            status, error = self._post(target, body)
            if error is None:
                return Delivery(url, webhook, attempt, status, None)
        return Delivery(url, webhook, self._attempts, status, error)

    def _post(self, target: _Target, body: bytes) -> tuple[int | None, str | None]:
        """One attempt: (status, None) for a 2xx answer, else (status or None, the reason)."""
        connection: http.client.HTTPConnection
        if target.scheme == "https":
            context = self._tls or ssl.create_default_context()
            connection = http.client.HTTPSConnection(
                target.address, target.port, timeout=self._timeout, context=context
            )
        else:
            connection = http.client.HTTPConnection(
                target.address, target.port, timeout=self._timeout
            )
        headers = {
            "Host": target.host,
            "Content-Type": "application/json",
            HEADER: self._sign(body),
        }
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            answer = connection.getresponse()
            answer.read(_MAX_ANSWER)
        except (OSError, http.client.HTTPException) as failed:
            return None, f"{type(failed).__name__}: {failed}"
        finally:
            connection.close()
        if 200 <= answer.status < 300:
            return answer.status, None
        return answer.status, f"HTTP {answer.status}"
