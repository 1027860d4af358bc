"""Issue 11, item 11: JSON of unexpected shapes is one line when unusable, and ignored when optional."""

from __future__ import annotations

import json

import pytest

from mistral_magic import BadResponseError, StreamError
from tests.fakeapi import RawReply
from tests.fakeapi import delta_chunk as chunk
from tests.fakeapi import sse_event as event

DONE = b"data: [DONE]\n\n"
DEEP = "[" * 100_000 + "]" * 100_000


def body(text="Whole.", *, message=None, choice=None, **extra) -> bytes:
    message = {"role": "assistant", "content": text} if message is None else message
    choice = {"index": 0, "message": message, "finish_reason": "stop"} if choice is None else choice
    return json.dumps({"id": "x", "object": "chat.completion", "model": "m", "choices": [choice], **extra}).encode()


def turns(shell):
    return shell.magics.session.store.get("default").turns


def assert_one_line_about_the_shape(run, kind=StreamError):
    assert type(run.error) is kind, repr(run.error)
    message = str(run.error)
    assert "\n" not in message and "Traceback" not in run.everything
    assert "AttributeError" not in message and "TypeError" not in message and "RecursionError" not in message
    assert any(why in message for why in ("unexpected shape", "malformed", "did not answer with JSON")), message


UNUSABLE_CHUNKS = {
    "choices a string": b'data: {"choices": "nope"}\n\n',
    "choices [null]": b'data: {"choices": [null]}\n\n',
    "delta a string": b'data: {"choices": [{"index": 0, "delta": "text"}]}\n\n',
    "deep nesting": b'data: {"choices": ' + DEEP.encode() + b"}\n\n",
}


@pytest.mark.parametrize("bad", UNUSABLE_CHUNKS.values(), ids=UNUSABLE_CHUNKS.keys())
def test_an_unusable_chunk_is_one_line_keeping_the_text(shell, fake, bad):
    fake.script(RawReply([event(chunk("Some text. ")), bad, event(chunk("", "stop")), DONE]))
    run = shell.run("%%mistral\nhi")
    assert_one_line_about_the_shape(run)
    assert run.error.partial == "Some text. " and not turns(shell)
    shell.ok("%%mistral\nnext")  # the conversation goes on
    assert len(turns(shell)) == 1


MALFORMED_OPTIONAL = {
    "usage a string": {"usage": "lots"},
    "usage with text counts": {"usage": {"prompt_tokens": "many", "completion_tokens": [1]}},
    "model an object": {"model": {"name": "m"}},
}


@pytest.mark.parametrize("extra", MALFORMED_OPTIONAL.values(), ids=MALFORMED_OPTIONAL.keys())
def test_malformed_optional_fields_in_a_stream_are_ignored(shell, fake, extra):
    fake.script(
        RawReply([event(chunk("Fine.", **extra)), event({**chunk("", 7), **extra}), event(chunk("", "stop")), DONE])
    )
    shell.ok("%%mistral\nhi")
    turn = turns(shell)[-1]
    assert turn.assistant == "Fine." and turn.finish_reason == "stop" and isinstance(turn.model, str)
    assert turn.usage is None or all(isinstance(v, int) for v in turn.usage.to_dict().values())
    shell.ok("%mistral usage")


def test_a_numeric_finish_reason_is_ignored(shell, fake):
    fake.script(RawReply([event(chunk("Fine.", 7)), DONE]))
    shell.ok("%%mistral\nhi")
    assert turns(shell)[-1].assistant == "Fine." and turns(shell)[-1].finish_reason is None


UNUSABLE_BODIES = {
    "choices a string": json.dumps({"choices": "nope"}).encode(),
    "choices [null]": json.dumps({"choices": [None]}).encode(),
    "message a string": body(message="Whole."),
    "deep nesting": b'{"choices": ' + DEEP.encode() + b"}",
}


@pytest.mark.parametrize("bad", UNUSABLE_BODIES.values(), ids=UNUSABLE_BODIES.keys())
def test_an_unusable_body_is_one_line(shell, fake, bad):
    fake.script(RawReply([bad], content_type="application/json"))
    run = shell.run("%%mistral --no-stream\nhi")
    assert_one_line_about_the_shape(run, BadResponseError)
    assert not turns(shell)


def test_malformed_optional_fields_in_a_body_are_ignored(shell, fake):
    fake.script(RawReply([body(usage="lots", model=["m"], choice=None)], content_type="application/json"))
    shell.ok("%%mistral --no-stream\nhi")
    turn = turns(shell)[-1]
    assert turn.assistant == "Whole." and isinstance(turn.model, str)
    bad_reason = {"index": 0, "message": {"role": "assistant", "content": "Two."}, "finish_reason": 3}
    fake.script(RawReply([body(choice=bad_reason, usage={"prompt_tokens": "x"})], content_type="application/json"))
    shell.ok("%%mistral --no-stream\nagain")
    assert turns(shell)[-1].assistant == "Two." and turns(shell)[-1].finish_reason is None
    shell.ok("%mistral usage")


def test_one_bad_usage_does_not_abort_an_each_run(shell, fake):
    """A --each item whose reply has a malformed usage is answered like the others; an unusable one is an error entry."""
    fake.add_rule("odd usage", RawReply([body("Odd.", usage="lots")], content_type="application/json"))
    fake.add_rule("bad shape", RawReply([json.dumps({"choices": "nope"}).encode()], content_type="application/json"))
    shell.ns["t_rows"] = ["first", "odd usage", "bad shape", "last"]
    run = shell.ok("%%mistral --each t_rows --out t_out\n{item}")
    assert shell.ns["t_out"] == ["Echo: first", "Odd.", None, "Echo: last"]
    assert "3 answered" in run.stdout and "1 failed" in run.stdout
    errors = shell.magics.session.last_run.errors
    assert len(errors) == 1 and "unexpected shape" in errors[0].error
    shell.ok("%mistral usage")
