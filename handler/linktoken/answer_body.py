"""Reading Plaid's answer body: bounded in time and in decoded size, decompressed if it is.

The session asks for `gzip, deflate` (what every HTTP client sends, so a front end treats this
service like any other) and reads the body itself, one socket read at a time, so that neither
a trickling answer nor a compression bomb can hold the invocation or its memory: the size
bound applies to the decoded bytes, and decompression never produces more than the bound.

The same bound applies to the bytes read (compressed, as sent): a link token answer is under
1 KiB, and a compressed encoding of JSON is smaller than the JSON, so only a body that is not a
link token answer reaches it; it stops an endless body that decodes to little or nothing
(empty deflate blocks, padding) long before the deadline. Compressed data ends with its end
marker: anything after it (a second gzip member, trailing bytes) makes the answer unreadable,
so nothing past the marker is ever buffered.
"""

import time
import zlib
from typing import Final, Protocol

ACCEPT_ENCODING: Final = "gzip, deflate"
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_ZLIB_WBITS: Final = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS: Final = -zlib.MAX_WBITS
_READ_SIZE: Final = 16_384


class AnswerDeadline(Exception):
    """The answer did not arrive whole before the attempt's deadline."""


class AnswerTooLarge(Exception):
    """The decoded answer is larger than the bound."""


class UnreadableEncoding(Exception):
    """The answer is compressed in a way this service does not read, or not validly; the
    message says how."""


_TRAILING: Final = "data follows the end of the compressed answer"


class RawBody(Protocol):
    """The part of urllib3's `HTTPResponse` this module uses."""

    def read1(self, amt: int | None = None, decode_content: bool | None = None) -> bytes: ...


class _Decoder:
    """Incremental gzip/deflate decoding that never yields more than `limit` bytes in all."""

    def __init__(self, wbits: int, limit: int) -> None:
        self._wbits = wbits
        self._inflate = zlib.decompressobj(wbits)
        self._left = limit
        self._started = False

    def feed(self, data: bytes) -> bytes:
        if self._inflate.eof:
            # zlib would keep appending it to `unused_data`: refuse it instead.
            raise UnreadableEncoding(_TRAILING)
        try:
            out = self._inflate.decompress(data, self._left + 1)
        except zlib.error:
            if self._started or self._wbits != _ZLIB_WBITS:
                raise UnreadableEncoding("the compressed answer is corrupt") from None
            # `deflate` is zlib-wrapped by the standard, raw by some servers: accept both.
            self._wbits = _RAW_DEFLATE_WBITS
            self._inflate = zlib.decompressobj(self._wbits)
            return self.feed(data)
        self._started = True
        if len(out) > self._left or self._inflate.unconsumed_tail:
            raise AnswerTooLarge
        if self._inflate.unused_data:  # a second gzip member is not read either
            raise UnreadableEncoding(_TRAILING)
        self._left -= len(out)
        return out

    def finish(self) -> None:
        if not self._inflate.eof:
            raise UnreadableEncoding("the compressed answer ends before its end marker")


class _Identity:
    def __init__(self, limit: int) -> None:
        self._left = limit

    def feed(self, data: bytes) -> bytes:
        if len(data) > self._left:
            raise AnswerTooLarge
        self._left -= len(data)
        return data

    def finish(self) -> None:
        pass


# Content-Encoding -> wbits for zlib (None: not compressed).
_ENCODINGS: Final[dict[str, int | None]] = {
    "": None,
    "identity": None,
    "gzip": _GZIP_WBITS,
    "x-gzip": _GZIP_WBITS,
    "deflate": _ZLIB_WBITS,
}


def decoder_for(content_encoding: str | None, limit: int) -> _Decoder | _Identity:
    """The decoder for a Content-Encoding header value; raises `UnreadableEncoding`."""
    name = (content_encoding or "").strip().lower()
    if name not in _ENCODINGS:
        raise UnreadableEncoding(f"the answer is encoded as {name[:40]!r}")
    wbits = _ENCODINGS[name]
    return _Identity(limit) if wbits is None else _Decoder(wbits, limit)


def read_answer(
    raw: RawBody,
    content_encoding: str | None,
    limit: int,
    deadline: float,
) -> bytes:
    """The whole decoded body, read against `deadline` (time.monotonic()); reading stops as
    soon as more than `limit` bytes were read or decoded.

    Raises `AnswerDeadline`, `AnswerTooLarge` or `UnreadableEncoding`.
    """
    decoder = decoder_for(content_encoding, limit)
    chunks: list[bytes] = []
    unread = limit  # bytes still allowed off the wire
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AnswerDeadline
        # One socket read, as sent; one byte more than allowed tells "too large" from "ends here".
        chunk = raw.read1(min(_READ_SIZE, unread + 1), decode_content=False)
        if not chunk:
            decoder.finish()
            return b"".join(chunks)
        if len(chunk) > unread:
            raise AnswerTooLarge
        unread -= len(chunk)
        chunks.append(decoder.feed(chunk))
