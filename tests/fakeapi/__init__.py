"""A faithful local fake of the Mistral chat-completions API, for end-to-end tests: protocol shapes
(:mod:`.shapes`) and the HTTP server that serves them (:mod:`.server`)."""

from .server import FakeChatServer, load_script, main
from .shapes import (
    CapturedRequest,
    ErrorReply,
    Hang,
    RawReply,
    Reply,
    echo_reply,
    last_user_message,
    reply_from_dict,
    split_words,
)

__all__ = [
    "CapturedRequest",
    "ErrorReply",
    "FakeChatServer",
    "Hang",
    "RawReply",
    "Reply",
    "echo_reply",
    "last_user_message",
    "load_script",
    "main",
    "reply_from_dict",
    "split_words",
]
