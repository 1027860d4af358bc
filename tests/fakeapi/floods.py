"""Oversized replies (issue 11 item 9): a huge event, a line that never ends, a gzip bomb.

:class:`Flood` says what to send; :func:`flood_body` makes the body piece by piece (compressed
when asked), so the server never holds more than a block of it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

BLOCK = 1 << 20
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


@dataclass
class Flood:
    """An oversized 200 body: ``head``, then ``piece`` repeated until ``size`` bytes of repeats
    were written (``None``: until the client hangs up), then ``tail``.

    With ``gzip`` the body is sent gzip-compressed (``Content-Encoding: gzip``) whatever the client
    accepts, repeats compressed 1 MiB at a time: 1 GiB of a repetitive piece is about 1 MB on the wire.
    """

    piece: bytes
    size: int | None = None
    head: bytes = b""
    tail: bytes = b""
    gzip: bool = False
    content_type: str = "text/event-stream"

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Encoding": "gzip"} if self.gzip else {}


def _repeats(flood: Flood, block: bytes) -> Iterator[bytes]:
    """``block`` until ``flood.size`` bytes were given (the last one cut to fit), or forever."""
    left = flood.size
    while left is None or left > 0:
        piece = block if left is None or left >= len(block) else block[:left]
        if left is not None:
            left -= len(piece)
        yield piece


def flood_body(flood: Flood) -> Iterator[bytes]:
    """The body of ``flood``, as the pieces to write."""
    if not flood.gzip:
        yield flood.head
        yield from _repeats(flood, flood.piece)
        yield flood.tail
        return
    # Raw deflate with a full flush after each part: the compressed form of a 1 MiB block is then
    # the same every time, so it is computed once; the gzip header and trailer are written by hand.
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    yield _GZIP_HEADER
    yield compressor.compress(flood.head) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc, length = zlib.crc32(flood.head), len(flood.head)
    packed: dict[int, bytes] = {}
    for piece in _repeats(flood, flood.piece * max(1, BLOCK // len(flood.piece))):
        if len(piece) not in packed:
            packed[len(piece)] = compressor.compress(piece) + compressor.flush(zlib.Z_FULL_FLUSH)
        yield packed[len(piece)]
        crc, length = zlib.crc32(piece, crc), length + len(piece)
    yield compressor.compress(flood.tail) + compressor.flush()
    crc = zlib.crc32(flood.tail, crc)
    yield struct.pack("<II", crc, (length + len(flood.tail)) & 0xFFFFFFFF)
