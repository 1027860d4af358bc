"""Reasoning models: --reasoning-effort, thinking shown apart from the answer, and the whole
assistant message (thinking parts included) kept in the history and sent back."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import threading

import pytest

from mistral_magic import ReplyInterrupted, StreamError, UsageError
from mistral_magic.annotation.cache import ReplyCache
from mistral_magic.api.content import ContentParts
from mistral_magic.api.protocol import Completion
from mistral_magic.render.base import ReplyInfo
from mistral_magic.render.text import DIM, RESET, TextRenderer
from tests.fakeapi import RawReply, Reply
from tests.fakeapi import delta_chunk as chunk
from tests.fakeapi import sse_event as event
from tests.render.test_live_view import Clock, Frontend, ViewState, comms, custom_messages  # noqa: F401 - comms is a fixture
from tests.support import answered
from tests.support.hostile import HOSTILE_REPLIES, problems

THINKING = "The user asks for 2 + 2. Adding *two* and two gives four; check: 4 - 2 = 2."
ANSWER = "It is **4**."
DETAILS = re.compile(r"^<details><summary>Thinking…</summary>(.*?)</details>", re.S)


def reasoning_reply(**kwargs) -> Reply:
    return Reply(text=ANSWER, thinking=THINKING, **kwargs)


def sent_back(thinking: str = THINKING, answer: str = ANSWER) -> list[dict]:
    """The assistant content the next request must carry."""
    return [
        {"type": "thinking", "thinking": [{"type": "text", "text": thinking}], "closed": True},
        {"type": "text", "text": answer},
    ]


def assistant_messages(fake, index=-1) -> list:
    return [m["content"] for m in fake.requests[index].json()["messages"] if m["role"] == "assistant"]


def test_reasoning_effort_is_sent_only_when_set(shell, fake):
    shell.ok("%%mistral --once\nplain")
    assert "reasoning_effort" not in fake.requests[-1].json()
    shell.ok("%%mistral --once --reasoning-effort high\nthink hard")
    assert fake.requests[-1].json()["reasoning_effort"] == "high"
    shell.ok("%mistral config reasoning_effort=none")
    shell.ok("%%mistral --once\nquick")
    assert fake.requests[-1].json()["reasoning_effort"] == "none"
    shell.ok("%%mistral --once --reasoning-effort high\nflag wins")
    assert fake.requests[-1].json()["reasoning_effort"] == "high"
    assert re.search(r"reasoning_effort +'none' +%mistral config", shell.ok("%mistral config").plain[0])
    shell.ok("%mistral config reasoning_effort=")
    shell.ok("%%mistral --once\nunset again")
    assert "reasoning_effort" not in fake.requests[-1].json()


def test_a_wrong_reasoning_effort_is_a_one_line_error(shell, fake):
    run = shell.run("%%mistral --reasoning-effort medium\nhi")
    assert type(run.error) is UsageError and "high" in str(run.error) and "\n" not in str(run.error)
    run = shell.run("%mistral config reasoning_effort=low")
    assert type(run.error) is UsageError and "high | none" in str(run.error)
    assert fake.requests == []


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "no-stream"])
def test_thinking_is_shown_collapsed_above_the_answer_and_kept_out_of_it(shell, fake, stream):
    fake.script(reasoning_reply())
    flags = "--reasoning-effort high --out t_answer" + ("" if stream else " --no-stream")
    run = shell.ok(f"%%mistral {flags}\nWhat is 2 + 2?")
    assert fake.requests[-1].json()["stream"] is stream
    [bundle] = run.outputs
    assert bundle["text/plain"] == bundle["text/markdown"] == ANSWER
    assert shell.ns["t_answer"] == ANSWER
    details = DETAILS.match(bundle["text/html"])
    assert details, bundle["text/html"]
    assert "Adding <em>two</em> and two gives four" in details.group(1)  # rendered from markdown
    assert bundle["text/html"][details.end() :].startswith("<p>It is <strong>4</strong>.</p>")
    # the streamed text (cleared in a notebook, kept in a terminal) shows it apart too
    thinking_at, answer_at = run.stdout.index(THINKING), run.stdout.index(ANSWER)
    assert run.stdout.startswith("Thinking…\n") and thinking_at < answer_at
    assert re.search(r"\(thought for \d+\.\d s\)", run.stdout[thinking_at:answer_at])


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "no-stream"])
def test_the_next_request_sends_the_whole_assistant_message_back(shell, fake, stream):
    fake.script(reasoning_reply(chunk_delay=0.001), Reply(text="Eight."))
    no_stream = "" if stream else " --no-stream"
    shell.ok(f"%%mistral --reasoning-effort high{no_stream}\nWhat is 2 + 2?")
    shell.ok("%%mistral --reasoning-effort high\nAnd doubled?")
    assert assistant_messages(fake) == [sent_back()]  # the fake server checks each part's shape
    turns = shell.magics.session.store.get("default").turns
    assert [t.assistant for t in turns] == [ANSWER, "Eight."]
    assert turns[0].thinking == THINKING and turns[1].content is None
    shell.ok("%%mistral\nThird")
    assert assistant_messages(fake) == [sent_back(), "Eight."]


def test_a_reasoning_model_heard_through_the_live_view(shell, fake, comms):  # noqa: F811
    fake.script(reasoning_reply(chunk_delay=0.01))
    shell.ok("%mistral config display=widget")
    run = shell.ok("%%mistral --reasoning-effort high --out t_answer\nWhat is 2 + 2?")
    messages = custom_messages(comms)
    kinds = [key for msg in messages for key in msg if key != "status"]
    assert kinds[0] == "think" and kinds.count("thought") == 1
    assert kinds.index("thought") <= min(kinds.index(k) for k in ("blocks", "tail", "append") if k in kinds)
    assert "".join(msg.get("think", "") for msg in messages) == THINKING
    statuses = [msg["status"] for msg in messages if "status" in msg]
    assert any("thinking for" in s for s in statuses[:-1])
    assert re.search(r"thought for \d+\.\d s · \d+ tokens", statuses[-1])
    state = ViewState(messages)
    assert "\n".join(state.blocks + [state.tail]).count("It is") == 1
    bundle = run.outputs[-1]
    assert DETAILS.match(bundle["text/html"]) and bundle["text/plain"] == ANSWER
    assert shell.ns["t_answer"] == ANSWER


def test_history_save_and_load_keep_the_thinking(shell, fake, tmp_path):
    fake.script(reasoning_reply())
    shell.ok("%%mistral --reasoning-effort high\nWhat is 2 + 2?")
    history = shell.ok("%mistral history").plain[0]
    assert f"(after {len(THINKING.split())} words of thinking)" in history and ANSWER in history
    path = tmp_path / "chats.json"
    shell.ok(f"%mistral save {path}")
    saved = json.loads(path.read_text())["chats"][0]["turns"][0]
    assert saved["assistant"] == ANSWER and saved["content"] == sent_back()
    shell.ok("%mistral reset")
    shell.ok(f"%mistral load {path}")
    shell.ok("%%mistral\nAnd doubled?")
    assert assistant_messages(fake) == [sent_back()]


def test_chat_files_saved_before_thinking_still_load(shell, fake, tmp_path):
    path = tmp_path / "old.json"
    turn = {"user": "q", "assistant": "a", "model": "m", "finish_reason": "stop", "usage": None, "interrupted": False}
    chat = {"name": "default", "system": None, "turns": [turn]}
    path.write_text(json.dumps({"format": "mistral-magic/chats", "version": 1, "chats": [chat]}))
    shell.ok(f"%mistral load {path}")
    shell.ok("%%mistral\nnext")
    assert assistant_messages(fake) == ["a"]
    shell.ok(f"%mistral save {path}")  # turns without thinking are written as before, for older versions
    assert json.loads(path.read_text())["chats"][0]["turns"][0] == turn


def test_a_malformed_content_in_a_chat_file_is_a_clear_error(shell, tmp_path):
    path = tmp_path / "bad.json"
    turn = {"user": "q", "assistant": "a", "content": "not a list of parts"}
    path.write_text(
        json.dumps({"format": "mistral-magic/chats", "version": 1, "chats": [{"name": "x", "turns": [turn]}]})
    )
    run = shell.run(f"%mistral load {path}")
    assert type(run.error) is UsageError and "bad.json is malformed" in str(run.error)


def test_the_reply_cache_keeps_the_thinking(shell, fake):
    fake.script(reasoning_reply())
    first = shell.ok("%%mistral --new --cache --reasoning-effort high\nWhat is 2 + 2?")
    again = shell.ok("%%mistral --new --cache --reasoning-effort high\nWhat is 2 + 2?")
    assert len(fake.requests) == 1  # the second answer came from the cache
    strip_footer = re.compile(r"<div style=.*</div>$")
    assert strip_footer.sub("", again.outputs[0]["text/html"]) == strip_footer.sub("", first.outputs[0]["text/html"])
    assert DETAILS.match(again.outputs[0]["text/html"]) and again.plain == [ANSWER]
    shell.ok("%%mistral\nAnd doubled?")
    assert assistant_messages(fake) == [sent_back()]


def test_a_cache_written_before_thinking_still_opens(tmp_path):
    db = sqlite3.connect(tmp_path / "replies.sqlite3")
    db.execute(
        "CREATE TABLE replies (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
        "finish_reason TEXT, usage TEXT, model TEXT, created REAL NOT NULL)"
    )
    db.execute("INSERT INTO replies VALUES ('old', 'an old answer', 'stop', NULL, 'm', 0)")
    db.commit()
    db.close()
    cache = ReplyCache(tmp_path)
    assert cache.get("old") == Completion("an old answer", "stop", None, "m")
    cache.put("new", Completion(ANSWER, "stop", None, "m", sent_back()))
    assert cache.get("new").thinking == THINKING and len(cache) == 2
    cache.close()


def test_a_stream_that_breaks_while_thinking_keeps_the_thinking_on_screen_and_is_not_retried(shell, fake):
    fake.script(Reply(text=ANSWER, thinking=["First ", "thoughts ", "then ", "more"], drop_after=2), Reply(text="x"))
    run = shell.run("%%mistral --reasoning-effort high\nWhat is 2 + 2?")
    assert type(run.error) is StreamError and "thinking received" in str(run.error)
    assert len(fake.requests) == 1
    details = DETAILS.match(run.outputs[-1]["text/html"])
    assert details and "First thoughts" in details.group(1) and "Incomplete" in run.outputs[-1]["text/plain"]
    assert shell.magics.session.store.get("default").turns == []


def test_an_interrupt_while_answering_keeps_the_thinking_in_the_history(shell, fake, interruptible):
    fake.script(Reply(text="one two three four five six", thinking=["Hm ", "ok."], chunk_delay=0.4))
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    run = shell.run("%%mistral --reasoning-effort high\nCount")
    timer.join()
    assert type(run.error) is ReplyInterrupted
    turn = shell.magics.session.store.get("default").turns[-1]
    assert turn.interrupted and turn.assistant.startswith("one") and turn.assistant != "one two three four five six"
    assert turn.content == sent_back("Hm ok.", turn.assistant)
    assert DETAILS.match(run.outputs[-1]["text/html"])
    shell.ok("%%mistral\nnext")
    assert assistant_messages(fake) == [sent_back("Hm ok.", turn.assistant)]


@pytest.mark.parametrize("name", sorted(HOSTILE_REPLIES))
def test_hostile_thinking_stays_inert(shell, fake, comms, name):  # noqa: F811
    hostile = HOSTILE_REPLIES[name]
    fake.script(Reply(text="Fine.", thinking=hostile + "\n\nend"), Reply(text="Fine.", thinking=hostile))
    shell.ok("%mistral config display=widget")
    live = shell.ok("%%mistral --once --reasoning-effort high\nq")
    for msg in custom_messages(comms):
        assert set(msg) <= {"blocks", "tail", "append", "code", "status", "think", "thought"}
        for html in msg.get("blocks", []):
            assert problems(html) == [], html
    shell.ok("%mistral config display=text")
    text = shell.ok("%%mistral --once --no-stream --reasoning-effort high\nq")
    for bundle in (live.outputs[-1], text.outputs[-1]):
        assert DETAILS.match(bundle["text/html"]) and problems(bundle["text/html"]) == [], bundle["text/html"]
        assert bundle["text/plain"] == "Fine."


def test_the_text_renderer_dims_the_thinking_in_a_terminal(monkeypatch):
    class Terminal:
        def __init__(self):
            self.written = []

        def write(self, text):
            self.written.append(text)

        def flush(self):
            pass

        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    now = [10.0]
    renderer = TextRenderer(None, clock=lambda: now[0])
    from mistral_magic.render.base import ReplyInfo

    renderer.start(ReplyInfo(model="m", chat="c"))
    renderer.think("Let me see")
    now[0] = 22.34
    renderer.feed("Four.")
    renderer.finish("Four.", answered())
    assert "".join(terminal.written) == f"Thinking…\n{DIM}Let me see{RESET}\n(thought for 12.3 s)\n\nFour.\n"


def test_content_parts_merge_streamed_thinking_and_keep_what_is_not_text():
    parts = ContentParts()
    reference = {"type": "reference", "reference_ids": [1]}
    pieces = [
        [{"type": "thinking", "thinking": [{"type": "text", "text": "a"}], "signature": None, "closed": False}],
        [{"type": "thinking", "thinking": [{"type": "text", "text": "b"}, reference], "closed": False}],
        [{"type": "thinking", "thinking": [{"type": "text", "text": "c"}], "signature": "sig", "closed": True}],
        [{"type": "text", "text": "X"}],
        None,
        "Y",
    ]
    assert [parts.add(p) for p in pieces] == [("a", ""), ("b", ""), ("c", ""), ("", "X"), ("", ""), ("", "Y")]
    assert parts.thinking == "abc"
    assert parts.message_content("XY") == [
        {
            "type": "thinking",
            "thinking": [{"type": "text", "text": "ab"}, reference, {"type": "text", "text": "c"}],
            "signature": "sig",
            "closed": True,
        },
        {"type": "text", "text": "XY"},
    ]
    assert ContentParts().message_content("plain") is None


def test_json_and_annotate_read_the_answer_alone(shell, fake):
    thinking = 'Maybe {"label": "negative"}? No: the review is glowing.'
    fake.script(Reply(text='{"label": "positive"}', thinking=thinking))
    shell.ok("%%mistral --json --out t_parsed --reasoning-effort high\nLabel: great!")
    assert shell.ns["t_parsed"] == {"label": "positive"}
    import mistral_magic

    fake.script(Reply(text="yes", thinking=thinking), Reply(text="no", thinking=thinking))
    run = mistral_magic.annotate(["a", "b"], "Is {item} a vowel?", workers=1, reasoning_effort="high", cache=False)
    assert list(run) == ["yes", "no"]
    assert [r.json()["reasoning_effort"] for r in fake.requests[1:]] == ["high", "high"]


def test_local_mode_gets_the_answers_text_alone(shell, fake):
    """llama.cpp's server rejects thinking parts: a chat that began with a magistral model and
    goes on with %mistral local sends it the answers' text."""
    from mistral_magic.local.mode import LOCAL_SOURCE

    fake.script(reasoning_reply())
    shell.ok("%%mistral --reasoning-effort high\nWhat is 2 + 2?")
    shell.magics.set_by(LOCAL_SOURCE, base_url=fake.url + "/v1")  # what %mistral local sets
    shell.ok("%%mistral\nAnd doubled?")
    assert assistant_messages(fake) == [ANSWER]
    shell.magics.unset_by(LOCAL_SOURCE)
    shell.ok("%%mistral\nThird")
    assert assistant_messages(fake)[0] == sent_back()


