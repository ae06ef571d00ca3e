"""`make serve` over real HTTP on loopback: the server started exactly as `make serve` starts
it (infra/gateway/serve_process.py), answering as the deployed API Gateway + Lambda would:
every route of the template (the link token, and the Items on moto's DynamoDB and KMS), each
function in its own workers.

One server for the module (2 workers per function, one allowed origin, a temporary web root);
stopping it with SIGINT must leave no process behind (checked by the helper on exit).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from infra.gateway.cfn_template import function_routes, invoked_functions, load_template
from infra.gateway.serve_process import (
    ServeProcess,
    children,
    interrupt_and_check,
    is_running,
    serve,
    start_make_serve,
)
from infra.invoke.local_env import STANDIN_KEYS

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "http://app.test:5173"
TEMPLATE = load_template(ROOT / "template.yaml")
TEMPLATE_API = TEMPLATE["Resources"]["LinkTokenApi"]["Properties"]
FUNCTIONS = sorted(function.function for function in invoked_functions(TEMPLATE))


@pytest.fixture(scope="module")
def web_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("web")
    root = base / "site"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>link</title>")
    (root / "app.js").write_text("console.log('hi');")
    (base / "secret.txt").write_text("outside the web root")
    (root / ".env").write_text("PLAID_SECRET=dotfile-secret-never-served")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]")
    (root / "sub").mkdir()
    (root / "sub" / "page.js").write_text("// in a folder")
    return root


@pytest.fixture(scope="module")
def server(web_root: Path) -> Iterator[ServeProcess]:
    env = {
        "WORKERS": "2",
        "ALLOWED_ORIGINS": f"{ORIGIN},http://other-allowed.test",
        "WEB_ROOT": str(web_root),
        "SERVE_LOG_LEVEL": "DEBUG",  # the queue poller's line per batch
    }
    with serve(env) as running:
        yield running


def token(claims: dict[str, Any]) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'kid': 'k'})}.{part(claims)}.c2ln"


class Reply:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.raw = response.read()

    def json(self) -> Any:
        return json.loads(self.raw)


def call(
    server: ServeProcess,
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    url: str | None = None,
) -> Reply:
    target = urlsplit(url or server.url)
    assert target.hostname is not None
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        return Reply(conn.getresponse())
    finally:
        conn.close()


def script_standin(server: ServeProcess, script: str) -> Reply:
    """Queue answers in make serve's Plaid stand-in, as a test (not a web page) does."""
    headers = {"content-type": "application/json"}
    return call(server, "POST", "/_standin/script", script, headers, url=server.standin_url)


def create(server: ServeProcess, sub: str = "user-42", **headers: str) -> Reply:
    return call(
        server,
        "POST",
        "/link-token",
        '{"platform":"web"}',
        {
            "authorization": f"Bearer {token({'sub': sub})}",
            "content-type": "application/json",
            **headers,
        },
    )


def access_logs(server: ServeProcess) -> list[dict[str, Any]]:
    logs = []
    for line in server.output().splitlines():
        if line.startswith('{"requestId"'):
            logs.append(json.loads(line))
    return logs


def access_log_of(server: ServeProcess, request_id: str) -> dict[str, Any]:
    """The access-log line of one request (written just after its response)."""
    deadline = time.monotonic() + 30  # generous: the output is read by a thread, under load
    while not (mine := [log for log in access_logs(server) if log["requestId"] == request_id]):
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    return mine[0]


# ------------------------------------------------------------------------------ the API ---
def plaid_users(server: ServeProcess) -> list[str]:
    seen = call(server, "GET", "/_standin/requests", url=server.standin_url).json()
    return [r["body"]["user"]["client_user_id"] for r in seen if r["path"] == "/link/token/create"]


def test_bearer_sub_is_the_plaid_user_and_a_link_token_comes_back(server: ServeProcess) -> None:
    reply = create(server, sub="ada-lovelace-1815")
    assert reply.status == 200, reply.raw
    body = reply.json()
    assert body["link_token"].startswith("link-sandbox-")
    assert body["request_id"] == reply.headers["apigw-requestid"]
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-plaid-stand-in"].startswith("not-plaid")
    assert server.control_url
    # The local secret has a user_id_hmac_key, as a deployed one does: Plaid gets the sub's
    # keyed pseudonym, the same one for the same sub, never the sub itself.
    (user,) = plaid_users(server)[-1:]
    assert re.fullmatch(r"[0-9a-f]{64}", user), user
    assert "ada-lovelace-1815" not in plaid_users(server)
    assert create(server, sub="ada-lovelace-1815").status == 200
    assert plaid_users(server)[-1] == user
    assert create(server, sub="charles-babbage").status == 200
    assert plaid_users(server)[-1] != user


def test_the_banner_dev_token_and_curl_work(server: ServeProcess) -> None:
    reply = call(
        server, "POST", "/link-token", None, {"authorization": f"Bearer {server.dev_token}"}
    )
    assert reply.status == 200, reply.raw
    assert re.search(r"^serve: try: curl .*/link-token", server.output(), re.M)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        f"Bearer {token({'sub': 'x', 'exp': 1})}",
    ],
)
def test_no_usable_token_is_refused_by_the_authorizer(
    server: ServeProcess, authorization: str | None
) -> None:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    reply = call(server, "POST", "/link-token", "{}", headers)
    assert reply.status == 401
    assert reply.json() == {"message": "Unauthorized"}
    assert reply.headers["www-authenticate"].startswith("Bearer")
    log = access_log_of(server, reply.headers["apigw-requestid"])
    assert log["integrationStatus"] == "-", "the function must not have been called"
    assert log["authorizerError"] != "-"


