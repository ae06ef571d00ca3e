"""Plaid answers that a front end compressed: read decoded, bounded after decoding.

Over real sockets: the loopback stand-in compresses when asked to, as Plaid's front end or a
corporate proxy does for a client that sends `Accept-Encoding: gzip, deflate`.
"""

from __future__ import annotations

import gzip
import itertools
import json
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from infra.doubles.plaid_standin import PlaidStandIn, Scripted, plaid_error
from linktoken.answer_body import AnswerTooLarge, UnreadableEncoding, read_answer
from linktoken.plaid_client import MAX_ANSWER_BYTES, PlaidCallError, PlaidClient, RetryPolicy
from tests.conftest import CLIENT_ID, SECRET, body_of, make_event
from tests.helpers_plaid import BODY, CREDENTIALS, raw_answer_server

TOKEN = {"link_token": "link-sandbox-trailing", "expiration": "2026-11-25T18:00:00Z"}
TOKEN_JSON = json.dumps(TOKEN).encode()
TRAILING = "cannot read: data follows the end of the compressed answer"


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
    secrets = invoke.container.service.secrets
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
        # The cause names why the answer cannot be read.
        (
            gzip.compress(b'{"link_token": "x"}')[:-12],
            "gzip",
            "cannot read: the compressed answer ends before its end marker",
        ),
        (b'{"link_token": "x"}', "br", "cannot read: the answer is encoded as 'br'"),
        (b"\x00garbage", "deflate", "cannot read: the compressed answer is corrupt"),
        (gzip.compress(TOKEN_JSON) + gzip.compress(b"{}"), "gzip", TRAILING),
        (gzip.compress(TOKEN_JSON) + b"\n", "gzip", TRAILING),
        (zlib.compress(TOKEN_JSON) + b"\x00", "deflate", TRAILING),
    ],
    ids=[
        "bomb",
        "truncated",
        "unknown-encoding",
        "corrupt",
        "second-gzip-member",
        "gzip-then-a-byte",
        "deflate-then-a-byte",
    ],
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


# --- what follows the end of a compressed answer, and answers that never end ----------------


