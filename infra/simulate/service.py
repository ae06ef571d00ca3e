"""HTTP calls to the service (make serve) as the app makes them: JSON in and out, the app's
Bearer JWT on every API route. Loopback only, never through a proxy of the environment."""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

TIMEOUT_S: Final = 30.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Reply:
    """An answer: its status, its JSON body (None if it had none or not JSON), its headers
    (lower-case names)."""

    status: int
    doc: Any
    headers: dict[str, str]


def is_loopback_url(url: str) -> bool:
    """An http(s) URL whose host is a loopback address or `localhost`."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def send(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    """One request; an HTTP error status is a Reply too, a connection failure an OSError."""
    data = None if body is None else json.dumps(body).encode()
    sent = {"accept": "application/json", **(headers or {})}
    if data is not None:
        sent["content-type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=sent)  # noqa: S310
    try:
        with _NO_PROXY.open(request, timeout=TIMEOUT_S) as answer:
            return _reply(answer.status, answer.read(), dict(answer.headers.items()))
    except urllib.error.HTTPError as refused:
        return _reply(refused.code, refused.read(), dict(refused.headers.items()))


def _reply(status: int, raw: bytes, headers: dict[str, str]) -> Reply:
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        doc = None
    return Reply(status, doc, {key.lower(): value for key, value in headers.items()})


class Service:
    """The API at `base_url`, called as the user of `jwt` (never printed)."""

    def __init__(self, base_url: str, jwt: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = {"authorization": f"Bearer {jwt}"}

    def api(self, method: str, path: str, body: Any = None) -> Reply:
        return send(method, self.base_url + path, body, self._auth)

    def unauthenticated(self, method: str, path: str, body: Any = None) -> Reply:
        """A route without the authorizer (make serve's /_standin/link/complete)."""
        return send(method, self.base_url + path, body)

    def health(self, item_id: str) -> str:
        """The Item's `health` as GET /items shows it; "gone" when it is not listed."""
        listed = self.api("GET", "/items")
        if listed.status != 200 or not isinstance(listed.doc, dict):
            raise StepError(f"GET /items answered {listed.status}{problem_code(listed)}")
        for item in listed.doc.get("items", []):
            if item.get("item_id") == item_id:
                return str(item.get("health"))
        return "gone"


class StepError(Exception):
    """What went wrong in a step, in words fit to print (never a token)."""


def problem_code(reply: Reply) -> str:
    """`: CODE (title)` of a problem answer, for a message; empty otherwise."""
    if isinstance(reply.doc, dict) and reply.doc.get("code"):
        return f": {reply.doc['code']} ({reply.doc.get('title', '')})"
    if isinstance(reply.doc, dict) and reply.doc.get("message"):
        return f": {reply.doc['message']}"
    return ""