def test_bad_json_is_the_handlers_400_problem(server: ServeProcess) -> None:
    reply = call(
        server,
        "POST",
        "/link-token",
        "{not json",
        {"authorization": f"Bearer {token({'sub': 'u'})}", "content-type": "application/json"},
    )
    assert reply.status == 400
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/link-token"),
        ("POST", "/other"),
        ("POST", "/link-token/"),
        ("BREW", "/link-token"),
        ("GET", "/nope.js"),
        ("PUT", "/items"),
        ("PATCH", "/items"),
        ("DELETE", "/items"),
        ("GET", "/items/some-item"),
        ("DELETE", "/items/"),
        ("DELETE", "/items/a/b"),
        ("HEAD", "/items"),
    ],
)
def test_other_routes_get_api_gateways_404(server: ServeProcess, method: str, path: str) -> None:
    reply = call(server, method, path, headers={"authorization": f"Bearer {token({'sub': 'u'})}"})
    assert reply.status == 404
    if method != "HEAD":
        assert reply.json() == {"message": "Not Found"}
    log = access_log_of(server, reply.headers["apigw-requestid"])
    assert (log["routeKey"], log["integrationStatus"]) == ("-", "-"), "no route, no function"


# ----------------------------------------------------------------------------- the Items ---
INSTITUTION = {"institution_id": "ins_109508", "name": "First Platypus Bank"}
ACCOUNTS = [
    {"id": "acc-1", "name": "Plaid Checking", "mask": "0000", "type": "depository",
     "subtype": "checking"},
    {"id": "acc-2", "name": "Plaid Saving", "mask": "1111", "type": "depository",
     "subtype": "savings"},
]  # fmt: skip


def api(
    server: ServeProcess, method: str, path: str, sub: str, body: Any = None, **headers: str
) -> Reply:
    """A request of the app's: its user's Bearer token, a JSON body if any."""
    sent = {"authorization": f"Bearer {token({'sub': sub})}", **headers}
    if body is not None:
        sent["content-type"] = "application/json"
    return call(server, method, path, None if body is None else json.dumps(body), sent)


def public_token(server: ServeProcess, institution_id: str = "ins_109508") -> str:
    """What Link's onSuccess would give the app: a public token from the stand-in (its URL is
    in the banner), made with the stand-in's own fake keys."""
    client_id, secret = STANDIN_KEYS
    reply = call(
        server,
        "POST",
        "/sandbox/public_token/create",
        json.dumps({"institution_id": institution_id, "initial_products": ["transactions"]}),
        {"content-type": "application/json", "plaid-client-id": client_id, "plaid-secret": secret},
        url=server.standin_url,
    )
    assert reply.status == 200, reply.raw
    return str(reply.json()["public_token"])


def exchange(server: ServeProcess, sub: str, accounts: list[dict[str, str]] = ACCOUNTS) -> Reply:
    metadata = {"institution": INSTITUTION, "accounts": accounts, "link_session_id": "s-1"}
    body = {"public_token": public_token(server), "metadata": metadata}
    return api(server, "POST", "/items", sub, body)


def route_of(server: ServeProcess, reply: Reply) -> str:
    return str(access_log_of(server, reply.headers["apigw-requestid"])["routeKey"])


def test_the_items_flow_through_every_route(server: ServeProcess) -> None:
    sub = "items-flow-user"
    created = exchange(server, sub)
    assert created.status == 201, created.raw
    item = created.json()
    item_id = item["item_id"]
    assert created.headers["location"] == f"/items/{item_id}"
    assert (item["institution"], item["health"]) == (INSTITUTION, "healthy")
    assert [account["mask"] for account in item["accounts"]] == ["0000", "1111"]
    assert b"access-sandbox" not in created.raw
    assert route_of(server, created) == "POST /items"

    listed = api(server, "GET", "/items", sub)
    assert listed.status == 200, listed.raw
    (entry,) = listed.json()["items"]
    assert (entry["item_id"], entry["health"]) == (item_id, "healthy")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["health_at"])
    assert route_of(server, listed) == "GET /items"

    update = api(server, "POST", "/link-token", sub, {"item_id": item_id})
    assert update.status == 200, update.raw
    assert update.json()["link_token"].startswith("link-sandbox-")
    seen = call(server, "GET", "/_standin/requests", url=server.standin_url).json()
    sent = [r["body"] for r in seen if r["path"] == "/link/token/create"][-1]
    assert sent["access_token"] == "<redacted>", "update mode sends the Item's access token"
    assert "products" not in sent
    assert b"access-sandbox" not in update.raw

    intruder = api(server, "DELETE", f"/items/{item_id}", "another-user")
    assert intruder.status == 404, intruder.raw
    assert intruder.json()["code"] == "ITEM_NOT_FOUND"
    assert route_of(server, intruder) == "DELETE /items/{item_id}"
    assert api(server, "POST", "/link-token", "another-user", {"item_id": item_id}).status == 404

    removed = api(server, "DELETE", f"/items/{item_id}", sub)
    assert (removed.status, removed.raw) == (204, b"")
    assert "content-length" not in removed.headers, "RFC 9110: a 204 has no Content-Length"
    assert "content-type" not in removed.headers
    assert route_of(server, removed) == "DELETE /items/{item_id}"
    handler_lines = [
        json.loads(line) for line in server.output().splitlines() if '"item_removed"' in line
    ]
    assert any(line.get("item_id") == item_id for line in handler_lines), "its path parameter"

    gone = api(server, "GET", "/items", sub)
    assert (gone.status, gone.json()["items"]) == (200, [])
    assert api(server, "DELETE", f"/items/{item_id}", "another-user").status == 404
    assert api(server, "DELETE", f"/items/{item_id}", sub).status == 204, "a repeat: 204"