class Body:
    """A body served from `pieces` (then, if `endless`, from `endless` forever), one read1 at a
    time, as urllib3 would; counts the bytes handed out."""

    def __init__(self, pieces: Iterable[bytes], endless: bytes = b"") -> None:
        self._pieces = itertools.chain(pieces, itertools.repeat(endless) if endless else ())
        self._pending = b""
        self.bytes_read = 0

    def read1(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        assert decode_content is False  # compressed bytes, as sent
        assert amt is not None and amt > 0
        if not self._pending:
            self._pending = next(self._pieces, b"")
        chunk, self._pending = self._pending[:amt], self._pending[amt:]
        self.bytes_read += len(chunk)
        return chunk


def read(body: Body, encoding: str) -> bytes:
    return read_answer(body, encoding, MAX_ANSWER_BYTES, time.monotonic() + 60)


def raw_deflate(data: bytes) -> bytes:
    squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return squeeze.compress(data) + squeeze.flush()


@pytest.mark.parametrize(
    ("stream", "encoding"),
    [
        (gzip.compress(TOKEN_JSON), "gzip"),
        (zlib.compress(TOKEN_JSON), "deflate"),
        (raw_deflate(TOKEN_JSON), "deflate"),
    ],
    ids=["gzip", "deflate", "raw-deflate"],
)
@pytest.mark.parametrize(
    "after",
    [
        pytest.param(lambda stream: [stream + b"x"], id="in-the-same-read"),
        pytest.param(lambda stream: [stream, b"x"], id="in-a-later-read"),
        pytest.param(lambda stream: [stream, gzip.compress(b"{}")], id="a-second-gzip-member"),
    ],
)
def test_any_byte_after_the_end_marker_is_unreadable(
    stream: bytes, encoding: str, after: Any
) -> None:
    assert read(Body([stream]), encoding) == TOKEN_JSON  # the stream alone is a good answer

    with pytest.raises(
        UnreadableEncoding, match=r"^data follows the end of the compressed answer$"
    ):
        read(Body(after(stream)), encoding)


def test_megabytes_after_the_end_marker_are_not_read_nor_buffered() -> None:
    """16 MiB after a good gzip member: refused at the first byte past the marker, not fed to
    zlib (which appended it to `unused_data`, copying it again on every read: seconds)."""
    stream = gzip.compress(TOKEN_JSON)
    body = Body([stream], endless=b"\x00" * 16_384)  # endless: "16 MiB" or more
    started = time.monotonic()

    with pytest.raises(
        UnreadableEncoding, match=r"^data follows the end of the compressed answer$"
    ):
        read(body, "gzip")

    assert body.bytes_read <= len(stream) + 16_384  # one read past the marker, at most
    assert time.monotonic() - started < 5.0  # milliseconds; generous for a loaded machine


# Streams that never end and decode to nothing: a gzip or zlib header, then empty stored deflate
# blocks (5 bytes each, no output) forever; or a body that is not compressed at all.
GZIP_HEADER = gzip.compress(b"")[:10]
ZLIB_HEADER = zlib.compress(b"")[:2]
EMPTY_STORED_BLOCKS = b"\x00\x00\x00\xff\xff" * 3277


@pytest.mark.parametrize(
    ("pieces", "endless", "encoding"),
    [
        ([GZIP_HEADER], EMPTY_STORED_BLOCKS, "gzip"),
        ([ZLIB_HEADER], EMPTY_STORED_BLOCKS, "deflate"),
        ([], b" " * 16_384, "identity"),
    ],
    ids=["gzip-empty-blocks", "deflate-empty-blocks", "identity"],
)
def test_an_endless_body_stops_at_the_bound_on_bytes_read(
    pieces: list[bytes], endless: bytes, encoding: str
) -> None:
    body = Body(pieces, endless)
    started = time.monotonic()

    with pytest.raises(AnswerTooLarge):
        read(body, encoding)

    assert MAX_ANSWER_BYTES < body.bytes_read <= 256 * 1024 + 1  # the bound, on the wire too
    assert time.monotonic() - started < 5.0


def test_sixteen_mib_after_a_gzip_answer_fail_fast_over_a_socket() -> None:
    stream = gzip.compress(TOKEN_JSON)
    trailing = 16 * 1024 * 1024
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % (len(stream) + trailing)
    )
    with raw_answer_server(
        itertools.chain([head + stream], itertools.repeat(b"\x00" * 65536, trailing // 65536))
    ) as url:
        client = PlaidClient(url, RetryPolicy(), sleep=lambda _s: None)
        started = time.monotonic()
        with pytest.raises(PlaidCallError) as failed:
            client.create_link_token(BODY, CREDENTIALS, plenty)
        elapsed = time.monotonic() - started

    assert failed.value.error.rule.problem_code == "UPSTREAM_REJECTED"
    assert failed.value.error.http_status == 200
    assert TRAILING in failed.value.cause
    assert failed.value.attempts == 1
    assert elapsed < 5.0  # milliseconds with the fix; seconds when zlib buffered it all


def test_an_endless_chunked_body_is_cut_at_the_bound_over_a_socket() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    with raw_answer_server(itertools.chain([head], itertools.repeat(chunk))) as url:
        client = PlaidClient(url, RetryPolicy(), sleep=lambda _s: None)
        started = time.monotonic()
        with pytest.raises(PlaidCallError) as failed:
            client.create_link_token(BODY, CREDENTIALS, plenty)
        elapsed = time.monotonic() - started

    assert "larger than any link token" in failed.value.cause
    assert failed.value.attempts == 1
    assert elapsed < 5.0  # well before the 8 s attempt deadline
