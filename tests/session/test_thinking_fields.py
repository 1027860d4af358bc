"""Thinking from other OpenAI-compatible servers: vLLM, llama.cpp's server and DeepSeek send it as
``reasoning_content``, Ollama as ``reasoning``, beside a plain-text content. It is shown and kept like
Mistral's thinking parts, and never sent back (those servers take plain text in an assistant message)."""

from __future__ import annotations

import json
import re

import pytest

from tests.fakeapi import Reply
from tests.render.test_live_view import comms, custom_messages  # noqa: F401 - comms is a fixture
from tests.session.test_thinking import ANSWER, DETAILS, THINKING, assistant_messages

FIELDS = ["reasoning_content", "reasoning"]


def field_reply(field: str, text: str = ANSWER, **kwargs) -> Reply:
    return Reply(text=text, thinking=THINKING, reasoning_field=field, **kwargs)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "no-stream"])
@pytest.mark.parametrize("field", FIELDS)
def test_thinking_in_a_reasoning_field_is_shown_and_never_sent_back(shell, fake, field, stream):
    fake.script(field_reply(field))
    run = shell.ok(f"%%mistral --out t_answer{'' if stream else ' --no-stream'}\nWhat is 2 + 2?")
    [bundle] = run.outputs
    assert bundle["text/plain"] == ANSWER and shell.ns["t_answer"] == ANSWER
    details = DETAILS.match(bundle["text/html"])
    assert details and "Adding <em>two</em> and two gives four" in details.group(1)
    shell.ok("%%mistral\nAnd doubled?")
    assert assistant_messages(fake) == [ANSWER]  # plain text: the thinking stays here


def test_the_live_view_streams_a_reasoning_field_as_thinking(shell, fake, comms):  # noqa: F811
    fake.script(field_reply("reasoning_content", chunk_delay=0.01))
    shell.ok("%mistral config display=widget")
    shell.ok("%%mistral\nWhat is 2 + 2?")
    messages = custom_messages(comms)
    kinds = [key for msg in messages for key in msg if key != "status"]
    assert kinds[0] == "think" and kinds.count("thought") == 1
    assert "".join(msg.get("think", "") for msg in messages) == THINKING
    assert re.search(r"thought for \d+\.\d s", [msg["status"] for msg in messages if "status" in msg][-1])


def test_saved_and_loaded_the_thinking_stays_shown_only(shell, fake, tmp_path):
    fake.script(field_reply("reasoning"))
    shell.ok("%%mistral\nWhat is 2 + 2?")
    assert f"(after {len(THINKING.split())} words of thinking)" in shell.ok("%mistral history").plain[0]
    path = tmp_path / "chats.json"
    shell.ok(f"%mistral save {path}")
    [thinking_part, text_part] = json.loads(path.read_text())["chats"][0]["turns"][0]["content"]
    assert thinking_part["shown_only"] is True and text_part == {"type": "text", "text": ANSWER}
    shell.ok("%mistral reset")
    shell.ok(f"%mistral load {path}")
    shell.ok("%%mistral\nAnd doubled?")
    assert assistant_messages(fake) == [ANSWER]


def test_an_each_run_keeps_the_answer_alone(shell, fake):
    fake.default_reply = lambda request: field_reply("reasoning_content", text='{"n": 4}')
    shell.ns["t_items"] = ["a", "b"]
    shell.ok("%%mistral --each t_items --json --out t_out\n{item}")
    assert shell.ns["t_out"] == [{"n": 4}, {"n": 4}]


def test_an_empty_or_missing_reasoning_field_is_no_thinking(shell, fake):
    fake.script(Reply(text=ANSWER))
    run = shell.ok("%%mistral\nplain")
    assert not DETAILS.match(run.outputs[0]["text/html"])
    shell.ok("%%mistral\nnext")
    assert assistant_messages(fake) == [ANSWER]
