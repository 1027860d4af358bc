"""Issue 11, item 14: --each requests stream, so a slow generation is neither cut nor paid twice."""

from __future__ import annotations

import json

from tests.fakeapi import RawReply, Reply


def test_a_generation_slower_than_the_read_timeout_is_answered_once(shell, fake):
    """Each reply takes 1.2 s in all but sends a piece every 0.2 s: with a 0.5 s read timeout a
    non-streamed request was cut, re-sent and billed up to 6 times, then dropped."""
    shell.ok("%mistral config read_timeout=0.5 retry_base_delay=0.01 retry_max_wait=0.05")
    fake.default_reply = lambda request: Reply(text="a b c d e f", chunk_delay=0.2)
    shell.ns["t_rows"] = ["one", "two", "three"]
    run = shell.ok("%%mistral --each t_rows --out t_out\n{item}")
    assert shell.ns["t_out"] == ["a b c d e f"] * 3
    assert "3 answered" in run.stdout
    assert len(fake.requests) == 3  # one request per item, none re-sent
    assert all(r.json()["stream"] is True for r in fake.requests)


def test_a_timeout_after_the_server_started_answering_is_not_resent(shell, fake):
    """The server sent its first chunk, then went quiet for longer than the read timeout: it may
    still be generating (and billing), so the item fails with a reason instead of a blind re-send."""
    shell.ok("%mistral config read_timeout=0.4 retry_base_delay=0.01 retry_max_wait=0.05")
    first = b'data: {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}\n\n'
    rest = b'data: {"choices": [{"index": 0, "delta": {"content": "late"}, "finish_reason": "stop"}]}\n\n'
    fake.add_rule("quiet", RawReply([first, rest, b"data: [DONE]\n\n"], piece_delay=1.5))
    shell.ns["t_rows"] = ["quiet one", "fine"]
    run = shell.ok("%%mistral --each t_rows --out t_out\n{item}")
    assert shell.ns["t_out"] == [None, "Echo: fine"]
    assert "1 failed" in run.stdout
    quiet = [r for r in fake.requests if "quiet" in json.dumps(r.json())]
    assert len(quiet) == 1  # not re-sent
    error = shell.magics.session.last_run.errors[0].error
    assert "read timeout" in error and "not sent again" in error


def test_a_server_that_ignores_stream_still_answers_an_each_run(shell, fake):
    """A server that answers the streamed batch request with one JSON body (item 8) is read as one."""
    whole = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Whole."}, "finish_reason": "stop"}]}
    fake.default_reply = lambda request: RawReply([json.dumps(whole).encode()], content_type="application/json")
    shell.ns["t_rows"] = ["x", "y"]
    shell.ok("%%mistral --each t_rows --out t_out\n{item}")
    assert shell.ns["t_out"] == ["Whole.", "Whole."] and len(fake.requests) == 2
