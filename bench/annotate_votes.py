"""Benchmark part: --schema with --votes 3 over 1,000 items against the 100 ms fake server at 16 workers.

Two runs: a server that honours ``n`` (one request per item: ideal = items x latency / workers) and
one that ignores it (three requests per item: ideal = items x 3 x latency / workers). The validation
overhead is the time the same Validator takes to check every vote of the run, per item and as a
share of the wall time.
Targets: within 1.15x of the ideal; validation under 5% of the wall time.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = "label: positive|negative|neutral, confidence: float, reason"
REPLY = {"label": "positive", "confidence": 0.9, "reason": "the review says it was fine"}
VOTES = 3


def _server(script: Path, ignore_n: bool) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "fakeapi", "--script", str(script), *(["--ignore-n"] if ignore_n else [])]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    )
    line = process.stdout.readline().strip()
    if not line.startswith("FAKE_SERVER_URL="):
        process.kill()
        raise SystemExit(f"the fake server did not start: {line!r}")
    return process, line.split("=", 1)[1]


def measure(items: int, workers: int, delay: float, workdir: Path) -> list[dict]:
    import mistral_magic
    from mistral_magic.annotation.schema import parse_spec
    from mistral_magic.annotation.validate import Validator

    script = workdir / "votes.json"
    script.write_text(json.dumps({"rules": [], "default": {"text": json.dumps(REPLY), "delay": delay}}))
    texts = [f"review number {i}: it was fine" for i in range(items)]
    rows = []
    for ignore_n in (False, True):
        server, url = _server(script, ignore_n)
        os.environ["MISTRAL_BASE_URL"] = url + "/v1"
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # first-use imports and connections, not timed
                mistral_magic.annotate(
                    texts[:workers], "Warm up: {item}", schema=SPEC, votes=VOTES, workers=workers, cache=False
                )
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                run = mistral_magic.annotate(
                    texts, "Label this review: {item}", schema=SPEC, votes=VOTES, workers=workers, cache=False
                )
            wall = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(5)
        answered = sum(1 for answer in run if answer is not None)
        if answered != items or run.errors:
            raise SystemExit(f"FAIL: {answered} of {items} answered, errors: {run.errors[:3]}")
        validator = Validator(parse_spec(SPEC))
        reply = json.dumps(REPLY)
        checked = time.perf_counter()
        for _ in range(items * VOTES):
            validator.check(reply)
        validation = time.perf_counter() - checked
        per_item = VOTES if ignore_n else 1
        ideal = items * per_item * delay / workers
        rows.append(
            {
                "n_honoured": not ignore_n,
                "wall_s": wall,
                "ideal_s": ideal,
                "ratio": wall / ideal,
                "validation_us_per_item": validation / items * 1e6,
                "validation_share": validation / wall,
            }
        )
    return rows


def report(rows: list[dict], items: int, workers: int) -> bool:
    print(f"\n--schema (3 fields) --votes {VOTES}: {items} items, {workers} workers")
    print(f"{'server':>14}{'wall s':>9}{'ideal s':>9}{'x ideal':>9}{'valid. us/item':>16}{'% of wall':>11}")
    ok = True
    for row in rows:
        name = "honours n" if row["n_honoured"] else "ignores n"
        print(
            f"{name:>14}{row['wall_s']:>9.2f}{row['ideal_s']:>9.2f}{row['ratio']:>8.3f}x"
            f"{row['validation_us_per_item']:>16.1f}{100 * row['validation_share']:>10.2f}%"
        )
        ok = ok and row["ratio"] <= 1.15 and row["validation_share"] < 0.05
    print(f"targets (<= 1.15x ideal, validation < 5% of wall): {'PASS' if ok else 'MISS'}")
    return ok
