"""Benchmark: --each / annotate() over many items against a server that takes 100 ms a request.

The fake chat-completions server (tests/fakeapi) runs in its own process on 127.0.0.1 and
answers every request after 100 ms. For 1, 8 and 16 workers it prints the wall time as a ratio
to the ideal (items x 100 ms / workers); the peak traced memory comes from one more run of its own
(tracemalloc triples the CPU time of each request, so the timed runs are not traced). Then it
answers half of the items, runs the whole job again, and prints how many requests the re-run sent
(the target is exactly the missing half).

Then a large run (bench/annotate_scale.py): --scale items (default 200,000) against a
zero-latency server, in fresh processes: items/s and peak RSS growth of annotate() against a
plain thread pool of httpx calls.

    python bench/annotate.py               # 1,000 items (the 1-worker run takes ~100 s), then 200,000
    python bench/annotate.py --items 200 --scale 20000   # quicker; --scale 0 skips the large run
    python bench/annotate.py --workers 8 16 --scale 0 --votes-items 0   # the worker sweep only, without 1 worker
Then --schema with --votes 3 (bench/annotate_votes.py): 1,000 items at 16 workers against servers that
honour and ignore n, wall time against the ideal and the validation overhead per item.

Targets: at most 1.15x ideal at 16 workers; the re-run sends exactly the missing items; with
--votes 3, within 1.15x of the ideal and validation under 5% of the wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))

import annotate_scale  # noqa: E402
import annotate_votes  # noqa: E402

DELAY = 0.1


def start_server(script: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "fakeapi", "--script", str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tests")},
    )
    line = process.stdout.readline().strip()
    if not line.startswith("FAKE_SERVER_URL="):
        process.kill()
        raise SystemExit(f"the fake server did not start: {line!r}")
    return process, line.split("=", 1)[1]


def timed_run(items: list[str], workers: int, cache: bool) -> tuple[float, object]:
    """Wall seconds and the run (progress output is swallowed). Not traced: tracemalloc triples the
    client's CPU time per request, and the ratio would measure that."""
    import mistral_magic

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        run = mistral_magic.annotate(items, "Label this review: {item}", workers=workers, cache=cache)
    wall = time.perf_counter() - started
    answered = sum(1 for answer in run if answer is not None)
    if answered != len(items) or run.errors:
        raise SystemExit(f"FAIL: {answered} of {len(items)} answered, errors: {run.errors[:3]}")
    return wall, run


def traced_peak(items: list[str], workers: int) -> float:
    """Peak traced MiB of a run of its own (untimed)."""
    tracemalloc.start()
    try:
        timed_run(items, workers, cache=False)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--scale", type=int, default=200_000, help="items of the large run (0: skip it)")
    parser.add_argument("--votes-items", type=int, default=1000, help="items of the --schema --votes 3 run (0: skip)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mistral-bench-"))
    script = workdir / "script.json"
    script.write_text(json.dumps({"rules": [], "default": {"text": "positive", "delay": DELAY}}))
    server, url = start_server(script)
    os.environ.update(MISTRAL_BASE_URL=url + "/v1", MISTRAL_API_KEY="bench-key", NO_PROXY="127.0.0.1")
    os.environ["MISTRAL_MAGIC_CACHE_DIR"] = str(workdir / "cache")
    items = [f"review number {i}: it was fine" for i in range(args.items)]
    rows = []
    try:
        timed_run(items[:32], max(args.workers), cache=False)  # imports and connections: not in the first row
        for workers in args.workers:
            wall, _ = timed_run(items, workers, cache=False)
            ideal = args.items * DELAY / workers
            rows.append({"workers": workers, "wall_s": wall, "ideal_s": ideal, "ratio": wall / ideal})
        peak = {"workers": max(args.workers), "mib": traced_peak(items, max(args.workers))}
        half = items[: args.items // 2]
        _, first = timed_run(half, 16, cache=True)
        _, rerun = timed_run(items, 16, cache=True)
    finally:
        server.terminate()
        server.wait(5)
    resume = {
        "first_half_sent": first.sent,
        "rerun_sent": rerun.sent,
        "missing": args.items - len(half),
        "rerun_from_cache": rerun.cached,
    }
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    votes = annotate_votes.measure(args.votes_items, 16, DELAY, workdir) if args.votes_items else []
    scale = annotate_scale.measure(args.scale) if args.scale else []
    best = next((r for r in rows if r["workers"] == 16), rows[-1])
    verdict = best["ratio"] <= 1.15 and resume["rerun_sent"] == resume["missing"]
    if args.json:
        print(
            json.dumps(
                {
                    "items": args.items,
                    "delay_s": DELAY,
                    "runs": rows,
                    "peak_traced": peak,
                    "resume": resume,
                    "max_rss_mib": max_rss,
                    "large_run": scale,
                    "schema_votes": votes,
                    "pass": verdict,
                },
                indent=1,
            )
        )
        return
    print(f"annotate bench: {args.items} items, server answers after {DELAY * 1000:.0f} ms")
    print(f"{'workers':>8}{'wall s':>10}{'ideal s':>10}{'x ideal':>10}")
    for row in rows:
        print(f"{row['workers']:>8}{row['wall_s']:>10.2f}{row['ideal_s']:>10.2f}{row['ratio']:>9.3f}x")
    print(f"peak traced memory ({peak['workers']} workers, a run of its own): {peak['mib']:.1f} MiB")
    print(f"process max RSS: {max_rss:.0f} MiB")
    print(
        f"re-run of a half-finished job: sent {resume['rerun_sent']} requests for {resume['missing']} missing items "
        f"({resume['rerun_from_cache']} answered from the cache)"
    )
    print(
        f"16 workers: {best['ratio']:.3f}x ideal (target <= 1.15x); re-run sent exactly the missing items: "
        f"{resume['rerun_sent'] == resume['missing']}: {'PASS' if verdict else 'MISS'}"
    )
    if votes:
        annotate_votes.report(votes, args.votes_items, 16)
    if scale:
        annotate_scale.report(scale)


if __name__ == "__main__":
    main()
