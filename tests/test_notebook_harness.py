"""The nbval harness applies clear_output the way notebook frontends do."""

from __future__ import annotations

from tests.support.notebook_harness import apply_clear_output


def msg(kind: str, **content) -> dict:
    return {"msg_type": kind, "content": content, "parent_header": {"msg_id": "a"}}


def test_clear_output_with_wait_drops_earlier_outputs_when_the_next_one_arrives():
    messages = [
        msg("status", execution_state="busy"),
        msg("stream", name="stdout", text="streamed "),
        msg("stream", name="stdout", text="text"),
        msg("clear_output", wait=True),
        msg("display_data", data={"text/plain": "final"}),
        msg("status", execution_state="idle"),
    ]
    kept = apply_clear_output(messages)
    assert [m["msg_type"] for m in kept] == ["status", "display_data", "status"]


def test_clear_output_without_wait_clears_at_once_and_later_outputs_stay():
    messages = [msg("stream", text="a"), msg("clear_output", wait=False), msg("stream", text="b")]
    assert [m["content"]["text"] for m in apply_clear_output(messages)] == ["b"]


def test_wait_without_a_later_output_keeps_what_was_shown():
    messages = [msg("stream", text="a"), msg("clear_output", wait=True), msg("status", execution_state="idle")]
    assert [m["msg_type"] for m in apply_clear_output(messages)] == ["stream", "status"]
