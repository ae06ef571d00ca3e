"""Plaid answers that a front end compressed: read decoded, bounded after decoding.

Over real sockets: the loopback stand-in compresses when asked to, as Plaid's front end or a
corporate proxy does for a client that sends `Accept-Encoding: gzip, deflate`.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import CLIENT_ID, SECRET, body_of, make_event
from plaid_standin import PlaidStandIn, Scripted, plaid_error
from test_plaid_client import BODY, CREDENTIALS

from linktoken.plaid_client import MAX_ANSWER_BYTES, PlaidCallError, PlaidClient, RetryPolicy


def client_for(standin: PlaidStandIn) -> PlaidClient:
    return PlaidClient(standin.base_url, RetryPolicy(), sleep=lambda _s: None)


def plenty() -> float:
    return 20.0


@pytest.fixture(params=["gzip", "deflate"])
def compressing(request: pytest.FixtureRequest) -> Iterator[PlaidStandIn]:
    with PlaidStandIn(client_id=CLIENT_ID, secret=SECRET, compress=request.param) as standin:
        yield standin


def test_a_compressed_link_token_is_read(compressing: PlaidStandIn) -> None:
    token = client_for(compressing).create_link_token(BODY, CREDENTIALS, plenty)

    assert token.link_token.startswith("link-sandbox-")
    sent = compressing.requests[0]["headers"]
    assert sent["Accept-Encoding"] == "gzip, deflate"  # only what the client can decode


def test_a_compressed_plaid_error_keeps_its_error_code(compressing: PlaidStandIn) -> None:
    compressing.script(
        plaid_error(400, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret")
    )
    with pytest.raises(PlaidCallError) as failed:
        client_for(compressing).create_link_token(BODY, CREDENTIALS, plenty)

    assert failed.value.error.error_code == "INVALID_API_KEYS"
    assert failed.value.error.rule.refresh_secret  # so the rotation re-read can happen


def test_compressed_answers_keep_the_connection(compressing: PlaidStandIn) -> None:
    client = client_for(compressing)
    for _ in range(3):
        client.create_link_token(BODY, CREDENTIALS, plenty)

    assert compressing.connections == 1


def test_a_compressed_invalid_api_keys_answer_triggers_one_secret_re_read(
    invoke: Any, plaid: PlaidStandIn, aws: Any
) -> None:
    plaid.compress = "gzip"
    plaid.script(
        plaid_error(400, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret")
    )
    secrets = invoke.runtime.service.secrets
    reads = secrets.reads

    response = invoke(make_event({"platform": "web"}))

    assert secrets.reads == reads + 2  # the cold read, then exactly one forced re-read
    assert body_of(response)["plaid_error_code"] == "INVALID_API_KEYS"


def scripted(status: int, payload: bytes, encoding: str) -> Scripted:
    return Scripted(status, payload, {"Content-Encoding": encoding})


def test_raw_deflate_is_read_too() -> None:
    token = {"link_token": "link-sandbox-raw", "expiration": "2026-11-25T18:00:00Z"}
    squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = squeeze.compress(json.dumps(token).encode()) + squeeze.flush()
    with PlaidStandIn(client_id=CLIENT_ID, secret=SECRET) as standin:
        standin.script(scripted(200, raw, "deflate"))
        result = client_for(standin).create_link_token(BODY, CREDENTIALS, plenty)

    assert result.link_token == "link-sandbox-raw"


@pytest.mark.parametrize(
    ("payload", "encoding", "cause"),
    [
        # 64 KiB on the wire, 64 MiB decoded: stopped at the bound, not after inflating it all.
        (gzip.compress(b" " * (64 * 1024 * 1024)), "gzip", "larger than any link token"),
        (gzip.compress(b'{"link_token": "x"}')[:-12], "gzip", "cannot read"),
        (b'{"link_token": "x"}', "br", "cannot read"),
        (b"\x00garbage", "deflate", "cannot read"),
    ],
    ids=["bomb", "truncated", "unknown-encoding", "corrupt"],
)
def test_unusable_compressed_answers_fail_once_as_rejected(
    payload: bytes, encoding: str, cause: str
) -> None:
    with PlaidStandIn(client_id=CLIENT_ID, secret=SECRET) as standin:
        standin.script(scripted(200, payload, encoding))
        with pytest.raises(PlaidCallError) as failed:
            client_for(standin).create_link_token(BODY, CREDENTIALS, plenty)

        assert failed.value.error.rule.problem_code == "UPSTREAM_REJECTED"
        assert cause in failed.value.cause
        assert failed.value.attempts == 1
        assert len(standin.requests) == 1


def test_the_size_bound_applies_to_decoded_bytes() -> None:
    just_over = {"link_token": "x" * MAX_ANSWER_BYTES, "expiration": "2026-11-25T18:00:00Z"}
    payload = gzip.compress(json.dumps(just_over).encode())
    assert len(payload) < MAX_ANSWER_BYTES // 100  # small on the wire
    with PlaidStandIn(client_id=CLIENT_ID, secret=SECRET) as standin:
        standin.script(scripted(200, payload, "gzip"))
        with pytest.raises(PlaidCallError) as failed:
            client_for(standin).create_link_token(BODY, CREDENTIALS, plenty)

    assert "larger than any link token" in failed.value.cause
