"""`HOST=0.0.0.0 make serve` (a phone on the network): over real HTTP, reached through loopback.

Beyond loopback anyone on the network can call it, so the local authorizer takes only tokens
signed with a random per-run key (the banner prints one, first), and real Plaid keys need an
explicit opt-in; the stand-in's fake keys do not.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

from infra.gateway import jwt_local
from infra.gateway.serve_process import ServeProcess, interrupt_and_check, serve, start_make_serve
from tests.conftest import CLIENT_ID, SECRET

OPT_IN = "SERVE_REAL_KEYS_BEYOND_LOOPBACK"


def post(server: ServeProcess, token: str, **headers: str) -> tuple[int, Any]:
    port = urlsplit(server.url).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            "/link-token",
            '{"platform":"web"}',
            {"authorization": f"Bearer {token}", "content-type": "application/json", **headers},
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def banner(server: ServeProcess) -> list[str]:
    start = next(i for i, ln in enumerate(server.lines) if ln.startswith("serve: listening on"))
    return server.lines[start : start + 4]


def test_beyond_loopback_only_tokens_signed_with_the_runs_key_pass() -> None:
    with serve({"HOST": "0.0.0.0", "WORKERS": "1"}) as server:  # noqa: S104 - the point
        top = banner(server)
        assert "WARNING" in top[1] and "NOT loopback" in top[1], top
        assert top[2].startswith("serve: dev token") and "signed" in top[2], top
        assert post(server, server.dev_token)[0] == 200
        unsigned = jwt_local.dev_token()
        forged = jwt_local.dev_token(key=b"guessed-key-0123456789abcdef0123")
        for refused in (unsigned, forged):
            status, body = post(server, refused)
            assert (status, body) == (401, {"message": "Unauthorized"})
        # On the network its name is whatever the phone used: any Host, the token decides.
        port = urlsplit(server.url).port
        assert post(server, server.dev_token, host=f"192.168.77.5:{port}")[0] == 200
        assert post(server, server.dev_token, origin="http://evil.test")[0] == 403


def test_real_keys_beyond_loopback_are_refused_without_the_opt_in(plaid: Any) -> None:
    env = {
        "HOST": "0.0.0.0",  # noqa: S104 - the point
        "WORKERS": "1",
        "PLAID_CLIENT_ID": CLIENT_ID,
        "PLAID_SECRET": SECRET,
        "PLAID_BASE_URL": plaid.base_url,
    }
    refused = start_make_serve(env)
    deadline = time.monotonic() + 60
    while refused.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    interrupt_and_check(refused)
    assert refused.process.returncode != 0
    assert OPT_IN in refused.output()
    assert "serve: ready" not in refused.output()
    assert SECRET not in refused.output()
    assert plaid.requests == []

    with serve({**env, OPT_IN: "1"}) as opted_in:
        assert "WARNING" in banner(opted_in)[1]
        assert post(opted_in, opted_in.dev_token)[0] == 200
        assert post(opted_in, jwt_local.dev_token())[0] == 401
        assert plaid.requests[-1]["headers"]["PLAID-SECRET"] == SECRET
    assert SECRET not in opted_in.output()
