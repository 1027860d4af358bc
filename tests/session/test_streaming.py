"""The SSE stream as servers really send it, end to end through the magic."""

from __future__ import annotations

import json
import threading
import time

from mistral_magic import ReplyInterrupted, StreamError
from mistral_magic.usage import TokenUsage
from tests.fakeapi import RawReply, Reply


def event(obj) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chunk(content=None, finish=None, **extra) -> dict:
    delta = {} if content is ... else {"content": content}
    return {
        "id": "x",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


class RecordingRenderer:
    """A renderer that notes when each delta arrives."""

    def __init__(self):
        self.fed: list[tuple[float, str]] = []
        self.finished = None

    def start(self, info):
        self.info = info

    def notice(self, message):
        pass

    def think(self, text):
        self.fed.append((time.monotonic(), f"[thinking] {text}"))

    def feed(self, text):
        self.fed.append((time.monotonic(), text))

    def finish(self, text, provenance):
        self.finished = (text, provenance.finish_reason, provenance.usage)

    def fail(self, text, error, *, interrupted=False, provenance=None):
        self.failed = (text, error)


def test_text_reaches_the_renderer_as_it_arrives(shell, fake):
    from mistral_magic.session import TurnOptions

    fake.script(Reply(text="a b c d e", chunk_delay=0.15))
    renderer = RecordingRenderer()
    session = shell.magics.session
    session.ask("hi", shell.magics.settings(), TurnOptions(), renderer)
    assert [text for _, text in renderer.fed] == ["a", " b", " c", " d", " e"]
    # Four 0.15 s gaps on the server: delivered one by one, the deltas are spread over time
    # (a client that buffered the reply would hand them over all at once).
    assert renderer.fed[-1][0] - renderer.fed[0][0] >= 0.3
    assert renderer.finished[0] == "a b c d e" and renderer.finished[1] == "stop"


def test_crlf_bom_comments_spacing_and_unknown_fields(shell, fake):
    body = (
        b"\xef\xbb\xbf: keep-alive\r\n\r\n"
        + b'data:{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"p":"abc"}\r\n\r\n'
        + b'data: {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}], "p": "xyzxyz"}\r\n\r\n'
        + b": comment\r\n"
        + b'data: {"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}\r\n\r\n'
        + b"data: [DONE]\r\n\r\n"
    )
    fake.script(RawReply(pieces=[body[i : i + 1] for i in range(len(body))]))
    run = shell.ok("%%mistral\nhi")
    assert run.markdown == ["Hello"]


def test_utf8_split_across_one_byte_writes(shell, fake):
    text = "héllo → 世界 🎉"
    body = event(chunk(text)) + event(chunk("", "stop")) + b"data: [DONE]\n\n"
    fake.script(RawReply(pieces=[body[i : i + 1] for i in range(len(body))]))
    run = shell.ok("%%mistral\nhi")
    assert run.markdown == [text]


def test_multiline_data_event(shell, fake):
    obj = json.dumps(chunk("multi", "stop"), indent=1).encode()
    body = b"".join(b"data: " + line + b"\n" for line in obj.splitlines()) + b"\n" + b"data: [DONE]\n\n"
    fake.script(RawReply(pieces=[body]))
    assert shell.ok("%%mistral\nhi").markdown == ["multi"]


def test_content_null_missing_and_typed_parts(shell, fake):
    body = (
        event(chunk(None))
        + event(chunk(...))
        + event(
            chunk(
                [
                    {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
                    {"type": "text", "text": "Answer"},
                ]
            )
        )
        + event(chunk([{"type": "text", "text": "!"}], "stop"))
        + b"data: [DONE]\n\n"
    )
    fake.script(RawReply(pieces=[body]))
    assert shell.ok("%%mistral\nhi").markdown == ["Answer!"]


def test_usage_only_last_chunk_with_empty_choices(shell, fake):
    body = (
        event(chunk("Hi", "stop"))
        + event(
            {
                "id": "x",
                "object": "chat.completion.chunk",
                "choices": [],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        )
        + b"data: [DONE]\n\n"
    )
    fake.script(RawReply(pieces=[body]))
    shell.ok("%%mistral\nhi")
    turn = shell.magics.session.store.get("default").turns[-1]
    assert turn.usage == TokenUsage(prompt_tokens=3, completion_tokens=1)
    assert turn.finish_reason == "stop"


def test_error_object_inside_a_200_stream(shell, fake):
    body = event(chunk("Partial ")) + event({"object": "error", "message": "Internal overload", "type": "server_error"})
    fake.script(RawReply(pieces=[body]))
    run = shell.run("%%mistral\nhi")
    assert type(run.error) is StreamError
    assert "Internal overload" in str(run.error)
    assert run.error.partial == "Partial "
    assert run.markdown[0].startswith("Partial")
    assert shell.magics.session.store.get("default").turns == []


def test_error_key_inside_a_200_stream(shell, fake):
    fake.script(RawReply(pieces=[event({"error": {"message": "context too long"}})]))
    run = shell.run("%%mistral\nhi")
    assert "context too long" in str(run.error)


def test_stream_without_done_is_an_error_that_keeps_the_text(shell, fake):
    fake.script(RawReply(pieces=[event(chunk("Half an ans")), event(chunk("wer"))]))
    run = shell.run("%%mistral\nhi")
    assert "[DONE] missing" in str(run.error)
    assert run.error.partial == "Half an answer"
    assert "Half an answer" in run.markdown[0]


def test_dropped_connection_mid_stream_keeps_the_text_and_is_not_retried(shell, fake):
    fake.script(Reply(text="one two three four", drop_after=2))
    run = shell.run("%%mistral\nhi")
    assert "connection was lost" in str(run.error)
    assert run.error.partial == "one two"
    assert len(fake.requests) == 1


def test_malformed_chunk(shell, fake):
    fake.script(RawReply(pieces=[event(chunk("ok")) + b"data: {not json\n\n"]))
    run = shell.run("%%mistral\nhi")
    assert "malformed chunk" in str(run.error)


def test_finish_reason_length_shows_a_notice(shell, fake):
    fake.script(Reply(text="cut sho", finish_reason="length"))
    run = shell.ok("%%mistral --max-tokens 2\nhi")
    assert "max_tokens" in run.markdown[0] and "cut" in run.markdown[0]
    fake.script(Reply(text="full", finish_reason="model_length"))
    run = shell.ok("%%mistral\nhi")
    assert "context window" in run.plain[0]


def test_unknown_finish_reason_is_accepted(shell, fake):
    fake.script(Reply(text="fine", finish_reason="something_new"))
    run = shell.ok("%%mistral\nhi")
    assert run.markdown == ["fine"]
    assert shell.magics.session.store.get("default").turns[-1].finish_reason == "something_new"


def test_interrupt_keeps_the_partial_reply_on_screen_and_in_history(shell, fake, interruptible):
    import os
    import signal

    fake.script(Reply(text="one two three four five six", chunk_delay=0.4))
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    run = shell.run("%%mistral\nhi")
    timer.join()
    assert type(run.error) is ReplyInterrupted
    assert "interrupted" in run.stdout
    turn = shell.magics.session.store.get("default").turns[-1]
    assert turn.interrupted and turn.assistant and "one two three four five six".startswith(turn.assistant)
    assert run.markdown[0].startswith(turn.assistant) and "Interrupted" in run.markdown[0]
    assert turn.assistant != "one two three four five six"  # the stream was closed, not read to the end
    run = shell.ok("%mistral history")
    assert "(interrupted)" in run.plain[0]
    shell.ok("%%mistral\nnext")  # the kernel is ready and the conversation goes on
