"""Reading a response body within a size limit, decompressing it in bounded pieces.

httpx inflates each network read at once: 64 KiB of a gzip bomb becomes 64 MB in one call. Here
gzip and deflate are inflated at most :data:`PIECE` bytes at a time from the raw stream, and the
decoded size is counted as it grows, so a bomb or an endless body stops at the limit.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import httpx

ACCEPT_ENCODING = "gzip, deflate"  # what is decoded here in bounded pieces; sent with every request
PIECE = 64 * 1024


class BodyTooLarge(Exception):
    """The decoded body went over the limit."""

    def __init__(self, limit: int):
        super().__init__(f"the body is larger than {limit} bytes")
        self.limit = limit


class BodyNotDecodable(Exception):
    """The body does not decode with its Content-Encoding."""


def iter_body(response: httpx.Response, limit: int) -> Iterator[bytes]:
    """The decoded body in pieces; :class:`BodyTooLarge` as soon as more than ``limit`` bytes came."""
    total = 0
    for piece in _decoded(response):
        total += len(piece)
        if total > limit:
            raise BodyTooLarge(limit)
        yield piece


def read_body(response: httpx.Response, limit: int) -> bytes:
    """The whole decoded body (at most ``limit`` bytes, else :class:`BodyTooLarge`)."""
    return b"".join(iter_body(response, limit))


def _decoded(response: httpx.Response) -> Iterator[bytes]:
    if response.is_stream_consumed:  # read already (a response made from bytes): httpx has decoded it
        yield response.content
        return
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        yield from response.iter_raw()
    elif encoding in ("gzip", "x-gzip"):
        yield from _inflate(response.iter_raw(), zlib.MAX_WBITS | 16)
    elif encoding == "deflate":
        yield from _inflate(response.iter_raw(), zlib.MAX_WBITS, fallback=-zlib.MAX_WBITS)
    else:  # an encoding that was not asked for: httpx decodes it (the total is still capped)
        try:
            yield from response.iter_bytes()
        except httpx.DecodingError as exc:
            raise BodyNotDecodable(str(exc)) from None


def _inflate(raw: Iterator[bytes], wbits: int, fallback: int | None = None) -> Iterator[bytes]:
    """Inflate ``raw`` at most PIECE bytes at a time. ``fallback``: the wbits to retry with when
    the first bytes do not fit ``wbits`` (servers send "deflate" both zlib-wrapped and raw)."""
    decompressor = zlib.decompressobj(wbits)
    started = False
    try:
        for data in raw:
            while data and not decompressor.eof:
                try:
                    piece = decompressor.decompress(data, PIECE)
                except zlib.error:
                    if started or fallback is None:
                        raise
                    decompressor, fallback = zlib.decompressobj(fallback), None
                    continue
                started = True
                data = decompressor.unconsumed_tail
                if piece:
                    yield piece
        rest = decompressor.flush()
        if rest:
            yield rest
    except zlib.error as exc:
        raise BodyNotDecodable(f"the body is not valid {'gzip' if wbits & 16 else 'deflate'} data ({exc})") from None
