"""Benchmark: --batch for 100,000 items through the fake batch server (issue 13).

The fake server (tests/fakeapi) runs in its own process, so its copy of the files is not counted.
The kernel side is timed by phase: rows and templates, cache keys and lookups, writing the JSONL,
and downloading, parsing and storing the results in the reply cache plus filling a DataFrame
column. Upload + create is printed apart: its wall time is mostly the fake server (in another
process) reading, checking and answering the file. The job's queue and run time are left out. Peak memory:
tracemalloc's peak and the growth of max RSS over the run.

Baseline, in the same run: the same lines written with a bare json.dumps loop, and the same
results file read with a bare httpx stream + json.loads into a list (no cache, no checks).

    python bench/batch.py                 # 100,000 items
    python bench/batch.py --items 20000   # quicker

Targets: RSS growth under 200 MB; kernel-side work for 100,000 items under 30 s.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    count = parser.parse_args().items

    import httpx
    import pandas

    from mistral_magic.annotation.batchrun import BatchRunner, PollSchedule
    from mistral_magic.annotation.batchstore import BatchJobStore
    from mistral_magic.annotation.cache import ReplyCache
    from mistral_magic.annotation.run import as_items, fill_template, store_results
    from mistral_magic.api.batchjobs import BatchJobs
    from mistral_magic.api.client import ChatClient
    from mistral_magic.api.protocol import Endpoint
    from mistral_magic.secret import Secret

    timings: dict[str, float] = {"keys": 0.0, "lookups": 0.0, "write": 0.0, "submit": 0.0, "collect": 0.0}

    def timed(name: str, method):  # type: ignore[no-untyped-def]
        def wrapper(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                timings[name] += time.perf_counter() - started

        return wrapper

    class TimedRunner(BatchRunner):
        _keys = timed("keys", BatchRunner._keys)
        _settle_cached = timed("lookups", BatchRunner._settle_cached)
        _submit = timed("submit", BatchRunner._submit)
        _collect = timed("collect", BatchRunner._collect)

        def _request_files(self, *args):  # type: ignore[no-untyped-def]
            files = BatchRunner._request_files(self, *args)
            while True:
                started = time.perf_counter()
                try:
                    written = next(files)
                except StopIteration:
                    return
                finally:
                    timings["write"] += time.perf_counter() - started
                yield written

    process, url = start_server()
    folder = Path(tempfile.mkdtemp(prefix="mistral-batch-bench-"))
    try:
        frame = pandas.DataFrame({"text": [f"review {i}: the product was fine, would buy again" for i in range(count)]})
        endpoint = Endpoint(base_url=url + "/v1", api_key=Secret(""), read_timeout=600)
        client = ChatClient()
        cache = ReplyCache(folder / "cache")
        runner = TimedRunner(
            BatchJobs(client, endpoint),
            endpoint,
            cache,
            BatchJobStore(cache.path),
            model="mistral-small-latest",
            poll=PollSchedule(first=0.2, longest=1.0),
        )
        rss_before = max_rss_mib()
        tracemalloc.start()
        started = time.perf_counter()
        items = as_items(frame)
        prompts = fill_template("Label this review: {text}", items)
        rows = time.perf_counter() - started

        def body_for(index: int) -> dict:
            messages = [{"role": "user", "content": prompts[index]}]
            return {"model": "mistral-small-latest", "messages": messages, "max_tokens": 5, "stream": True}

        run = runner.run(items, body_for)
        fill_started = time.perf_counter()
        store_results({}, "label", items, run)
        fill = time.perf_counter() - fill_started
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rss_growth = max_rss_mib() - rss_before
        answered = frame["label"].notna().sum()
        if answered != count:
            raise SystemExit(f"FAIL: {answered} of {count} answered; {run.errors[:2]}")
        upload = timings["submit"] - timings["write"]  # mostly the fake server reading and answering the file
        kernel = rows + timings["keys"] + timings["lookups"] + timings["write"] + timings["collect"] + fill

        # Baseline: the same lines and the same results file, bare.
        job = next(iter(runner.jobs.list()[0]))
        base_started = time.perf_counter()
        with open(folder / "plain.jsonl", "w", encoding="utf-8") as handle:
            for index in range(count):
                handle.write(json.dumps({"custom_id": str(index), "body": body_for(index)}) + "\n")
        with (
            httpx.Client(timeout=600) as http,
            http.stream("GET", f"{url}/v1/files/{job.output_file}/content") as reply,
        ):
            parsed = [json.loads(line) for line in reply.iter_lines() if line]
        frame["plain"] = [line["response"]["body"]["choices"][0]["message"]["content"] for line in parsed]
        baseline = time.perf_counter() - base_started
        client.close()
        cache.close()
    finally:
        process.terminate()
        process.wait(timeout=10)

    print(f"{count:,} items through the fake batch server")
    print(f"  DataFrame rows (as_items) and templates: {rows:.2f} s")
    print(f"  cache keys: {timings['keys']:.2f} s; cache lookups: {timings['lookups']:.2f} s")
    print(f"  write the JSONL:               {timings['write']:.2f} s")
    print(f"  upload + create (wall time, mostly the fake server's parsing and answering): {upload:.2f} s")
    print(f"  download + parse + cache:      {timings['collect']:.2f} s")
    print(f"  fill the DataFrame column:     {fill:.2f} s")
    print(
        f"  kernel-side work in all:       {kernel:.2f} s = {kernel / count * 1e6:.0f} us per item "
        f"({kernel / baseline:.1f}x the bare baseline of {baseline:.2f} s)"
    )
    print(f"  peak traced memory {peak:.0f} MiB, max RSS growth {rss_growth:.0f} MiB")
    ok = rss_growth < 200 and kernel < 30
    print(f"  targets (RSS growth < 200 MB, kernel work < 30 s): {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