ODD_THINKING = [
    [
        {
            "type": "thinking",
            "thinking": [{"type": "text", "text": "Two "}, {"type": "text", "text": 5}, {"junk": True}, "and two"],
            "signature": {"not": "a string"},
            "closed": "yes",
            "extra": "field",
        }
    ],
    [{"type": "thinking", "thinking": " make four.", "closed": True}, {"type": "text", "text": "Four."}],
]


def test_thinking_parts_of_odd_shapes_are_kept_and_sent_back_well_formed(shell, fake):
    pieces = [event(chunk(content)) for content in ODD_THINKING]
    fake.script(RawReply([*pieces, event(chunk("", "stop")), b"data: [DONE]\n\n"]))
    shell.ok("%%mistral --reasoning-effort high\nWhat is 2 + 2?")
    shell.ok("%%mistral --reasoning-effort high\nAnd doubled?")  # the fake server checks the parts sent back
    assert assistant_messages(fake) == [sent_back("Two and two make four.", "Four.")]


def test_odd_parts_in_a_loaded_chat_file_are_not_sent_back(shell, fake, tmp_path):
    odd = [{"type": "thinking", "thinking": [{"type": "text", "text": 5}]}, {"type": "text", "text": "a"}]
    turn = {"user": "q", "assistant": "a", "content": odd}
    path = tmp_path / "odd.json"
    chats = [{"name": "default", "turns": [turn]}]
    path.write_text(json.dumps({"format": "mistral-magic/chats", "version": 1, "chats": chats}))
    shell.ok(f"%mistral load {path}")
    shell.ok("%%mistral\nnext")
    assert assistant_messages(fake) == ["a"]


