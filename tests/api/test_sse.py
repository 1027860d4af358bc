"""The SSE decoder against the WHATWG rules listed in docs/mistral-api.md (WHATWG's server-sent events)."""

from __future__ import annotations

import pytest

from mistral_magic.api.sse import SSEDecoder


def decode(*chunks: bytes) -> list[str]:
    decoder = SSEDecoder()
    events: list[str] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


STREAM = 'data: {"a":1}\n\ndata:{"b":2}\n\n: keep-alive\n\ndata: [DONE]\n\n'


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending_gives_the_same_events(newline):
    raw = STREAM.replace("\n", newline).encode()
    assert decode(raw) == ['{"a":1}', '{"b":2}', "[DONE]"]
    assert decode(*bytewise(raw)) == ['{"a":1}', '{"b":2}', "[DONE]"]


def test_crlf_split_across_chunks_is_one_line_end():
    assert decode(b"data: x\r", b"\n\r", b"\ndata: y\r\n\r\n") == ["x", "y"]


def test_cr_then_cr_is_a_blank_line():
    assert decode(b"data: x\r", b"\r") == ["x"]


def test_bom_at_start_is_dropped_only_at_start():
    assert decode(b"\xef\xbb\xbfdata: x\n\n") == ["x"]
    assert decode(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == ["x"]
    assert decode(b"data: x\n\n\xef\xbb\xbfdata: y\n\n") == ["x"]  # a later BOM makes an unknown field


def test_comments_and_unknown_fields_are_ignored():
    assert decode(b": hello\nevent: message\nid: 7\nretry: 10\ndata: x\n\n") == ["x"]


def test_multiline_data_is_joined_with_newline():
    assert decode(b"data: first\ndata: second\ndata:third\n\n") == ["first\nsecond\nthird"]


def test_only_one_leading_space_is_removed():
    assert decode(b"data:  two spaces\n\n") == [" two spaces"]
    assert decode(b"data:nospace\n\n") == ["nospace"]


def test_field_without_colon_and_event_without_data():
    assert decode(b"data\n\n") == [""]
    assert decode(b"event: ping\n\n") == []


def test_unterminated_last_event_is_not_dispatched():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n\ndata: partial") == ["x"]
    assert decoder.has_pending_data
    assert decoder.feed(b"\n") == []
    assert decoder.has_pending_data


def test_multibyte_characters_split_across_chunks():
    raw = 'data: {"c":"héllo → 世界 🎉"}\n\n'.encode()
    assert decode(*bytewise(raw)) == ['{"c":"héllo → 世界 🎉"}']


def test_many_events_in_one_chunk_come_out_in_order():
    raw = b"".join(b"data: %d\n\n" % i for i in range(1000))
    assert decode(raw) == [str(i) for i in range(1000)]


def test_error_fields_are_kept_apart_from_the_data():
    """Issue 11 item 7: llama.cpp's ``error:`` field is not data, but the caller must see it."""
    decoder = SSEDecoder()
    events = [*decoder.feed(b'data: {"a":1}\n\nerror: {"message": "too long"}\n\n'), *decoder.feed(b"data: [DONE]\n\n")]
    assert events == ['{"a":1}', "[DONE]"]
    assert decoder.errors == ['{"message": "too long"}']