def test_a_204_keeps_the_connection_usable_for_the_next_request(server: ServeProcess) -> None:
    """No body and no Content-Length after a 204: the next answer on the connection is whole."""
    sub = "keep-alive-user"
    item_id = exchange(server, sub).json()["item_id"]
    target = urlsplit(server.url)
    assert target.hostname is not None
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    headers = {"authorization": f"Bearer {token({'sub': sub})}"}
    try:
        conn.request("DELETE", f"/items/{item_id}", headers=headers)
        first = conn.getresponse()
        assert (first.status, first.read()) == (204, b"")
        conn.request("GET", "/items", headers=headers)
        second = conn.getresponse()
        assert second.status == 200
        assert json.loads(second.read())["items"] == []
    finally:
        conn.close()


def test_an_unknown_method_on_items_is_a_404_before_the_authorizer(server: ServeProcess) -> None:
    for headers in ({}, {"authorization": f"Bearer {token({'sub': 'u'})}"}):
        reply = call(server, "PUT", "/items", "{}", {"content-type": "application/json", **headers})
        assert reply.status == 404
        assert reply.json() == {"message": "Not Found"}
        assert "allow" not in reply.headers, "an HTTP API has no 405"
        log = access_log_of(server, reply.headers["apigw-requestid"])
        assert log["authorizerError"] == "-"


def test_every_items_route_is_behind_the_authorizer(server: ServeProcess) -> None:
    for method, path in (
        ("POST", "/items"),
        ("GET", "/items"),
        ("DELETE", "/items/x"),
        ("POST", "/items/x/refresh"),
    ):
        reply = call(server, method, path, "{}", {"content-type": "application/json"})
        assert reply.status == 401, (method, path)
        assert reply.json() == {"message": "Unauthorized"}
        log = access_log_of(server, reply.headers["apigw-requestid"])
        assert log["integrationStatus"] == "-", "the function must not have been called"


def test_the_same_accounts_again_are_refused_as_a_duplicate(server: ServeProcess) -> None:
    first = exchange(server, "dup-user")
    assert first.status == 201, first.raw
    again = exchange(server, "dup-user")
    assert again.status == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert (again.json()["code"], again.json()["item_id"]) == (
        "DUPLICATE_ITEM",
        first.json()["item_id"],
    )


# ------------------------------------------------------------------------------ webhooks ---
def linked_item(server: ServeProcess, sub: str) -> str:
    """An Item linked as the app links one: a link token (naming this server's receiver as its
    webhook), the Link session finished by the stand-in, the public token exchanged."""
    link_token = api(server, "POST", "/link-token", sub, {"platform": "web"}).json()["link_token"]
    done = complete_link(server, {"link_token": link_token}).json()
    body = {"public_token": done["public_token"], "metadata": done["metadata"]}
    created = api(server, "POST", "/items", sub, body)
    assert created.status == 201, created.raw
    return str(created.json()["item_id"])


def on_standin_item(server: ServeProcess, item_id: str, action: str) -> Reply:
    """`reset_login` or `repair` the Item at the stand-in, which sends its webhook as Plaid
    would (standin_control.py)."""
    path = f"/_standin/items/{item_id}/{action}"
    json_type = {"content-type": "application/json"}
    return call(server, "POST", path, "{}", json_type, url=server.standin_url)


def wait_for_health(server: ServeProcess, sub: str, wanted: str) -> None:
    deadline = time.monotonic() + 30
    while (healths := [i["health"] for i in api(server, "GET", "/items", sub).json()["items"]]) != [
        wanted
    ]:
        assert time.monotonic() < deadline, (healths, server.output()[-4000:])
        time.sleep(0.1)


