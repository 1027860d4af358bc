"""Benchmark: the live widget view against re-rendering the whole reply.

A ~16 KB markdown reply (headings, tables, highlighted code, lists, inline and display math) is
fed to the widget renderer in 4,000 chunks at a simulated 400 chunks per second (a simulated clock: no sleeping). For each approach
it prints kernel CPU seconds and the bytes of widget messages sent (the JSON content of every
comm message: opens, updates, closes), each as a ratio to the baseline measured in the same run:
rendering the final reply once and sending its HTML once. The naive approaches re-render the
whole reply into one HTML widget on every chunk, and on every 40th chunk.

    python bench/render.py            # everything (the naive per-chunk run takes ~1 minute)
    python bench/render.py --quick    # skip the naive per-chunk run
    python bench/render.py --json     # one JSON object on stdout

Target: the live view at most 3x CPU and 3x bytes of the one-shot render, at least 10 updates/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import comm
from comm.base_comm import BaseComm

CHUNKS = 4000
RATE = 400.0


class CountingComm(BaseComm):
    """A comm that sends nothing and counts the bytes it would have sent."""

    sent_bytes = 0
    messages = 0

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        CountingComm.sent_bytes += len(json.dumps({"data": data, "metadata": metadata or {}}, separators=(",", ":")))
        CountingComm.messages += 1


comm.create_comm = lambda **kwargs: CountingComm(**kwargs)

import ipywidgets  # noqa: E402

from mistral_magic.provenance import Provenance  # noqa: E402
from mistral_magic.render.base import ReplyInfo  # noqa: E402
from mistral_magic.render.html import MarkdownRenderer  # noqa: E402
from mistral_magic.render.widget import WidgetRenderer  # noqa: E402


def sample_reply(target: int = 16_000) -> str:
    """A deterministic markdown reply of about ``target`` characters, shaped like a long answer:
    sections with headings and paragraphs, lists, code blocks, and one table."""
    sentences = [
        "The loader reads each file once and keeps only the columns the report needs.",
        "A **cache** in front of the parser avoids parsing the same header twice.",
        "Errors are collected per row, so one bad line never stops the whole run.",
        "Use `chunksize` to bound memory when the input is larger than the machine.",
        "The [reference guide](https://example.org/guide) lists every option with its default.",
        "Timings below were taken on a laptop; *your numbers will differ*.",
        "With $n_i$ rows per file the total is \\(\\sum_i n_i * c\\) for a cost $c$ per row.",
    ]
    parts: list[str] = ["# Processing large CSV files", " ".join(sentences[:4])]
    section = 0
    while sum(map(len, parts)) < target:
        section += 1
        parts.append(f"## {section}. Step {section}")
        for paragraph in range(2):
            start = (section + paragraph) % len(sentences)
            parts.append(" ".join((sentences * 2)[start : start + 4]))
        parts.append("\n".join(f"- option {j}: keep *step {section}* small and measurable" for j in range(1, 5)))
        parts.append(f"$$\\frac{{1}}{{{section}}} \\sum_{{j=1}}^{{{section}}} t_j^2$$")
        parts.append(
            "```python\n"
            + "\n".join(
                f"def step_{section}_{j}(frame):\n    return frame.assign(col_{j}=frame.x * {j})" for j in range(1, 5)
            )
            + "\n```"
        )
        if section == 3:
            parts.append(
                "| step | rows/s | memory |\n|:--|--:|--:|\n"
                + "\n".join(f"| step {j} | {j * 12_500:,} | {j * 40} MB |" for j in range(1, 9))
            )
    parts.append("In short: measure first, then optimise the slowest step.")
    return "\n\n".join(parts)


def split_chunks(text: str, count: int) -> list[str]:
    size = len(text) / count
    return [text[round(i * size) : round((i + 1) * size)] for i in range(count)]


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def measure(run) -> tuple[float, int, int]:
    """CPU seconds, bytes sent and updates of one run."""
    CountingComm.sent_bytes = 0
    started = time.process_time()
    updates = run()
    cpu = time.process_time() - started
    return cpu, CountingComm.sent_bytes, updates


def one_shot(text: str, chunks: list[str]):
    def run() -> int:
        html = MarkdownRenderer().render(text)
        ipywidgets.HTML(value=html)
        return 1

    return run


def naive(text: str, chunks: list[str], every: int):
    def run() -> int:
        renderer = MarkdownRenderer()
        widget = ipywidgets.HTML()
        so_far = ""
        updates = 0
        for index, chunk in enumerate(chunks, 1):
            so_far += chunk
            if index % every == 0 or index == len(chunks):
                widget.value = renderer.render(so_far)
                updates += 1
        widget.close()
        return updates

    return run


FINISHED = Provenance(
    "live", "mistral-small-latest", "mistral-small-latest", "127.0.0.1", "0" * 64, "", finish_reason="stop"
)


def live_view(text: str, chunks: list[str]):
    def run() -> int:
        clock = SimulatedClock()
        renderer = WidgetRenderer(lambda widget: None, lambda bundle, metadata=None: None, lambda: None, clock=clock)
        renderer.start(ReplyInfo(model="mistral-small-latest", chat="default"))
        for chunk in chunks:
            clock.now += 1 / RATE
            renderer.feed(chunk)
        final_text = renderer.text
        renderer.finish(final_text, FINISHED)
        assert final_text == text, "the live view lost text"
        return renderer.updates

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the naive per-chunk baseline")
    parser.add_argument("--repeat", type=int, default=5, help="runs of the fast approaches (median)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    text = sample_reply()
    chunks = split_chunks(text, CHUNKS)
    seconds = CHUNKS / RATE
    approaches = {
        "one-shot (baseline)": one_shot(text, chunks),
        "live view (ours)": live_view(text, chunks),
        "naive every 40 chunks": naive(text, chunks, 40),
    }
    results = {}
    for _ in range(args.repeat):  # interleaved, so drift hits every approach alike
        for name, run in approaches.items():
            results.setdefault(name, []).append(measure(run))
    if not args.quick:
        results["naive every chunk"] = [measure(naive(text, chunks, 1))]

    base_cpu = statistics.median(r[0] for r in results["one-shot (baseline)"])
    base_bytes = results["one-shot (baseline)"][0][1]
    table = {}
    for name, runs in results.items():
        cpu = statistics.median(r[0] for r in runs)
        sent = runs[0][1]
        updates = runs[0][2]
        per_second = updates / seconds if name != "one-shot (baseline)" else None
        table[name] = {
            "cpu_s": cpu,
            "bytes": sent,
            "cpu_ratio": cpu / base_cpu,
            "bytes_ratio": sent / base_bytes,
            "updates_per_s": per_second,
        }
    ours = table["live view (ours)"]
    verdict = ours["cpu_ratio"] <= 3 and ours["bytes_ratio"] <= 3 and ours["updates_per_s"] >= 10
    if args.json:
        print(json.dumps({"reply_chars": len(text), "chunks": CHUNKS, "results": table, "pass": verdict}, indent=1))
        return
    print(f"render bench: {len(text):,} chars in {CHUNKS:,} chunks at {RATE:.0f} chunks/s (simulated {seconds:.0f} s)")
    print(f"{'approach':24}{'CPU s':>9}{'x one-shot':>12}{'bytes':>12}{'x one-shot':>12}{'updates/s':>11}")
    for name, row in table.items():
        rate = "" if row["updates_per_s"] is None else f"{row['updates_per_s']:.1f}"
        print(
            f"{name:24}{row['cpu_s']:9.3f}{row['cpu_ratio']:11.1f}x{row['bytes']:12,}{row['bytes_ratio']:11.1f}x{rate:>11}"
        )
    print(
        f"live view: {ours['cpu_ratio']:.2f}x CPU, {ours['bytes_ratio']:.2f}x bytes, {ours['updates_per_s']:.1f} updates/s "
        f"(target <= 3x, <= 3x, >= 10): {'PASS' if verdict else 'MISS'}"
    )


if __name__ == "__main__":
    main()