LATE = [
    [{"type": "text", "text": "The answer"}],
    [{"type": "thinking", "thinking": [{"type": "text", "text": "Wait, let me check."}], "closed": True}],
    " is 4.",
]


def late_thinking_reply() -> RawReply:
    return RawReply([*(event(chunk(content)) for content in LATE), event(chunk("", "stop")), b"data: [DONE]\n\n"])


def test_thinking_after_the_answer_began_is_kept_out_of_the_answer_as_text(shell, fake):
    fake.script(late_thinking_reply())
    run = shell.ok("%%mistral --reasoning-effort high\nWhat is 2 + 2?")
    assert "The answer is 4." in run.stdout
    assert run.stdout.index("Wait, let me check.") > run.stdout.index("The answer is 4.")
    [bundle] = run.outputs
    assert bundle["text/plain"] == "The answer is 4."
    details = DETAILS.match(bundle["text/html"])
    assert details and "Wait, let me check." in details.group(1)


def test_thinking_after_the_answer_began_goes_to_the_live_views_thinking_section_collapsed(comms):  # noqa: F811
    clock, frontend = Clock(), Frontend()
    renderer = frontend.renderer(clock)
    renderer.start(ReplyInfo(model="m", chat="c"))
    for seconds, piece, kind in [(1, "The answer", "feed"), (1, "Wait, let me check.", "think"), (2, " is 4.", "feed")]:
        clock.now += seconds
        getattr(renderer, kind)(piece)
    renderer.finish("The answer is 4.", answered())
    messages = custom_messages(comms)
    state = ViewState(messages)
    assert "Wait" not in "".join(state.blocks) + state.tail
    assert "".join(msg.get("think", "") for msg in messages) == "Wait, let me check."
    thought = next(number for number, msg in enumerate(messages) if msg.get("thought"))
    assert thought <= next(number for number, msg in enumerate(messages) if "think" in msg)  # shown collapsed
    assert not any("thinking for" in msg.get("status", "") for msg in messages)
    assert "Wait, let me check." in frontend.published[-1]["text/html"]
