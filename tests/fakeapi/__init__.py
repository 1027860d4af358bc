"""A faithful local fake of the Mistral chat-completions API, for end-to-end tests: protocol shapes
(:mod:`.shapes`) and the HTTP server that serves them (:mod:`.server`)."""

from .batch import FakeBatch
from .floods import Flood
from .server import FakeChatServer, load_script, main
from .shapes import (
    CapturedRequest,
    ErrorReply,
    Hang,
    RawReply,
    Reply,
    delta_chunk,
    echo_reply,
    last_user_message,
    reply_from_dict,
    split_words,
    sse_event,
)

__all__ = [
    "CapturedRequest",
    "ErrorReply",
    "FakeBatch",
    "FakeChatServer",
    "Flood",
    "Hang",
    "RawReply",
    "Reply",
    "delta_chunk",
    "echo_reply",
    "last_user_message",
    "load_script",
    "main",
    "reply_from_dict",
    "split_words",
    "sse_event",
]
