"""Issue 11, item 9: size limits on a reply: a huge event, a line that never ends, a gzip bomb."""

from __future__ import annotations

import json
import tracemalloc

from mistral_magic import BadResponseError, StreamError
from mistral_magic.errors import UsageError
from tests.fakeapi import Flood

DONE = b"data: [DONE]\n\n"


def event(text: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}).encode() + b"\n\n"


OPEN_EVENT = b'data: {"choices": [{"index": 0, "delta": {"content": "'  # an event whose text goes on and on
CLOSE_EVENT = b'"}}]}\n\n'


def assert_one_line_failure(run, setting: str, kept: str) -> None:
    assert type(run.error) is StreamError, run.error
    message = str(run.error)
    assert setting in message and "\n" not in message, message
    assert run.error.partial == kept
    assert kept in run.plain[-1]  # the partial text stays on screen


def test_a_huge_event_fails_at_the_event_limit_keeping_the_text(shell, fake):
    """Item 9: a 40 MB event was buffered by string concatenation (quadratic time) and accepted."""
    fake.script(Flood(b"x" * 65536, size=40_000_000, head=event("Before. ") + OPEN_EVENT, tail=CLOSE_EVENT + DONE))
    run = shell.run("%%mistral\nhuge")
    assert_one_line_failure(run, "max_event_mb", "Before. ")
    assert shell.magics.session.store.get("default").turns == []


def test_a_line_that_never_ends_fails_instead_of_growing_forever(shell, fake):
    """Item 9: a stream with no newline never ended while memory grew."""
    fake.script(Flood(b"x" * 65536, size=None, head=event("Start. ") + b"data: "))
    run = shell.run("%%mistral\nendless")
    assert_one_line_failure(run, "max_event_mb", "Start. ")


def test_a_gzip_bomb_is_cut_at_the_reply_limit_in_bounded_memory(shell, fake):
    """Item 9: 1 MB of gzip inflated to 1 GiB (one 64 KiB network read became 64 MB at once)."""
    comment = b":" + b"x" * 65534 + b"\n"  # SSE comments: valid, skipped, and very compressible
    fake.script(Flood(comment, size=1 << 30, head=event("Start. "), tail=DONE, gzip=True))
    tracemalloc.start()
    try:
        run = shell.run("%%mistral\nbomb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_one_line_failure(run, "max_reply_mb", "Start. ")
    assert peak < 32 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_a_gzip_bomb_as_a_json_body_is_one_line(shell, fake):
    """Item 9: the same limit applies to a --no-stream reply."""
    fake.script(Flood(b" " * 65536, size=1 << 30, head=b"{", tail=b"}", gzip=True, content_type="application/json"))
    run = shell.run("%%mistral --no-stream\nbomb")
    assert type(run.error) is BadResponseError and "max_reply_mb" in str(run.error)
    assert "\n" not in str(run.error)


def test_the_reply_limit_is_a_setting_and_keeps_the_partial_text(shell, fake):
    """Item 9: a whole reply over max_reply_mb stops there, with what arrived kept and shown."""
    shell.ok("%mistral config max_reply_mb=0.5 max_event_mb=0.1")
    fake.script(Flood(event("word ") * 200, size=5_000_000, tail=DONE))
    run = shell.run("%%mistral\nmany words")
    assert type(run.error) is StreamError and "max_reply_mb" in str(run.error)
    assert run.error.partial.startswith("word word ") and 0 < len(run.error.partial) < 500_000


def test_the_limits_are_validated(shell, fake):
    for bad in ("max_reply_mb=0", "max_event_mb=-1", "max_event_mb=nan"):
        run = shell.run(f"%mistral config {bad}")
        assert isinstance(run.error, UsageError), bad
    shown = shell.ok("%mistral config").plain[0]
    assert "max_event_mb" in shown and "max_reply_mb" in shown