def test_a_webhook_goes_from_the_standin_through_the_queue_to_the_items_health(
    server: ServeProcess,
) -> None:
    sub = "webhook-flow-user"
    item_id = linked_item(server, sub)
    receiver = f"{server.url}/webhooks/plaid"
    assert server.wait_for(r"^serve: Webhooks: (.*)$").group(1) == (
        f"the stand-in posts them to {receiver} (PLAID_WEBHOOK_URL of new Items' link tokens)"
    )
    before = len(server.lines)

    assert on_standin_item(server, item_id, "reset_login").status == 204
    wait_for_health(server, sub, "login_required")

    deliveries = call(server, "GET", "/_standin/webhooks", url=server.standin_url).json()
    mine = [d for d in deliveries if d["webhook"].get("item_id") == item_id]
    assert [(d["url"], d["status"], d["webhook"]["webhook_code"]) for d in mine] == [
        (receiver, 200, "ERROR")
    ]
    server.wait_for(
        r"^serve: queue plaid-link-webhooks-dev\.fifo -> WebhookProcessorFunction: 1 received,"
        r" 1 deleted, 0 left for redelivery \([\d.]+ ms\)$",
        after=before,
    )
    applied = [
        json.loads(line)
        for line in server.lines[before:]
        if '"webhook_applied"' in line and item_id in line
    ]
    assert [(line["outcome"], line["receive_count"]) for line in applied] == [("applied", 1)]
    accepted = [
        log
        for log in access_logs(server)
        if log["routeKey"] == "POST /webhooks/plaid" and log["status"] == 200
    ]
    assert accepted and all(log["authorizerError"] == "-" for log in accepted)

    assert on_standin_item(server, item_id, "repair").status == 204
    wait_for_health(server, sub, "healthy")


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer not-a-jwt"}],
    ids=["no-authorization", "unreadable-jwt"],
)
def test_the_webhook_route_has_no_authorizer_and_the_function_refuses_unsigned_ones(
    server: ServeProcess, headers: dict[str, str]
) -> None:
    body = json.dumps({"webhook_type": "ITEM", "webhook_code": "ERROR", "item_id": "x"})
    reply = call(
        server, "POST", "/webhooks/plaid", body, {"content-type": "application/json", **headers}
    )

    assert reply.status == 401
    assert reply.json()["code"] == "WEBHOOK_UNVERIFIED", "the receiver's answer, not API Gateway's"
    log = access_log_of(server, reply.headers["apigw-requestid"])
    assert (log["routeKey"], log["integrationStatus"], log["authorizerError"]) == (
        "POST /webhooks/plaid",
        "200",
        "-",
    )


def complete_link(server: ServeProcess, body: Any, **headers: str) -> Reply:
    """The Link stand-in's request: make serve's same-origin route to finish a Link session."""
    sent = {"content-type": "application/json", **headers}
    return call(server, "POST", "/_standin/link/complete", json.dumps(body), sent)


def test_the_link_stand_in_completes_sessions_on_the_pages_own_origin_only(
    server: ServeProcess,
) -> None:
    sub = "link-complete-user"
    link_token = api(server, "POST", "/link-token", sub, {"platform": "web"}).json()["link_token"]
    # An origin ALLOWED_ORIGINS lets call the API may not call this route: no CORS here.
    assert complete_link(server, {"link_token": link_token}, origin=ORIGIN).status == 403
    preflight = call(
        server,
        "OPTIONS",
        "/_standin/link/complete",
        headers={"origin": ORIGIN, "access-control-request-method": "POST"},
    )
    assert preflight.status == 403
    assert "access-control-allow-origin" not in preflight.headers
    plain = complete_link(server, {"link_token": link_token}, **{"content-type": "text/plain"})
    assert plain.status == 415
    done = complete_link(server, {"link_token": link_token}, origin=server.url)
    assert done.status == 200, done.raw
    assert done.headers["x-plaid-stand-in"].startswith("not-plaid")
    assert b"access-" not in done.raw
    completed = done.json()
    assert completed["mode"] == "new"
    body = {"public_token": completed["public_token"], "metadata": completed["metadata"]}
    created = api(server, "POST", "/items", sub, body)
    assert created.status == 201, created.raw
    assert complete_link(server, {"link_token": link_token}).status == 409, "one session"
    # Update mode: the same route repairs the Item; nothing to exchange.
    item_id = created.json()["item_id"]
    update = api(server, "POST", "/link-token", sub, {"item_id": item_id}).json()["link_token"]
    repaired = complete_link(server, {"link_token": update})
    assert (repaired.status, repaired.json()["mode"]) == (200, "update")


def test_each_function_runs_in_workers_of_its_own(server: ServeProcess) -> None:
    pids = {name: {p for p in server.worker_pids(name) if is_running(p)} for name in FUNCTIONS}
    assert FUNCTIONS == [
        "ItemExchangeFunction",
        "ItemsFunction",
        "LinkTokenFunction",
        "WebhookProcessorFunction",  # no route: the webhook queue's poller invokes it
        "WebhookReceiverFunction",
    ]
    assert all(len(running) == 2 for running in pids.values()), pids  # WORKERS=2 each
    every = [pid for running in pids.values() for pid in running]
    assert len(every) == len(set(every)), "no worker serves two functions"
    # ItemsFunction's workers gone: its routes wait for cold starts of their own, the other
    # functions' routes answer from their warm workers without noticing.
    before = len(server.lines)
    for pid in pids["ItemsFunction"]:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(is_running(pid) for pid in pids["ItemsFunction"]):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert create(server).status == 200
    assert exchange(server, "pools-user").status == 201
    assert not [line for line in server.lines[before:] if "died" in line]
    listed = api(server, "GET", "/items", "pools-user")
    assert listed.status == 200, "\n".join(server.lines[before:])
    died = [line for line in server.lines[before:] if "died" in line]
    assert died and all("ItemsFunction) died while idle" in line for line in died), died
    server.wait_for(r"^serve: worker ready \(pid \d+, ItemsFunction\)$", 60, after=before)


