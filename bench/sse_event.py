"""Benchmark: one huge SSE event (default 80 MB) fed to the SSE decoder in 64 KiB network pieces.

Compared in the same run with the least work any decoder must do (join the bytes once, decode,
split the lines) and with the naive buffer the decoder used to have (``line += piece``, which
copies the whole line on every piece: quadratic time). The decoder holds the unfinished line as a
list of pieces joined once, so it should stay within a small factor of the floor at any size.

    python bench/sse_event.py              # 80 MB
    python bench/sse_event.py --mb 20      # quicker
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mistral_magic.api.sse import SSEDecoder  # noqa: E402

PIECE = 64 * 1024


def pieces(megabytes: float) -> list[bytes]:
    body = b"x" * PIECE
    count = int(megabytes * 1_000_000) // PIECE
    return [b"data: "] + [body] * count + [b"\n\n"]


def decoder(chunks: list[bytes]) -> int:
    events: list[str] = []
    sse = SSEDecoder()
    for chunk in chunks:
        events += sse.feed(chunk)
    return len(events[0])


def floor(chunks: list[bytes]) -> int:
    lines = b"".join(chunks).decode("utf-8").split("\n")
    return len(lines[0]) - len("data: ")


class _OldBuffer:
    partial_line = ""


def naive(chunks: list[bytes]) -> int:
    buffer = _OldBuffer()  # an attribute, as in the old decoder: CPython cannot grow it in place
    for chunk in chunks:
        text = chunk.decode("utf-8")
        if "\n" in text:
            return len((buffer.partial_line + text).split("\n")[0]) - len("data: ")
        buffer.partial_line += text  # a new string for every piece: the old buffer
    return len(buffer.partial_line) - len("data: ")


def timed(consumer, chunks: list[bytes]) -> tuple[float, int]:
    started = time.perf_counter()
    size = consumer(chunks)
    return time.perf_counter() - started, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=80.0, help="size of the event in MB (default 80)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    chunks = pieces(args.mb)
    results: dict[str, list[float]] = {"floor": [], "decoder": [], "naive": []}
    sizes = set()
    for _ in range(args.rounds):
        for name, consumer in (("floor", floor), ("decoder", decoder)):
            seconds, size = timed(consumer, chunks)
            results[name].append(seconds)
            sizes.add(size)
    seconds, size = timed(naive, chunks)  # once: it is slow
    results["naive"].append(seconds)
    sizes.add(size)
    if len(sizes) != 1:
        raise SystemExit(f"FAIL: the consumers disagree on the event size: {sorted(sizes)}")
    base = sorted(results["floor"])[len(results["floor"]) // 2]
    print(f"SSE event bench: one {args.mb:g} MB event in {len(chunks)} pieces of 64 KiB")
    for name, times in results.items():
        median = sorted(times)[len(times) // 2]
        print(f"{name:>8}: {median * 1000:9.1f} ms  {median / base:7.2f}x floor")


if __name__ == "__main__":
    main()
