"""Benchmark: rendering a 279 KB one-line JSON reply (what ``--json`` and ``--schema`` answers look
like) against rendering plain prose of the same size, measured in the same run.

A compact JSON answer is one paragraph with thousands of ``:`` and ``@`` and no token between them;
the GFM autolink rules of mdit-py-plugins read the rest of the paragraph at each of them, which
made its rendering quadratic (139 KB: 16 s, 279 KB: 70 s). Our rules (render/autolink.py) read only
what a link can span. Also printed: the same JSON at twice the size (linear: about 2x), and with
``--upstream`` the plugin's own rules on the same JSON, once (slow: a minute or more).

    python bench/render_json.py              # 279 KB, 5 interleaved rounds
    python bench/render_json.py --upstream   # and the plugin's own rules, once
    python bench/render_json.py --json       # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mistral_magic.render.html import render_markdown, sanitize  # noqa: E402

SIZE = 279_000


def json_reply(size: int) -> str:
    """A compact one-line JSON list of ``--schema``-like answers, about ``size`` characters."""
    rows: list[str] = []
    total = 0
    while total < size:
        row = {
            "id": len(rows),
            "label": ("positive", "negative", "neutral")[len(rows) % 3],
            "confidence": round(0.5 + (len(rows) % 50) / 100, 2),
            "reason": "The reviewer says: it works well, but see the notes; 3/5 stars.",
            "source": f"https://example.org/reviews/{len(rows)}",
            "author": f"user{len(rows)}@example.org",
        }
        rows.append(json.dumps(row, separators=(",", ":")))
        total += len(rows[-1]) + 1
    return "[" + ",".join(rows) + "]"


def prose(size: int) -> str:
    """Plain prose paragraphs of ``size`` characters."""
    sentences = (
        "The loader reads each file once and keeps only the columns the report needs. "
        "A cache in front of the parser avoids parsing the same header twice. "
        "Errors are collected per row, so one bad line never stops the whole run. "
    )
    paragraph = sentences * 4
    text = "\n\n".join([paragraph] * (size // (len(paragraph) + 2) + 1))
    return text[:size]


def timed(render: Callable[[str], str], text: str) -> float:
    started = time.perf_counter()
    render(text)
    return time.perf_counter() - started


def upstream_render() -> Callable[[str], str]:
    """Our renderer with mdit-py-plugins' own gfm_autolink rules (as before the fix)."""
    from mdit_py_plugins.gfm_autolink import index

    from mistral_magic.render.parser import make_parser

    md = make_parser()
    md.inline.ruler.at("gfm_autolink_www", index._www_inline_rule)
    md.inline.ruler.at("gfm_autolink_protocol", index._protocol_rule)
    md.inline.ruler.at("gfm_autolink_email", index._email_rule)
    return lambda text: sanitize(md.render(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kb", type=float, default=SIZE / 1000, help="size of the reply in KB (default 279)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--upstream", action="store_true", help="also time the plugin's own rules, once")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    size = int(args.kb * 1000)
    texts = {"json": json_reply(size), "prose": prose(size), "json_2x": json_reply(2 * size)}
    seconds: dict[str, list[float]] = {name: [] for name in texts}
    for _ in range(args.rounds):  # interleaved, so load on the machine hits every case alike
        for name, text in texts.items():
            seconds[name].append(timed(render_markdown, text))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    result = {
        "kb": len(texts["json"]) / 1000,
        "json_s": median["json"],
        "prose_s": median["prose"],
        "json_vs_prose": median["json"] / median["prose"],
        "json_2x_vs_json": median["json_2x"] / median["json"],
    }
    if args.upstream:
        result["upstream_json_s"] = timed(upstream_render(), texts["json"])
    if args.json:
        print(json.dumps(result))
        return
    print(f"one-line JSON, {result['kb']:.0f} KB: {result['json_s']:.3f} s (median of {args.rounds})")
    print(f"plain prose, same size: {result['prose_s']:.4f} s")
    print(f"JSON / prose: {result['json_vs_prose']:.1f}x")
    print(f"JSON at twice the size / JSON: {result['json_2x_vs_json']:.2f}x (linear: about 2)")
    if args.upstream:
        print(f"mdit-py-plugins' own autolink rules, same JSON, once: {result['upstream_json_s']:.1f} s")


if __name__ == "__main__":
    main()
