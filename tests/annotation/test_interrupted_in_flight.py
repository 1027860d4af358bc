"""Issue 11, item 15: requests in flight at an interrupt are said, recorded, and never paid twice by a re-run."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest

from mistral_magic import AnnotationInterrupted
from tests.fakeapi import Reply, last_user_message


def interrupt_at_request(fake, number: int, delay: float) -> None:
    """Answer every request after ``delay`` s; SIGINT the kernel when request ``number`` arrives."""
    lock = threading.Lock()
    seen = {"requests": 0}

    def reply(request):
        with lock:
            seen["requests"] += 1
            if seen["requests"] == number:
                threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
        return Reply(text="A:" + last_user_message(request), delay=delay)

    fake.default_reply = reply


def test_items_in_flight_at_an_interrupt_are_said_and_not_sent_again_by_a_rerun(shell, fake, interruptible):
    interrupt_at_request(fake, 3, delay=1.0)  # three workers: requests 1-3 are all still generating
    shell.ns["t_items"] = [f"q{i}" for i in range(6)]
    run = shell.run("%%mistral --each t_items --workers 3 --out t_out\n{item}")
    assert type(run.error) is AnnotationInterrupted
    assert "3 items were in flight" in run.stdout, run.stdout
    stopped = shell.magics.session.last_run
    assert sorted(stopped.in_flight) == [0, 1, 2] and shell.ns["t_out"] == [None] * 6
    # At once, while the server is still generating those three: the re-run waits for them instead.
    fake.default_reply = lambda request: Reply(text="A:" + last_user_message(request))
    run = shell.ok("%%mistral --each t_items --workers 3 --out t_out\n{item}")
    assert shell.ns["t_out"] == [f"A:q{i}" for i in range(6)]
    asked = Counter(last_user_message(r.json()) for r in fake.requests)
    assert asked == Counter(f"q{i}" for i in range(6)), asked  # each item asked once in all
    assert "3 answered by the requests of the interrupted run" in run.stdout, run.stdout


def test_without_the_cache_a_rerun_sends_in_flight_items_again_and_says_so(shell, fake, interruptible):
    """With --no-cache nothing keeps the background answers, so the message says they will be sent again."""
    interrupt_at_request(fake, 2, delay=1.0)
    shell.ns["t_items"] = ["a", "b", "c", "d"]
    run = shell.run("%%mistral --each t_items --workers 2 --no-cache --out t_out\n{item}")
    assert type(run.error) is AnnotationInterrupted
    assert "2 items were in flight" in run.stdout and "sends them again" in run.stdout, run.stdout


@pytest.mark.parametrize(
    "reload",
    ["%reload_ext mistral_magic", "%unload_ext mistral_magic\n%load_ext mistral_magic"],
    ids=["reload", "unload+load"],
)
def test_a_reload_right_after_the_interrupt_keeps_the_requests_in_flight(shell, fake, interruptible, reload):
    """The requests an interrupted run left running survive %reload_ext: their connections stay open
    and the re-run waits for them instead of paying for them again."""
    release = threading.Event()  # holds the interrupted run's requests until the re-run is under way
    state = {"requests": 0, "reloaded": False}
    lock = threading.Lock()

    def reply(request):
        with lock:
            state["requests"] += 1
            number, reloaded = state["requests"], state["reloaded"]
        if reloaded:
            release.set()  # a request of the re-run: the interrupted run's requests may now finish
        else:
            if number == 3:  # three workers, three requests generating: interrupt now
                os.kill(os.getpid(), signal.SIGINT)
            assert release.wait(120), "the re-run never started"
        return Reply(text="A:" + last_user_message(request))

    fake.default_reply = reply
    shell.ns["t_items"] = [f"q{i}" for i in range(6)]
    run = shell.run("%%mistral --each t_items --workers 3 --out t_out\n{item}")
    assert type(run.error) is AnnotationInterrupted and "3 items were in flight" in run.stdout
    old_client = shell.magics.session.client
    shell.ok(reload)
    state["reloaded"] = True
    run = shell.ok("%%mistral --each t_items --workers 4 --out t_out\n{item}")
    assert shell.ns["t_out"] == [f"A:q{i}" for i in range(6)]
    asked = Counter(last_user_message(r.json()) for r in fake.requests)
    assert asked == Counter(f"q{i}" for i in range(6)), asked  # each item asked once in all
    assert "3 answered by the requests of the interrupted run" in run.stdout, run.stdout
    deadline = time.monotonic() + 60  # the old client is closed once its last request is done
    while not old_client._http.is_closed:
        assert time.monotonic() < deadline, "the unloaded session's client was never closed"
        time.sleep(0.01)