def test_the_banner_names_the_routes_the_table_and_the_key(server: ServeProcess) -> None:
    out = server.output()
    for route in function_routes(TEMPLATE):
        assert re.search(
            rf"^serve: route {route.method} +{re.escape(route.path)} +{route.function}"
            rf" \({re.escape(route.handler)}, timeout {route.timeout_seconds} s\)$",
            out,
            re.M,
        ), route
    items = server.wait_for(r"^serve: Items: (.*)$").group(1)
    assert re.fullmatch(
        r"table 'plaid-link-items-dev' in moto's DynamoDB, key"
        r" arn:aws:kms:us-east-1:\d{12}:key/[0-9a-f-]{36} in moto's KMS at"
        r" http://127\.0\.0\.1:\d+ \(new, empty\)",
        items,
    ), items


def test_the_local_secret_has_a_random_hmac_key_that_is_never_printed(
    server: ServeProcess,
) -> None:
    import botocore.session

    def client(service: str) -> Any:
        return botocore.session.get_session().create_client(
            service,
            endpoint_url=moto_url(server),
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    value = json.loads(
        client("secretsmanager").get_secret_value(
            SecretId="plaid-link-token-dev/plaid-credentials"
        )["SecretString"]
    )
    key = value["user_id_hmac_key"]
    assert re.fullmatch(r"[0-9a-f]{64}", key), "32 random bytes"
    assert key not in server.output()
    table = client("dynamodb").describe_table(TableName="plaid-link-items-dev")["Table"]
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }


# ---------------------------------------------------------------------------------- CORS ---
def test_preflight_from_an_allowed_origin_gets_the_templates_grant(server: ServeProcess) -> None:
    reply = call(
        server,
        "OPTIONS",
        "/link-token",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        },
    )
    cors = TEMPLATE_API["CorsConfiguration"]["Fn::If"][1]
    assert reply.status == 204
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    assert reply.headers["access-control-allow-methods"].split(",") == cors["AllowMethods"]
    assert reply.headers["access-control-allow-headers"].split(",") == cors["AllowHeaders"]
    assert int(reply.headers["access-control-max-age"]) == cors["MaxAge"]
    assert "access-control-allow-credentials" not in reply.headers
    assert not cors["AllowCredentials"]


def test_a_delete_preflight_is_granted_with_the_templates_methods(server: ServeProcess) -> None:
    reply = call(
        server,
        "OPTIONS",
        "/items/some-item",
        headers={"origin": ORIGIN, "access-control-request-method": "DELETE"},
    )
    assert reply.status == 204
    assert "DELETE" in reply.headers["access-control-allow-methods"].split(",")
    assert "content-length" not in reply.headers
    allowed = api(server, "DELETE", "/items/unknown-item", "cors-user", origin=ORIGIN)
    assert allowed.status == 404
    assert allowed.json()["code"] == "ITEM_NOT_FOUND"
    assert allowed.headers["access-control-allow-origin"] == ORIGIN


def test_preflight_from_another_origin_is_refused_without_a_grant(server: ServeProcess) -> None:
    reply = call(
        server,
        "OPTIONS",
        "/link-token",
        headers={"origin": "https://evil.test", "access-control-request-method": "POST"},
    )
    assert reply.status == 403
    assert reply.headers["content-type"] == "application/problem+json"
    assert not [h for h in reply.headers if h.startswith("access-control-")]


def test_the_actual_response_carries_the_grant_for_an_allowed_origin_only(
    server: ServeProcess,
) -> None:
    allowed = create(server, origin=ORIGIN)
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    exposed = allowed.headers["access-control-expose-headers"].split(",")
    cors = TEMPLATE_API["CorsConfiguration"]["Fn::If"][1]
    assert set(cors["ExposeHeaders"]) <= set(exposed)
    assert "x-plaid-stand-in" in exposed, "browsers must be able to see it is not Plaid"
    refused = call(server, "POST", "/link-token", "{}", {"origin": ORIGIN})
    assert refused.status == 401
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    other = create(server, origin="https://evil.test")
    assert other.status == 403
    assert not [h for h in other.headers if h.startswith("access-control-")]


# ------------------------------------------------------------------------ access log ---
def test_access_log_is_the_templates_format_one_line_per_request(server: ServeProcess) -> None:
    reply = create(server)
    request_id = reply.headers["apigw-requestid"]
    access_log_of(server, request_id)
    mine = [log for log in access_logs(server) if log["requestId"] == request_id]
    assert len(mine) == 1
    sample = re.sub(r"\$context\.[A-Za-z.]+", "1", TEMPLATE_API["AccessLogSettings"]["Format"])
    assert list(mine[0]) == list(json.loads(sample)), "the keys of the template's format"
    assert mine[0]["status"] == 200
    assert mine[0]["routeKey"] == "POST /link-token"
    assert mine[0]["httpMethod"] == "POST"
    assert mine[0]["integrationStatus"] == "200"
    handler_lines = [
        json.loads(line)
        for line in server.output().splitlines()
        if '"message":"link_token_created"' in line
    ]
    assert any(line.get("correlation_id") == request_id for line in handler_lines)


