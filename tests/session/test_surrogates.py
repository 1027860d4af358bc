"""Issue 11, item 10: UTF-16 surrogates from the server, the cell or the data never cost a turn or a batch."""

from __future__ import annotations

import json

import pytest

from tests.fakeapi import ErrorReply, RawReply, last_user_message
from tests.support import TEST_KEY, loaded_kernel, run_and_collect

SMILE = "\U0001f600"


def delta_events(*contents: str, finish: str = "stop") -> list[bytes]:
    """SSE events whose JSON escapes each content with \\uXXXX, as a server writing UTF-16 does."""
    events = [
        b"data: "
        + json.dumps({"choices": [{"index": 0, "delta": {"content": c}, "finish_reason": None}]}).encode()
        + b"\n\n"
        for c in contents
    ]
    last = {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    return [*events, b"data: " + json.dumps(last).encode() + b"\n\n", b"data: [DONE]\n\n"]


def test_a_surrogate_pair_split_across_two_chunks_is_joined(shell, fake):
    """Item 10: "\\ud83d" then "\\ude00" in consecutive deltas is one emoji, not two replacement marks."""
    fake.script(RawReply(delta_events("Smile ", "\ud83d", "\ude00", " done")))
    shell.ok("%%mistral --out t_reply\nsmile")
    assert shell.ns["t_reply"] == f"Smile {SMILE} done"
    assert shell.magics.session.store.get("default").turns[-1].assistant == f"Smile {SMILE} done"


def test_a_lone_surrogate_in_a_reply_is_replaced_and_the_turn_kept(shell, fake, tmp_path):
    """Item 10: a lone surrogate from the server crashed the cache write, display and save."""
    fake.script(RawReply(delta_events("odd ", "\ud83d", " end \udc00")))
    shell.ok("%%mistral --cache --out t_reply\nodd")
    assert shell.ns["t_reply"] == "odd \ufffd end \ufffd"
    shell.ok(f"%mistral save {tmp_path / 'chats.json'}")
    shell.ok("%mistral history")


def test_a_lone_surrogate_in_the_prompt_is_sent_replaced_and_recorded(shell, fake, tmp_path):
    """Item 10: a lone surrogate in a prompt gave a raw UnicodeEncodeError and lost the turn."""
    shell.ns["t_text"] = "broken \ud83d here"
    shell.ok("%%mistral --cache\nRepeat: {t_text}")
    assert last_user_message(fake.requests[-1].json()) == "Repeat: broken \ufffd here"
    turn = shell.magics.session.store.get("default").turns[-1]
    assert turn.user == "Repeat: broken \ufffd here" and turn.assistant == "Echo: Repeat: broken \ufffd here"
    shell.ok(f"%mistral save {tmp_path / 'chats.json'}")


def test_one_row_with_a_lone_surrogate_does_not_fail_the_batch(shell, fake):
    """Item 10: one such row failed the whole --each run before anything was sent."""
    shell.ns["t_rows"] = ["fine", "bad \udc80 row", "also fine"]
    run = shell.ok("%%mistral --each t_rows --out t_out\n{item}")
    assert shell.ns["t_out"] == ["Echo: fine", "Echo: bad \ufffd row", "Echo: also fine"]
    assert "3 answered" in run.stdout


def test_errors_table_shows_items_with_lone_surrogates(shell, fake):
    """Item 10: %mistral errors crashed on an item (or a server message) holding a lone surrogate."""
    fake.default_reply = lambda request: ErrorReply(400, body={"message": "rejected \ud800 input"})
    shell.ns["t_rows"] = ["bad \udc80 row"]
    shell.ok("%%mistral --each t_rows --out t_out\n{item}")
    table = shell.ok("%mistral errors").plain[0]
    assert "bad \ufffd row" in table and "rejected \ufffd input" in table


def test_a_loaded_chat_with_escaped_lone_surrogates_can_be_shown_and_saved(shell, fake, tmp_path):
    """Item 10: json.loads turns "\\ud83d" in a chat file into a lone surrogate."""
    path = tmp_path / "chats.json"
    turn = {"user": "q \ud83d", "assistant": "a \udc00"}
    path.write_text(
        json.dumps({"format": "mistral-magic/chats", "version": 1, "chats": [{"name": "x", "turns": [turn]}]})
    )
    shell.ok(f"%mistral load {path}")
    assert "q \ufffd" in shell.ok("%mistral history -c x").plain[0]
    shell.ok(f"%mistral save {tmp_path / 'again.json'} -c x")


@pytest.fixture
def kernel(fake, monkeypatch):
    monkeypatch.setenv("MISTRAL_BASE_URL", fake.url + "/v1")
    monkeypatch.setenv("MISTRAL_API_KEY", TEST_KEY)
    with loaded_kernel() as client:
        yield client


def test_a_real_kernel_finishes_a_cell_with_lone_surrogates(kernel, fake):
    """Item 10: in a real kernel a lone surrogate in the output could leave the cell unfinished."""
    fake.script(RawReply(delta_events("odd ", "\ud83d", " end")))
    messages = run_and_collect(kernel, "%%mistral\nsay something odd", timeout=30)
    shown = [m["content"]["data"]["text/plain"] for m in messages if m["msg_type"] == "display_data"]
    assert shown and shown[-1] == "odd \ufffd end", messages
    assert not [m for m in messages if m["msg_type"] == "error"]
    run_and_collect(kernel, "t_x = 'in \\udc80 prompt'", timeout=30)
    echoed = run_and_collect(kernel, "%%mistral\nagain {t_x}", timeout=30)
    assert not [m for m in echoed if m["msg_type"] == "error"]
    assert any("Echo: again in \ufffd prompt" in str(m["content"].get("data", "")) for m in echoed)
