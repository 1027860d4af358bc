"""A streamed reply's connection goes back to the pool: the end of the body after ``[DONE]`` is read,
within a grace time (mistral_magic/api/drain.py)."""

from __future__ import annotations

import time

from mistral_magic.api import drain
from tests.fakeapi import RawReply, Reply
from tests.fakeapi import delta_chunk as chunk
from tests.fakeapi import sse_event as event

DONE = b"data: [DONE]\n\n"


def peers(fake) -> list[tuple[str, int] | None]:
    return [request.peer for request in fake.requests]


def test_streamed_cells_share_one_connection(shell, fake):
    fake.script(Reply(text="One."), Reply(text="Two."), Reply(text="Three."))
    for _ in range(3):
        shell.ok("%%mistral\nhi")
    assert len(fake.requests) == 3 and len(set(peers(fake))) == 1


def test_each_items_reuse_their_workers_connections(shell, fake):
    fake.default_reply = lambda request: Reply(text="label")
    shell.ns["t_items"] = [f"item {i}" for i in range(24)]
    shell.ok("%%mistral --each t_items --out t_labels --workers 2\nLabel {item}")
    assert shell.ns["t_labels"] == ["label"] * 24
    assert len(set(peers(fake))) <= 2  # one connection per worker, not one per item


def test_whatever_follows_done_is_read_and_the_connection_reused(shell, fake):
    fake.script(RawReply([event(chunk("Kept.", "stop")), DONE, b": a comment after the end\n\n"]), Reply(text="Next."))
    shell.ok("%%mistral\nhi")
    shell.ok("%%mistral\nagain")
    turns = shell.magics.session.store.get("default").turns
    assert [t.assistant for t in turns] == ["Kept.", "Next."]
    assert len(set(peers(fake))) == 1


def test_a_body_held_open_after_done_ends_the_reply_at_done(shell, fake):
    """The server waits 10 s before ending the body: the reply is complete at [DONE], the wait for the
    rest is cut after the grace time, and that connection is not used again."""
    held = 10.0
    fake.script(
        RawReply([event(chunk("Complete.", "stop")) + DONE, b": late\n\n"], piece_delay=held), Reply(text="Next.")
    )
    started = time.monotonic()
    run = shell.ok("%%mistral\nhi")
    assert time.monotonic() - started < held / 2  # ended by the grace time (0.5 s), not by the server
    assert run.markdown == ["Complete."] and run.error is None
    shell.ok("%%mistral\nagain")
    assert [t.assistant for t in shell.magics.session.store.get("default").turns] == ["Complete.", "Next."]
    assert len(set(peers(fake))) == 2


def test_trailing_bytes_past_the_limit_are_not_read(shell, fake, monkeypatch):
    monkeypatch.setattr(drain, "MAX_TRAILING_BYTES", 10)
    fake.script(RawReply([event(chunk("Done.", "stop")), DONE, b": " + b"x" * 40 + b"\n\n"]), Reply(text="Next."))
    shell.ok("%%mistral\nhi")
    shell.ok("%%mistral\nagain")
    assert [t.assistant for t in shell.magics.session.store.get("default").turns] == ["Done.", "Next."]
    assert len(set(peers(fake))) == 2
