"""Issue 11, item 21: a large --each run allocates little per item and starts answering at once."""

from __future__ import annotations

import os
import signal
import threading
import tracemalloc

from mistral_magic import AnnotationInterrupted
from tests.fakeapi import Reply

ITEMS = 50_000


def test_memory_before_the_first_request_does_not_grow_with_the_items(shell, fake, interruptible):
    """Item 21: 3.2 KB was allocated per item before the first answer (every request was submitted
    to the thread pool up front, with its body and cache key)."""
    shell.ns["t_items"] = [f"item {i}" for i in range(ITEMS)]
    first: dict[str, int] = {}

    def reply(request):
        if not first:
            first["traced"] = tracemalloc.get_traced_memory()[0]
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()  # then stop the run
        return Reply(text="ok", delay=0.3)

    fake.default_reply = reply
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run = shell.run("%%mistral --each t_items --out t_out --workers 4\n{item}")
    finally:
        tracemalloc.stop()
    per_item = (first["traced"] - before) / ITEMS
    assert per_item < 100, f"{per_item:.0f} bytes per item before the first request"
    assert type(run.error) is AnnotationInterrupted
    assert len(fake.requests) < 100  # only a window of requests was ever handed to the pool


def test_a_windowed_run_keeps_order_counts_and_resumes(shell, fake):
    """Item 21: bounded submission still answers every item, in order, and a re-run sends nothing."""
    shell.ns["t_items"] = [f"q{i}" for i in range(300)]
    run = shell.ok("%%mistral --each t_items --out t_out --workers 3\n{item}")
    assert shell.ns["t_out"] == [f"Echo: q{i}" for i in range(300)]
    assert "300 items: 300 answered (0 from the cache)." in run.stdout
    again = shell.ok("%%mistral --each t_items --out t_out --workers 3\n{item}")
    assert len(fake.requests) == 300 and "300 from the cache" in again.stdout
