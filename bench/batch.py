"""Benchmark: --batch for 100,000 items through the fake batch server (issue 13).

The fake server (tests/fakeapi) runs in its own process, so its copy of the files is not counted.
The kernel side is timed by phase: rows and templates, cache keys and lookups, writing the JSONL,
and downloading, parsing and storing the results in the reply cache plus filling a DataFrame
column. Upload + create is printed apart: its wall time is mostly the fake server (in another
process) reading, checking and answering the file. The job's queue and run time are left out. Memory:
the growth of max RSS over the run, and tracemalloc's peak in a second run (tracing slows Python's
allocations about twice, so the times come from the first run, without it).

Baseline, in the same run: the same lines written with a bare json.dumps loop, and the same
results file read with a bare httpx stream + json.loads into a list (no cache, no checks).

    python bench/batch.py                 # 100,000 items
    python bench/batch.py --items 20000   # quicker

Targets: RSS growth under 200 MB; kernel-side work for 100,000 items under 30 s.
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


def start_server() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "fakeapi"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tests")},
    )
    line = process.stdout.readline().strip() if process.stdout else ""
    if not line.startswith("FAKE_SERVER_URL="):
        process.kill()
        raise SystemExit(f"the fake server did not start: {line!r}")
    return process, line.split("=", 1)[1]


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(count: int, url: str, *, trace: bool) -> dict[str, float]:
    """One ``annotate(..., batch=True)`` run of ``count`` new items against the server at ``url``: phase
    times, memory, and the bare baseline. With ``trace``, tracemalloc follows the run (which slows it,
    so times come from a run without)."""
    import httpx
    import pandas

    import mistral_magic
    from mistral_magic.annotation.batchrun import BatchRunner

    phases = {
        "_keys": "keys",
        "_settle_cached": "lookups",
        "_send": "submit",
        "_wait": "waited",
        "_collect": "collect",
    }
    timings = dict.fromkeys([*phases.values(), "write"], 0.0)
    originals = {name: getattr(BatchRunner, name) for name in phases}

    def timed(name: str, method):  # type: ignore[no-untyped-def]
        def wrapper(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                timings[name] += time.perf_counter() - started

        return wrapper

    def request_files(self, *args):  # type: ignore[no-untyped-def]
        files = original_files(self, *args)
        while True:
            started = time.perf_counter()
            try:
                written = next(files)
            except StopIteration:
                return
            finally:
                timings["write"] += time.perf_counter() - started
            yield written

    original_files = BatchRunner._request_files
    for name, phase in phases.items():
        setattr(BatchRunner, name, timed(phase, originals[name]))
    BatchRunner._request_files = request_files  # type: ignore[method-assign]
    run_name = "traced" if trace else "timed"
    frame = pandas.DataFrame({"text": [f"review {i}: the product was fine, would buy again" for i in range(count)]})
    template = f"Label this review ({run_name} run): {{text}}"  # new requests: nothing is in the cache yet
    try:
        rss_before = max_rss_mib()
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the text progress bar
            run = mistral_magic.annotate(frame, template, max_tokens=5, batch=True)
        total = time.perf_counter() - started
        fill_started = time.perf_counter()
        frame["label"] = run.series("label")
        fill = time.perf_counter() - fill_started
        peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else float("nan")
        tracemalloc.stop()
        rss_growth = max_rss_mib() - rss_before
    finally:
        for name, method in originals.items():
            setattr(BatchRunner, name, method)
        BatchRunner._request_files = original_files  # type: ignore[method-assign]
    answered = frame["label"].notna().sum()
    if answered != count:
        raise SystemExit(f"FAIL: {answered} of {count} answered; {run.errors[:2]}")
    upload = timings["submit"] - timings["write"]  # mostly the fake server reading and answering the file
    kernel = total - upload - timings["waited"] + fill  # the wait is the job's own time and the polls' pauses

    # Baseline: the same lines and the same results file, bare.
    with httpx.Client(base_url=url, timeout=600) as http:
        job = max(http.get("/v1/batch/jobs").json()["data"], key=lambda j: j["created_at"])
        base_started = time.perf_counter()
        with tempfile.TemporaryFile("w", encoding="utf-8") as handle:
            for index, text in enumerate(frame["text"]):
                body = {"messages": [{"role": "user", "content": template.format(text=text)}], "max_tokens": 5}
                handle.write(json.dumps({"custom_id": str(index), "body": body}) + "\n")
        with http.stream("GET", f"/v1/files/{job['output_file']}/content") as reply:
            parsed = [json.loads(line) for line in reply.iter_lines() if line]
        frame["plain"] = [line["response"]["body"]["choices"][0]["message"]["content"] for line in parsed]
        baseline = time.perf_counter() - base_started
    return {
        **timings,
        "other": kernel - fill - timings["keys"] - timings["lookups"] - timings["write"] - timings["collect"],
        "fill": fill,
        "upload": upload,
        "kernel": kernel,
        "baseline": baseline,
        "peak": peak,
        "rss_growth": rss_growth,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    count = parser.parse_args().items
    process, url = start_server()
    os.environ.update(
        MISTRAL_BASE_URL=url + "/v1",
        MISTRAL_API_KEY="bench-key",
        MISTRAL_MAGIC_CACHE_DIR=tempfile.mkdtemp(prefix="mistral-batch-bench-"),
    )
    try:
        timed = measure(count, url, trace=False)
        traced = measure(count, url, trace=True)
    finally:
        process.terminate()
        process.wait(timeout=10)

    kernel = timed["kernel"]
    print(f"{count:,} items through annotate(..., batch=True) and the fake batch server")
    print(f"  cache keys (each request body built): {timed['keys']:.2f} s; cache lookups: {timed['lookups']:.2f} s")
    print(f"  write the JSONL (bodies built again):  {timed['write']:.2f} s")
    print(f"  download + parse + cache:              {timed['collect']:.2f} s")
    print(f"  rows, templates, the rest of the run:  {timed['other']:.2f} s")
    print(f"  fill the DataFrame column:             {timed['fill']:.2f} s")
    print(
        f"  kernel-side work in all:               {kernel:.2f} s = {kernel / count * 1e6:.0f} us per item "
        f"({kernel / timed['baseline']:.1f}x the bare baseline of {timed['baseline']:.2f} s)"
    )
    print(f"  not counted: upload + create {timed['upload']:.2f} s (mostly the fake server reading and answering")
    print(f"  the file), the job's run and the pauses between polls {timed['waited']:.2f} s")
    print(f"  max RSS growth {timed['rss_growth']:.0f} MiB")
    print(
        f"  a second run under tracemalloc: peak traced memory {traced['peak']:.0f} MiB "
        f"(kernel work {traced['kernel']:.2f} s, slowed by the tracing)"
    )
    ok = timed["rss_growth"] < 200 and kernel < 30
    print(f"  targets (RSS growth < 200 MB, kernel work < 30 s): {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
