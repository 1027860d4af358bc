"""Issue 11, items 5-8: how real servers end a stream, report errors, or answer a streamed request."""

from __future__ import annotations

import json

import pytest

from mistral_magic import BadResponseError, StreamError
from mistral_magic.usage import TokenUsage
from tests.fakeapi import RawReply, Reply
from tests.fakeapi import delta_chunk as chunk
from tests.fakeapi import sse_event as event

DONE = b"data: [DONE]\n\n"


def last_turn(shell):
    turns = shell.magics.session.store.get("default").turns
    return turns[-1] if turns else None


def test_a_stream_that_ends_after_its_finish_reason_without_done_is_complete(shell, fake):
    """Item 5: ik_llama.cpp, older llama.cpp, TGI and mistral.rs end the body after the finish_reason chunk."""
    fake.script(
        Reply(text="All there.", done=False), Reply(text="Cut by max_tokens", finish_reason="length", done=False)
    )
    run = shell.ok("%%mistral --out t_reply\nhi")
    assert shell.ns["t_reply"] == "All there." and run.markdown == ["All there."]
    assert last_turn(shell).assistant == "All there." and last_turn(shell).finish_reason == "stop"
    shell.ok("%%mistral\nmore")
    assert last_turn(shell).finish_reason == "length" and len(shell.magics.session.store.get("default").turns) == 2


def test_a_stream_that_ends_without_finish_reason_or_done_is_still_incomplete(shell, fake):
    """Item 5 (control): with neither a finish_reason nor [DONE], the reply was cut."""
    fake.script(RawReply([event(chunk("Half a ")), event(chunk("reply"))]))
    run = shell.run("%%mistral\nhi")
    assert type(run.error) is StreamError and "[DONE] missing" in str(run.error)
    assert last_turn(shell) is None


@pytest.mark.parametrize("empty", [None, {}, "", []])
def test_an_empty_error_field_in_a_chunk_is_not_an_error(shell, fake, empty):
    """Item 6: ``"error": null`` (or ``{}``) rides along in every chunk of some servers."""
    fake.script(RawReply([event(chunk("Fine ", error=empty)), event(chunk("answer", "stop", error=empty)), DONE]))
    shell.ok("%%mistral\nhi")
    assert last_turn(shell).assistant == "Fine answer"


def test_an_empty_error_field_in_a_json_body_is_not_an_error(shell, fake):
    """Item 6, ``--no-stream``: the same field in a full completion."""
    body = {
        "id": "x",
        "object": "chat.completion",
        "model": "m",
        "error": None,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Whole."}, "finish_reason": "stop"}],
    }
    fake.script(RawReply([json.dumps(body).encode()], content_type="application/json"))
    shell.ok("%%mistral --no-stream\nhi")
    assert last_turn(shell).assistant == "Whole."


def test_an_error_in_a_chunk_is_still_an_error(shell, fake):
    """Item 6 (control): a non-empty error stays one."""
    fake.script(RawReply([event(chunk("Part ")), event({"error": {"message": "overloaded"}}), DONE]))
    run = shell.run("%%mistral\nhi")
    assert type(run.error) is StreamError and "overloaded" in str(run.error)
    assert last_turn(shell) is None


def test_an_error_sse_field_before_done_is_an_error_with_the_servers_message(shell, fake):
    """Item 7: llama.cpp writes ``error: {...}`` (an SSE field, not data) then ``[DONE]``."""
    message = "the request exceeds the available context size, try increasing it"
    line = json.dumps({"code": 400, "message": message, "type": "exceed_context_size_error"})
    fake.script(RawReply([f"error: {line}\n\n".encode(), DONE]))
    run = shell.run("%%mistral\nhi")
    assert type(run.error) is StreamError, run.error
    assert message in str(run.error) and str(run.error).count("\n") == 0
    assert last_turn(shell) is None


def test_an_error_sse_field_after_some_text_keeps_the_text_and_fails(shell, fake):
    """Item 7: the field after part of the reply (then [DONE] in the same write)."""
    line = json.dumps({"code": 500, "message": "slot unavailable"})
    fake.script(RawReply([event(chunk("Begun ")) + f"error: {line}\n\n".encode() + DONE]))
    run = shell.run("%%mistral\nhi")
    assert type(run.error) is StreamError and "slot unavailable" in str(run.error)
    assert run.error.partial == "Begun "
    assert last_turn(shell) is None


def full_completion(text: str) -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "model": "served-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
    }


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "text/event-stream"])
def test_a_full_completion_to_a_streamed_request_is_read_as_one(shell, fake, content_type):
    """Item 8: a server that ignores ``stream: true`` answers with a whole completion (labelled, or sniffed)."""
    fake.script(RawReply([b"\n" + json.dumps(full_completion("Not streamed.")).encode()], content_type=content_type))
    run = shell.ok("%%mistral\nhi")
    assert run.markdown == ["Not streamed."]
    turn = last_turn(shell)
    assert turn.assistant == "Not streamed." and turn.model == "served-model" and turn.finish_reason == "stop"
    assert turn.usage == TokenUsage(prompt_tokens=4, completion_tokens=2)


@pytest.mark.parametrize(
    "body",
    [{"error": "Model is not loaded. Load it in LM Studio first."}, {"error": {"message": "Model is not loaded."}}],
)
def test_an_error_body_to_a_streamed_request_is_the_servers_error(shell, fake, body):
    """Item 8: LM Studio answers a streamed request with a 200 ``{"error": "..."}`` body."""
    fake.script(RawReply([json.dumps(body).encode()], content_type="application/json"))
    run = shell.run("%%mistral\nhi")
    assert type(run.error) is BadResponseError, run.error
    assert "Model is not loaded" in str(run.error) and "[DONE]" not in str(run.error)
    assert last_turn(shell) is None
