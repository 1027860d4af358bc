"""Benchmark: how long ``%load_ext mistral_magic`` takes, against a bare ``import IPython``.

Each figure is taken in a fresh Python process (imports are cached within one), alternating the
kinds, and the medians are compared in the same run, so a busy machine slows both alike:

* ``import IPython``: the floor every kernel pays before any extension loads;
* ``%load_ext mistral_magic``: in a process where IPython and a shell already exist, as in a kernel;
* ``import mistral_magic.session``: what the load would cost if it imported the session stack
  (chats, annotation, images, local mode, rendering), which it leaves to the first cell.

    python bench/load.py            # 15 runs of each
    python bench/load.py --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROGRAMS = {
    "import IPython": "import time; t = time.perf_counter(); import IPython; print(time.perf_counter() - t)",
    "%load_ext mistral_magic": (
        "from IPython.core.interactiveshell import InteractiveShell; import time; "
        "ip = InteractiveShell.instance(); t = time.perf_counter(); "
        "ip.run_line_magic('load_ext', 'mistral_magic'); print(time.perf_counter() - t)"
    ),
    "import mistral_magic.session": (
        "import IPython, time; t = time.perf_counter(); import mistral_magic.session; print(time.perf_counter() - t)"
    ),
}


def seconds(program: str) -> float:
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in PROGRAMS}
    for _ in range(args.runs):
        for name, program in PROGRAMS.items():
            times[name].append(seconds(program))
    floor = statistics.median(times["import IPython"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<30} median {median * 1000:7.1f} ms  ({median / floor:.2f}x import IPython)")


if __name__ == "__main__":
    main()