# ---------------------------------------------------------------------- static files ---
def test_web_root_is_served_and_nothing_outside_it(server: ServeProcess) -> None:
    index = call(server, "GET", "/")
    assert index.status == 200
    assert index.headers["content-type"].startswith("text/html")
    assert b"<title>link</title>" in index.raw
    script = call(server, "GET", "/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "//etc/passwd"):
        reply = call(server, "GET", path)
        assert reply.status == 404, path
        assert reply.json() == {"message": "Not Found"}


# ---------------------------------------------------------------------------- bad input ---
def test_oversized_and_malformed_requests_get_gateway_answers(server: ServeProcess) -> None:
    target = urlsplit(server.url)
    huge = call(
        server,
        "POST",
        "/link-token",
        headers={"content-length": str(11 * 1024 * 1024), "authorization": "Bearer x"},
    )
    assert huge.status == 413
    host = f"Host: {target.netloc}\r\n".encode()
    with socket.create_connection((target.hostname, target.port), timeout=10) as sock:
        sock.sendall(b"POST /link-token HTTP/1.1\r\n" + host + b"Content-Length: abc\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    # a client that leaves mid-body, and one that never finishes its headers
    with socket.create_connection((target.hostname, target.port), timeout=10) as sock:
        sock.sendall(b"POST /link-token HTTP/1.1\r\n" + host + b"Content-Length: 100\r\n\r\n{")
    with socket.create_connection((target.hostname, target.port), timeout=10) as sock:
        sock.sendall(b"POST /link-token HTTP/1.1\r\n" + host)
    assert create(server).status == 200


def test_a_burst_of_64_concurrent_clients_all_get_200(server: ServeProcess) -> None:
    with ThreadPoolExecutor(64) as pool:
        statuses = list(pool.map(lambda i: create(server, sub=f"burst-{i}").status, range(64)))
    assert statuses == [200] * 64


def test_a_worker_killed_mid_request_is_replaced_and_that_request_gets_500(
    server: ServeProcess,
) -> None:
    # Plaid answers slowly, so the request is certainly in a worker when the workers die.
    assert server.control_url
    scripted = json.dumps([{"status": 200, "body": {}, "delay": 10}])
    assert script_standin(server, scripted).status == 204
    before = len(server.lines)

    def plaid_calls() -> int:
        listing = call(server, "GET", "/_standin/requests", url=server.standin_url)
        return len(listing.json())

    calls_before = plaid_calls()
    result: list[Reply] = []
    thread = threading.Thread(target=lambda: result.append(create(server)))
    thread.start()
    # Kill once the request is in a worker, waiting on Plaid (not after a guessed pause).
    deadline = time.monotonic() + 30
    while plaid_calls() == calls_before:
        assert time.monotonic() < deadline, "the request never reached Plaid"
        time.sleep(0.05)
    for pid in server.worker_pids("LinkTokenFunction"):
        with contextlib.suppress(ProcessLookupError):  # an earlier one, already replaced
            os.kill(pid, signal.SIGKILL)
    thread.join(30)
    assert result[0].status == 500
    assert result[0].json() == {"message": "Internal Server Error"}
    server.wait_for(r"^serve: worker ready \(pid \d+, LinkTokenFunction\)$", 60, after=before)
    call(server, "DELETE", "/_standin/script", url=server.standin_url)
    assert create(server).status == 200


def test_scripted_plaid_errors_reach_the_app_as_the_handlers_problems(server: ServeProcess) -> None:
    plaid_error = {
        "error_type": "INVALID_INPUT",
        "error_code": "INVALID_PRODUCT",
        "error_message": "client not enabled",
        "display_message": None,
        "request_id": "scripted-req-1",
    }
    scripted = json.dumps([{"status": 400, "body": plaid_error}])
    assert script_standin(server, scripted).status == 204
    reply = create(server, origin=ORIGIN)
    assert reply.status == 502
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["code"] == "UPSTREAM_REJECTED"
    assert reply.json()["plaid_request_id"] == "scripted-req-1"
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    bad = script_standin(server, '{"nope": 1}')
    assert bad.status == 400


def test_an_event_over_lambdas_payload_limit_is_an_integration_failure(
    server: ServeProcess,
) -> None:
    body = json.dumps({"platform": "web", "pad": "x" * (7 * 1024 * 1024)})
    reply = call(
        server,
        "POST",
        "/link-token",
        body,
        {"authorization": f"Bearer {token({'sub': 'u'})}", "content-type": "application/json"},
    )
    assert reply.status == 500
    assert reply.json() == {"message": "Internal Server Error"}


def test_head_of_a_static_file_has_its_headers_and_no_body(server: ServeProcess) -> None:
    reply = call(server, "HEAD", "/app.js")
    assert reply.status == 200
    assert reply.raw == b""
    assert int(reply.headers["content-length"]) == len("console.log('hi');")


def test_sigterm_to_the_server_alone_stops_everything_it_started() -> None:
    with serve({"WORKERS": "1"}) as alone:
        (server_pid,) = children(alone.process.pid)  # make's one child: the server
        started = children(server_pid)
        assert len(started) >= 2, "a worker and multiprocessing's resource tracker"
        os.kill(server_pid, signal.SIGTERM)
        alone.process.wait(30)
        deadline = time.monotonic() + 10.0  # generous: a leftover never exits at all
        while any(is_running(pid) for pid in started):
            assert time.monotonic() < deadline, f"left behind: {started}"
            time.sleep(0.02)


def test_given_keys_seed_the_local_secret_and_never_show(plaid: Any) -> None:
    from tests.conftest import CLIENT_ID, SECRET

    env = {
        "WORKERS": "1",
        "PLAID_CLIENT_ID": CLIENT_ID,
        "PLAID_SECRET": SECRET,
        "PLAID_BASE_URL": plaid.base_url,
    }
    with serve(env) as keyed:
        reply = create(keyed, sub="keyed-user")
        assert reply.status == 200, reply.raw
        assert "x-plaid-stand-in" not in reply.headers, "this Plaid is not the built-in stand-in"
        assert keyed.standin_url is None
        # No built-in stand-in, no Link stand-in route: API Gateway's 404 like any path.
        assert complete_link(keyed, {"link_token": "link-sandbox-x"}).status == 404
        assert plaid.requests[-1]["headers"]["PLAID-SECRET"] == SECRET
        assert "PLAID_CLIENT_ID/PLAID_SECRET" in keyed.output()
    assert SECRET not in keyed.output()


def test_ctrl_c_during_start_up_stops_everything_at_once() -> None:
    starting = start_make_serve({"WORKERS": "2"})
    time.sleep(1.0)  # imports and cold starts take longer than this
    interrupt_and_check(starting, stop_within=10.0)  # a worker's init may last 60 s
    assert "serve: stopped while starting" in starting.output()


# -------------------------------------------------------- what a web page must not do ---
EVIL = "http://rebind.attacker.test"


def raw_exchange(server: ServeProcess, request: bytes, timeout: float = 15.0) -> bytes:
    """Send raw bytes; everything the server answers until it closes (or `timeout`)."""
    target = urlsplit(server.url)
    with socket.create_connection((target.hostname, target.port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        # Closing with part of the request unread resets the connection: after the answer.
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def moto_url(server: ServeProcess) -> str:
    return server.wait_for(r"moto Secrets Manager at (http://\S+) ").group(1)


def test_a_foreign_host_dns_rebinding_is_refused_before_the_authorizer(
    server: ServeProcess,
) -> None:
    port = urlsplit(server.url).port
    reply = create(server, host=f"rebind.attacker.test:{port}")
    assert reply.status == 421
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["status"] == 421
    assert "rebind.attacker.test" in reply.json()["detail"]
    log = access_log_of(server, reply.headers["apigw-requestid"])
    assert log["integrationStatus"] == "-", "the function must not have been called"
    # 10.0.2.2 is how the Android emulator names the host's loopback (docs/clients.md).
    for good_host in (f"localhost:{port}", f"127.0.0.1:{port}", f"10.0.2.2:{port}"):
        assert create(server, host=good_host).status == 200, good_host


def test_a_foreign_origin_is_refused_before_the_authorizer_and_the_own_one_is_not(
    server: ServeProcess,
) -> None:
    before = len(call(server, "GET", "/_standin/requests", url=server.standin_url).json())
    reply = create(server, origin=EVIL)
    assert reply.status == 403
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["title"] == "Forbidden"
    log = access_log_of(server, reply.headers["apigw-requestid"])
    assert log["integrationStatus"] == "-"
    after = call(server, "GET", "/_standin/requests", url=server.standin_url).json()
    assert len(after) == before, "Plaid was not called"
    assert create(server, origin="null").status == 403  # a sandboxed frame, a file:// page
    # The page make serve serves posts to it under its own origin.
    assert create(server, origin=server.url).status == 200


def test_the_standin_refuses_foreign_hosts_origins_and_cross_site_scripts(
    server: ServeProcess,
) -> None:
    assert server.standin_url
    port = urlsplit(server.standin_url).port
    script = json.dumps([{"status": 500, "body": {}}])
    foreign_host = call(
        server,
        "POST",
        "/_standin/script",
        script,
        {"host": f"rebind.attacker.test:{port}", "content-type": "application/json"},
        url=server.standin_url,
    )
    assert foreign_host.status == 421
    # What a page's fetch(url, {method: "POST", mode: "no-cors", body}) sends: no preflight.
    cross_site = call(
        server,
        "POST",
        "/_standin/script",
        script,
        {"origin": EVIL, "content-type": "text/plain;charset=UTF-8"},
        url=server.standin_url,
    )
    assert cross_site.status == 403
    assert cross_site.headers["content-type"] == "application/problem+json"
    listing = call(
        server, "GET", "/_standin/requests", headers={"origin": EVIL}, url=server.standin_url
    )
    assert listing.status == 403
    text_plain = call(
        server,
        "POST",
        "/_standin/script",
        script,
        {"content-type": "text/plain"},
        url=server.standin_url,
    )
    assert text_plain.status == 415
    plaid_call = call(
        server, "POST", "/link/token/create", "{}", {"origin": EVIL}, url=server.standin_url
    )
    assert plaid_call.status == 403
    assert create(server).status == 200, "nothing was scripted"


def test_the_local_secrets_manager_serves_no_page_no_origin_and_not_its_state(
    server: ServeProcess,
) -> None:
    endpoint = moto_url(server)
    port = urlsplit(endpoint).port
    data = call(server, "GET", "/moto-api/data.json", url=endpoint)
    assert data.status == 404
    assert b"standin-secret" not in data.raw
    assert call(server, "GET", "/moto-api/", url=endpoint).status == 404
    get_secret = {
        "x-amz-target": "secretsmanager.ListSecrets",
        "content-type": "application/x-amz-json-1.1",
    }
    rebound = call(
        server,
        "POST",
        "/",
        "{}",
        {**get_secret, "host": f"rebind.attacker.test:{port}"},
        url=endpoint,
    )
    assert rebound.status == 421
    from_page = call(server, "POST", "/", "{}", {**get_secret, "origin": EVIL}, url=endpoint)
    assert from_page.status == 403
    assert not [h for h in from_page.headers if h.startswith("access-control-")]
    preflight = call(
        server,
        "OPTIONS",
        "/",
        headers={"origin": EVIL, "access-control-request-method": "POST"},
        url=endpoint,
    )
    assert preflight.status == 403
    assert not [h for h in preflight.headers if h.startswith("access-control-")]
    assert create(server).status == 200, "the function still reads its secret"


def test_dotfiles_and_encoded_traversal_are_not_found(server: ServeProcess) -> None:
    assert call(server, "GET", "/sub/page.js").status == 200
    for path in (
        "/.env",
        "/%2eenv",
        "/sub/..%2f.env",
        "/sub/%2e%2e/.env",
        "/.git/config",
        "/sub/../.git/config",
        "/./app.js",
    ):
        reply = call(server, "GET", path)
        assert reply.status == 404, path
        assert b"dotfile-secret" not in reply.raw


def test_very_long_paths_are_clean_4xx_without_a_traceback(server: ServeProcess) -> None:
    before = len(server.lines)
    huge = call(server, "GET", "/" + "a" * 100_000)
    assert huge.status == 414
    long_name = call(server, "GET", "/" + "a" * 10_000)
    assert long_name.status == 404
    assert long_name.json() == {"message": "Not Found"}
    deep = call(server, "GET", "/" + "a/" * 2000 + "x.js")
    assert deep.status == 404
    time.sleep(0.2)
    assert "Traceback" not in "\n".join(server.lines[before:])


def test_every_answer_says_nosniff_and_the_page_has_its_csp(server: ServeProcess) -> None:
    page = call(server, "GET", "/")
    assert page.headers["x-content-type-options"] == "nosniff"
    csp = {d.split()[0]: d.split()[1:] for d in page.headers["content-security-policy"].split("; ")}
    assert csp["frame-ancestors"] == ["'none'"]
    assert "https://cdn.plaid.com/link/v2/stable/link-initialize.js" in csp["script-src"]
    assert csp["frame-src"] == ["https://cdn.plaid.com/"]
    assert "'self'" in csp["script-src"]
    assert call(server, "GET", "/app.js").headers["x-content-type-options"] == "nosniff"
    api = create(server)
    assert api.status == 200
    assert api.headers["x-content-type-options"] == "nosniff"
    for reply in (call(server, "GET", "/nope"), call(server, "POST", "/link-token")):
        assert reply.headers["x-content-type-options"] == "nosniff", reply.status


def _rss_kib(pid: int) -> int:
    status = (Path("/proc") / str(pid) / "status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert match
    return int(match.group(1))


def test_a_negative_chunk_size_is_a_400_and_nothing_more_is_read(server: ServeProcess) -> None:
    (server_pid,) = children(server.process.pid)
    rss_before = _rss_kib(server_pid)
    target = urlsplit(server.url)
    head = (
        f"POST /link-token HTTP/1.1\r\nHost: {target.netloc}\r\n"
        "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n-1\r\n"
    ).encode()
    with socket.create_connection((target.hostname, target.port), timeout=15) as sock:
        sock.sendall(head)
        # The old reader took -1 as "read to EOF": no answer while the connection stays open.
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 400"), answer
        assert b"connection: close" in answer.lower()
        sent = 0
        with contextlib.suppress(OSError):  # the server closed: the rest goes nowhere
            for _ in range(32):
                sock.sendall(b"x" * (1024 * 1024))
                sent += 1
        assert sent < 32 or sock.recv(1) == b"", "the server kept reading"
    assert _rss_kib(server_pid) - rss_before < 16 * 1024, "the server grew by the body sent"
    assert create(server).status == 200


@pytest.mark.parametrize(
    "framing",
    [
        b"Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n5_0\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n5;" + b"e" * 2000 + b"\r\nhello\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n" + b"x-t: 1\r\n" * 40 + b"\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n0\r\nx-t: " + b"1" * 2000 + b"\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * 20_000 + b"0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"Content-Length: -5\r\n\r\n",
        b"Content-Length: +5\r\n\r\nhello",
        b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    ],
    ids=[
        "plus-sign", "0x-prefix", "leading-space", "underscore", "long-extension",
        "no-crlf-after-data", "too-many-trailers", "long-trailer", "too-many-chunks",
        "chunked-and-length", "other-coding", "negative-length", "signed-length",
        "repeated-length",
    ],
)  # fmt: skip
def test_malformed_framing_is_a_400_and_the_connection_closes(
    server: ServeProcess, framing: bytes
) -> None:
    host = urlsplit(server.url).netloc
    head = f"POST /link-token HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer x\r\n"
    answer = raw_exchange(server, head.encode() + framing)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1, "one answer, then the connection closed"


def test_well_formed_chunked_bodies_still_reach_the_function(server: ServeProcess) -> None:
    host = urlsplit(server.url).netloc
    body = b'{"platform":"web"}'
    head = (
        f"POST /link-token HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        f"Authorization: Bearer {token({'sub': 'chunky'})}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunked = b"5;name=value\r\n" + body[:5] + b"\r\nD\r\n" + body[5:] + b"\r\n0\r\nx-t: 1\r\n\r\n"
    answer = raw_exchange(server, head + chunked)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert b"link-sandbox-" in answer
