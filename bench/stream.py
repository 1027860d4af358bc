"""Streaming throughput: raw httpx vs this project's client vs the official ``openai`` SDK.

One long streamed chat-completion reply (``--chunks`` SSE chunks, default 20,000, Mistral-shaped)
is served from a loopback HTTP/1.1 server and consumed by:

  (a) ``raw httpx``  -- ``client.stream(...)`` + ``iter_lines()`` + ``json.loads`` per ``data:`` line,
                        the floor for any Python client built on httpx;
  (b) ``ours``       -- ``mistral_magic.api.client.ChatClient().stream(endpoint, body)``;
  (c) ``openai SDK`` -- ``openai.OpenAI(base_url=..., max_retries=0).chat.completions.create(stream=True)``
                        (a bench-only dependency: ``pip install -e '.[bench]'``; skipped with a note
                        when ``openai`` is not importable).

The server runs in a separate process (this script re-run with ``--serve``), answers
``POST /v1/chat/completions`` with one response built once up front (status line, headers with
``Content-Length``, body) sent in large writes on a keep-alive connection, so the server costs the
same for every consumer and the client-side parsing dominates. It binds 127.0.0.1 only.

Each consumer keeps one client (and so one pooled connection) across rounds. After one warm-up
request per consumer, the consumers are timed interleaved, round-robin (a, b, c, a, b, c, ...) for
``--rounds`` rounds, so drift in machine load hits all of them alike. Every round checks that each
consumer received the full text; a mismatch aborts the run with an error.

Per consumer the table shows the median wall time of the whole request (``time.perf_counter``
around request + full consumption), the median process CPU time (``time.process_time``; only the
client runs in this process), the ratio to raw httpx (median of the per-round paired ratios
consumer/raw, which is robust to drift between rounds), and chunks per second at the median wall
time. The last line compares ours to raw httpx against the 1.10x target and prints PASS or MISS;
the exit status is 0 either way (this is a measurement, not a test).

Usage::

    python bench/stream.py                    # 7 rounds x 20,000 chunks, table
    python bench/stream.py --rounds 15 --chunks 50000
    python bench/stream.py --json             # one JSON object on stdout (for the README)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"  # loopback only, never any other address
PATH = "/v1/chat/completions"
MODEL = "mistral-small-latest"
TOKEN = "tok "
API_KEY = "bench-key"
TARGET = 1.10
WRITE_SIZE = 1 << 20  # bytes per socket write when sending the prebuilt response

# Keep every client on loopback even if the environment configures an HTTP proxy.
for _name in ("NO_PROXY", "no_proxy"):
    _hosts = [h for h in os.environ.get(_name, "").split(",") if h]
    os.environ[_name] = ",".join(_hosts + ["127.0.0.1", "localhost"])


# --------------------------------------------------------------------------- server (--serve)


def build_sse_body(chunks: int) -> bytes:
    """``chunks`` content chunks, a final chunk with finish_reason "stop" and usage, then [DONE]."""
    created = 1_700_000_000
    head = (
        '{"id":"cmpl-bench0000000000000000000000","object":"chat.completion.chunk",'
        f'"created":{created},"model":"{MODEL}","choices":[{{"index":0,"delta":'
    )
    piece = f'data: {head}{{"content":{json.dumps(TOKEN)}}},"finish_reason":null,"logprobs":null}}]}}\n\n'
    final = {
        "id": "cmpl-bench0000000000000000000000",
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": chunks + 12},
    }
    tail = f"data: {json.dumps(final, separators=(',', ':'))}\n\ndata: [DONE]\n\n"
    return (piece * chunks + tail).encode("utf-8")


def build_response(chunks: int) -> bytes:
    body = build_sse_body(chunks)
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/event-stream; charset=utf-8\r\n"
        "Cache-Control: no-cache\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: keep-alive\r\n"
        "\r\n"
    ).encode("ascii")
    return head + body


def serve(chunks: int) -> None:
    """Run the loopback server; print its port on stdout; exit when stdin closes."""
    response = memoryview(build_response(chunks))
    not_found = (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
        b'Content-Length: 23\r\n\r\n{"detail":"Not Found"}\n'
    )

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path.split("?", 1)[0] != PATH:
                self.wfile.write(not_found)
                return
            send = self.connection.sendall
            for start in range(0, len(response), WRITE_SIZE):
                send(response[start : start + WRITE_SIZE])

        def log_message(self, format: str, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server((HOST, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # the parent closes our stdin (or dies) when it is done
    os._exit(0)


class ServerProcess:
    """This script re-run with ``--serve`` in a child process, so its CPU is not counted here."""

    def __init__(self, chunks: int):
        self._proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", "--chunks", str(chunks)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._proc.stdout.readline().strip()
        if not line.isdigit():
            self.close()
            raise SystemExit(f"bench server failed to start (said {line!r})")
        self.base = f"http://{HOST}:{int(line)}"

    def close(self) -> None:
        proc = self._proc
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- consumers

REQUEST_BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say tok, many times."}]}


def make_raw(base: str) -> tuple[Callable[[], str], Callable[[], None]]:
    import httpx

    client = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
    url = base + PATH
    body = {**REQUEST_BODY, "stream": True}
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "text/event-stream"}
    loads = json.loads

    def run() -> str:
        parts: list[str] = []
        with client.stream("POST", url, json=body, headers=headers) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    obj = loads(line[6:])
                    text = obj["choices"][0]["delta"].get("content")
                    if text:
                        parts.append(text)
        return "".join(parts)

    return run, client.close


def make_ours(base: str) -> tuple[Callable[[], str], Callable[[], None]]:
    from mistral_magic.api.client import ChatClient
    from mistral_magic.api.protocol import Endpoint
    from mistral_magic.secret import Secret

    client = ChatClient()
    endpoint = Endpoint(base_url=base + "/v1", api_key=Secret(API_KEY))
    body = dict(REQUEST_BODY)

    def run() -> str:
        parts: list[str] = []
        for delta in client.stream(endpoint, body):
            parts.append(delta)
        return "".join(parts)

    return run, client.close


def make_openai(base: str) -> tuple[Callable[[], str], Callable[[], None]]:
    import openai

    client = openai.OpenAI(base_url=base + "/v1", api_key=API_KEY, max_retries=0)

    def run() -> str:
        parts: list[str] = []
        stream = client.chat.completions.create(
            model=REQUEST_BODY["model"], messages=REQUEST_BODY["messages"], stream=True
        )
        for ev in stream:
            if ev.choices:
                text = ev.choices[0].delta.content
                if text:
                    parts.append(text)
        return "".join(parts)

    return run, client.close


# --------------------------------------------------------------------------- measurement


def measure(run: Callable[[], str]) -> tuple[float, float, str]:
    """(wall s, process CPU s, text) of one full request."""
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    text = run()
    t1 = time.perf_counter()
    c1 = time.process_time()
    return t1 - t0, c1 - c0, text


def check(name: str, text: str, expected: str, round_no: int) -> None:
    if text != expected:
        where = next((i for i, (a, b) in enumerate(zip(text, expected)) if a != b), min(len(text), len(expected)))
        raise SystemExit(
            f"FAIL: {name} received the wrong text in round {round_no}: {len(text)} characters "
            f"instead of {len(expected)}, first difference at offset {where}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--chunks", type=int, default=20000, help="content chunks per reply (default 20000)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.chunks < 1:
        parser.error("--rounds and --chunks must be at least 1")
    if args.serve:
        serve(args.chunks)
        return 0

    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    expected = TOKEN * args.chunks

    consumers: list[tuple[str, Callable[[str], tuple]]] = [("raw httpx", make_raw), ("ours", make_ours)]
    skipped: dict[str, str] = {}
    try:
        import openai
    except ImportError as exc:
        skipped["openai SDK"] = f"openai is not importable ({exc}); install it with: pip install -e '.[bench]'"
    else:
        consumers.append(("openai SDK", make_openai))

    server = ServerProcess(args.chunks)
    runners: dict[str, Callable[[], str]] = {}
    closers: list[Callable[[], None]] = []
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    try:
        for name, factory in consumers:
            run, close = factory(server.base)
            runners[name] = run
            closers.append(close)
            wall[name], cpu[name] = [], []
        for name, run in runners.items():  # warm-up: connect, import lazily-loaded code, fill caches
            check(name, measure(run)[2], expected, 0)
        for round_no in range(1, args.rounds + 1):
            for name, run in runners.items():
                w, c, text = measure(run)
                check(name, text, expected, round_no)
                wall[name].append(w)
                cpu[name].append(c)
    finally:
        for close in closers:
            close()
        server.close()

    raw = wall["raw httpx"]
    results = {}
    for name in runners:
        ratios = [w / r for w, r in zip(wall[name], raw)]
        med = statistics.median(wall[name])
        results[name] = {
            "wall_ms_median": round(med * 1e3, 2),
            "cpu_ms_median": round(statistics.median(cpu[name]) * 1e3, 2),
            "ratio_vs_raw": round(statistics.median(ratios), 3),
            "ratio_of_medians": round(med / statistics.median(raw), 3),
            "chunks_per_s": round(args.chunks / med),
            "wall_ms": [round(w * 1e3, 2) for w in wall[name]],
        }
    ours_ratio = results["ours"]["ratio_vs_raw"]
    verdict = "PASS" if ours_ratio <= TARGET else "MISS"

    if args.json:
        import httpx

        for name, why in skipped.items():
            say(f"{name}: skipped: {why}")

        try:
            import openai

            openai_version = openai.__version__
        except ImportError:
            openai_version = None
        print(
            json.dumps(
                {
                    "bench": "stream",
                    "chunks": args.chunks,
                    "rounds": args.rounds,
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "httpx": httpx.__version__,
                    "openai": openai_version,
                    "consumers": results,
                    "skipped": skipped,
                    "ours_vs_raw": ours_ratio,
                    "target": TARGET,
                    "verdict": verdict,
                }
            )
        )
        return 0

    say(
        f"stream bench: {args.chunks} chunks x {args.rounds} rounds (interleaved, after 1 warm-up each), "
        f"Python {platform.python_version()}"
    )
    header = ("consumer", "wall ms (median)", "CPU ms (median)", "x raw httpx", "chunks/s")
    rows = [
        (
            name,
            f"{r['wall_ms_median']:.1f}",
            f"{r['cpu_ms_median']:.1f}",
            f"{r['ratio_vs_raw']:.2f}x",
            f"{r['chunks_per_s']:,}",
        )
        for name, r in results.items()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        say("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    for name, why in skipped.items():
        say(f"{name}: skipped: {why}")
    say(f"ours/raw = {ours_ratio:.2f}x (target <= {TARGET:.2f}x): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
