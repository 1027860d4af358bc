"""The large-run part of bench/annotate.py: 200,000 items against a zero-latency server.

A small asyncio HTTP/1.1 server (this file run with ``--serve``, in its own process, 127.0.0.1)
answers every POST at once with the same chat completion, so the client side dominates. Each
consumer runs in a fresh child process (this file with ``--consumer NAME``), so its peak RSS is
its own: the growth from just before the run (items already built) to the peak is reported, with
items per second. Consumers, in one run:

  pool       a plain ThreadPoolExecutor(16).map of httpx POSTs (one pooled httpx.Client), the floor
  ours       mistral_magic.annotate(..., workers=16, cache=False)
  ours+cache the same with the on-disk reply cache on (the default), every answer written to SQLite
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = "Label this review: {item}"
WORKERS = 16
CONSUMERS = ("pool", "ours", "ours+cache")

_BODY = json.dumps(
    {
        "id": "cmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "positive"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
    }
).encode()
_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(_BODY) + _BODY


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            writer.write(_RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def _serve() -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0, backlog=256)
    print(f"URL=http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _consume(name: str, url: str, count: int) -> dict:
    items = [f"review number {i}: it was fine" for i in range(count)]
    before = _rss_mib()
    started = time.perf_counter()
    if name == "pool":
        import httpx

        client = httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))
        headers = {"Authorization": "Bearer bench-key"}

        def ask(item: str) -> str:
            body = {"model": "bench", "messages": [{"role": "user", "content": TEMPLATE.format(item=item)}]}
            reply = client.post(f"{url}/v1/chat/completions", json=body, headers=headers)
            return reply.json()["choices"][0]["message"]["content"]

        with ThreadPoolExecutor(WORKERS) as pool:
            answers = list(pool.map(ask, items))
    else:
        import mistral_magic

        with contextlib.redirect_stdout(io.StringIO()):
            answers = mistral_magic.annotate(items, TEMPLATE, workers=WORKERS, cache=name == "ours+cache")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if sum(answer == "positive" for answer in answers) != count:
        raise SystemExit(f"FAIL: {name} did not answer every item")
    return {
        "consumer": name,
        "items": count,
        "seconds": seconds,
        "items_per_s": count / seconds,
        "rss_growth_mib": peak - before,
    }


def measure(count: int) -> list[dict]:
    """Run every consumer over ``count`` items in its own process; one dict per consumer."""
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().strip()
        if not line.startswith("URL="):
            raise SystemExit(f"the zero-latency server did not start: {line!r}")
        url = line[4:]
        env = dict(
            os.environ,
            MISTRAL_BASE_URL=url + "/v1",
            MISTRAL_API_KEY="bench-key",
            NO_PROXY="127.0.0.1",
            MISTRAL_MAGIC_CACHE_DIR=tempfile.mkdtemp(prefix="mistral-bench-scale-"),
        )
        rows = []
        for name in CONSUMERS:
            done = subprocess.run(
                [sys.executable, __file__, "--consumer", name, "--url", url, "--items", str(count)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            rows.append(json.loads(done.stdout))
        return rows
    finally:
        server.terminate()
        server.wait(5)


def report(rows: list[dict]) -> None:
    floor = rows[0]
    print(
        f"\nlarge run: {floor['items']:,} items, zero-latency server, {WORKERS} workers (each consumer in its own process)"
    )
    print(f"{'consumer':>11}{'items/s':>10}{'x pool':>8}{'RSS growth MiB':>16}{'bytes/item':>12}")
    for row in rows:
        per_item = row["rss_growth_mib"] * 2**20 / row["items"]
        print(
            f"{row['consumer']:>11}{row['items_per_s']:>10,.0f}{row['items_per_s'] / floor['items_per_s']:>7.2f}x"
            f"{row['rss_growth_mib']:>16.1f}{per_item:>12,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--consumer", choices=CONSUMERS)
    parser.add_argument("--url")
    parser.add_argument("--items", type=int, default=200_000)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve())
    elif args.consumer:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(_consume(args.consumer, args.url, args.items)))
    else:
        report(measure(args.items))


if __name__ == "__main__":
    main()
