"""`POST /_standin/link/complete` on `make serve`: how the page's Link stand-in finishes a
Link session, as real Link does from a link token. Development only.

Real Link turns a link token into a `public_token` (or, in update mode, a repaired Item) by
talking to Plaid; the Link stand-in (`examples/web/link-standin.js`) cannot, so `make serve`
offers it this same-origin route, which passes the request on to the Plaid stand-in's control
server (`POST <stand-in>/_standin/link/complete`, infra/doubles/standin_control.py):

    POST /_standin/link/complete
    Content-Type: application/json

    {"link_token": "link-sandbox-...", "outcome": "success" | "expired_public_token",
     "link_session_id": "..."}           (outcome and link_session_id optional)

    200 {"mode": "new" | "update", "public_token": "public-sandbox-...", "metadata": {...}}

`mode` says which session it was: a new Item's (the public token and metadata are what Link
gives `onSuccess`; the app exchanges them with `POST /items`) or update mode's (the stand-in
has repaired the Item; there is nothing to exchange). Refusals are RFC 9457 problems: 404 for
a link token the stand-in did not issue, 409 for one already used, 410 for one expired, 400
for a malformed request.

The route exists only while `make serve` runs the built-in Plaid stand-in on loopback (with
real Plaid, or `PLAID_BASE_URL`, or `HOST` beyond loopback, its path is API Gateway's 404 like
any other). It takes no bearer token (Link does not have the app's either) and it is stricter
than the API: the request must name the server's own loopback address (no alias such as
10.0.2.2), carry no Origin but the page's own (not even one in ALLOWED_ORIGINS: no CORS, a
preflight is refused), and be `application/json`. Its answer never holds a key or an access
token: only the three fields above are passed on.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Final

from infra.gateway.apigw_event import HttpResponse, IncomingRequest
from infra.gateway.local_guard import Refusal, RequestGuard

COMPLETE_PATH: Final = "/_standin/link/complete"
MAX_BODY_BYTES: Final = 4096
CONTROL_TIMEOUT_S: Final = 10.0
_PASSED_ON: Final = frozenset({400, 404, 409, 410})  # the control server's refusals


class StandInLink:
    """The route, for a server bound to `server_address`, passing completions on to the Plaid
    stand-in at `standin_base_url`. `answer` is None for any other path."""

    def __init__(
        self,
        server_address: Sequence[Any],
        standin_base_url: str,
        marker: tuple[str, str] | None = None,
    ) -> None:
        # The server's own address and localhost on its port; an Origin only if it is the
        # page's own (the name the request was sent to).
        self.guard = RequestGuard.for_address(server_address, own_origin=True)
        self.target = standin_base_url.rstrip("/") + COMPLETE_PATH
        self.marker = marker
        # Loopback to the stand-in: never through a proxy of the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def answer(self, request: IncomingRequest) -> HttpResponse | None:
        if request.raw_path != COMPLETE_PATH:
            return None
        refusal = self._refusal(request)
        if refusal is not None:
            return self._problem(refusal)
        return self._pass_on(request.body)

    def _refusal(self, request: IncomingRequest) -> Refusal | None:
        refusal = self.guard.check(_values(request, "host"), _values(request, "origin"))
        if refusal is not None:
            return refusal
        if request.method == "OPTIONS":
            return Refusal(403, "no CORS here: only the page this server serves may call this")
        if request.method != "POST":
            return Refusal(405, "POST a JSON body {link_token}")
        media = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            return Refusal(415, "send the request as Content-Type: application/json")
        if len(request.body) > MAX_BODY_BYTES:
            return Refusal(413, f"bodies here are at most {MAX_BODY_BYTES} bytes")
        return None

    def _pass_on(self, body: bytes) -> HttpResponse:
        call = urllib.request.Request(  # noqa: S310 - the stand-in's own loopback URL
            self.target, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with self._opener.open(call, timeout=CONTROL_TIMEOUT_S) as answer:
                doc = json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            reason = refused.read(500).decode("utf-8", "replace")
            if refused.code in _PASSED_ON:
                return self._problem(Refusal(refused.code, reason))
            return self._problem(Refusal(502, f"the Plaid stand-in answered {refused.code}"))
        except (OSError, ValueError) as exc:
            return self._problem(Refusal(502, f"the Plaid stand-in did not answer: {exc}"))
        completed = {key: doc.get(key) for key in ("mode", "public_token", "metadata")}
        if (
            completed["mode"] not in {"new", "update"}
            or not str(completed["public_token"]).startswith("public-")
            or not isinstance(completed["metadata"], dict)
        ):
            return self._problem(Refusal(502, "the Plaid stand-in's answer is not a completion"))
        body = json.dumps(completed, separators=(",", ":")).encode()
        return HttpResponse(200, self._headers("application/json"), body)

    def _problem(self, refusal: Refusal) -> HttpResponse:
        response = HttpResponse(refusal.status, refusal.headers(), refusal.body())
        if refusal.status == 405:
            response.headers.append(("allow", "POST"))
        if self.marker:
            response.headers.append(self.marker)
        return response

    def _headers(self, content_type: str) -> list[tuple[str, str]]:
        headers = [("content-type", content_type), ("cache-control", "no-store")]
        return [*headers, self.marker] if self.marker else headers


def _values(request: IncomingRequest, name: str) -> list[str]:
    return [value for key, value in request.headers if key.lower() == name]
