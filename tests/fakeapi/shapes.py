"""Protocol shapes of the fake API, written from docs/mistral-api.md: the replies a test scripts, the request
validation and error bodies Mistral sends, and model-list entries. The server (:mod:`.server`) serves
them; new endpoints (files, batch jobs) put their shapes here too.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field, fields
from http import HTTPStatus
from typing import Any

from .vision import image_urls, user_content_errors

CHAT_PATHS = ("/chat/completions", "/v1/chat/completions")
MODELS_PATHS = ("/models", "/v1/models")

# Top-level request fields the public Mistral API accepts; anything else is a 422.
ALLOWED_FIELDS = frozenset(
    "model messages temperature top_p max_tokens stream stop random_seed response_format "
    "presence_penalty frequency_penalty n safe_prompt tools tool_choice prediction "
    "parallel_tool_calls reasoning_effort".split()
)
REASONING_EFFORTS = ("high", "none")
# The keys of an assistant message's content parts (a reasoning model's thinking sent back).
PART_KEYS = {"text": {"type", "text"}, "thinking": {"type", "thinking", "closed", "signature"}}

PAD_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" * 2


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


@dataclass
class CapturedRequest:
    """One HTTP request as the server received it (header names lower-cased); ``peer``: the client's
    (host, port), the same for requests sent over one kept-alive connection."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)
    peer: tuple[str, int] | None = None

    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError when it is not JSON)."""
        return json.loads(self.body)


@dataclass
class Reply:
    """A successful completion. Served as SSE when the request has "stream": true, else as one JSON body.

    When ``chunks`` is given, the content is ``"".join(chunks)`` (``text`` is then ignored).
    ``thinking`` (a string split into words, or a list of chunks) makes it a reasoning model's
    reply in Mistral's shapes: streamed, lists of thinking parts, then a list with the closing
    thinking part and the first text part, then plain strings; not streamed, a content list.
    With ``reasoning_field``, the thinking comes in that field instead, as other OpenAI-compatible
    servers send it: streamed, deltas ``{field: piece}`` then plain content; not streamed, a
    ``message[field]`` beside a plain-text content.
    """

    text: str = "Hello!"
    chunks: list[str] | None = None
    thinking: str | list[str] | None = None
    reasoning_field: str | None = None  # "reasoning_content" (vLLM, llama.cpp) or "reasoning" (Ollama)
    finish_reason: str = "stop"
    usage: dict | None = None
    usage_in_separate_chunk: bool = False
    model: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    role_chunk: bool = True
    padding: bool = True
    done: bool = True
    drop_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def pieces(self) -> list[str]:
        """The content deltas: ``chunks``, or ``text`` split into words keeping spaces."""
        if self.chunks is not None:
            return list(self.chunks)
        return split_words(self.text)

    def thinking_pieces(self) -> list[str]:
        if self.thinking is None:
            return []
        return split_words(self.thinking) if isinstance(self.thinking, str) else list(self.thinking)

    def content_deltas(self) -> list[Any]:
        """The ``delta.content`` values of the streamed reply: thinking parts, then the closing
        thinking part with the first text part, then plain strings."""
        thinking, pieces = self.thinking_pieces(), self.pieces()
        if not thinking:
            return pieces
        if self.reasoning_field is not None:
            return [FieldDelta({self.reasoning_field: piece}) for piece in thinking] + pieces
        deltas: list[Any] = [[thinking_part(piece, closed=False)] for piece in thinking[:-1]]
        closing = [thinking_part(thinking[-1])]
        if pieces:
            closing.append({"type": "text", "text": pieces[0]})
        return [*deltas, closing, *pieces[1:]]

    def message_content(self) -> Any:
        """``message.content`` of the reply not streamed: the text, or a content list with the thinking."""
        text = "".join(self.pieces())
        if self.thinking is None or self.reasoning_field is not None:
            return text
        return [thinking_part("".join(self.thinking_pieces())), {"type": "text", "text": text}]

    def message_fields(self) -> dict:
        """More fields of the message not streamed: the reasoning field, when the reply has one."""
        if self.thinking is None or self.reasoning_field is None:
            return {}
        return {self.reasoning_field: "".join(self.thinking_pieces())}


class FieldDelta(dict):
    """A whole streamed ``delta`` (not a ``content`` value): a reasoning field's piece."""


def thinking_part(text: str, closed: bool = True) -> dict:
    """A thinking part as Mistral sends it."""
    return {"type": "thinking", "thinking": [{"type": "text", "text": text}], "signature": None, "closed": closed}


@dataclass
class ErrorReply:
    """An HTTP error with a Mistral-shaped body (a default one per status when ``body`` is None).

    A ``str`` body is sent as text/html (like a proxy's error page); a dict as JSON.
    """

    status: int
    body: dict | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class RawReply:
    """Exact bytes written as the body, piece by piece (use for malformed SSE, CRLF, BOM, comments, one-byte writes, error objects inside a 200 stream).

    Each non-empty piece is sent and flushed as its own chunked-encoding chunk.
    """

    pieces: list[bytes]
    status: int = 200
    content_type: str = "text/event-stream"
    piece_delay: float = 0.0
    drop: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hang:
    """Accept the request and send nothing for `seconds` (for read-timeout tests), then close."""

    seconds: float = 5.0


def split_words(text: str) -> list[str]:
    """Split text into word deltas that keep their leading spaces: "a b" -> ["a", " b"]."""
    pieces = re.findall(r"\s*\S+(?:\s+\Z)?", text)
    if not pieces and text:
        return [text]
    return pieces


def content_text(content: Any) -> str:
    """The text of a message's content, whether a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def last_user_message(request_json: Any) -> str:
    """The content of the last user message in a request body ("" when there is none)."""
    messages = request_json.get("messages") if isinstance(request_json, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def prompt_words(request_json: dict) -> int:
    messages = request_json.get("messages")
    return sum(
        len(content_text(m.get("content")).split())
        for m in (messages if isinstance(messages, list) else [])
        if isinstance(m, dict)
    )


def echo_reply(request_json: Any) -> Reply:
    """The default reply: "Echo: " + the last user message (and how many images the request carried)."""
    images = len(image_urls(request_json))
    return Reply(text="Echo: " + last_user_message(request_json) + (f" [{images} image(s)]" if images else ""))


def reply_usage(reply: Reply, request_json: dict) -> dict:
    """The reply's scripted usage, else one token per prompt word and per reply piece."""
    if reply.usage is not None:
        return reply.usage
    prompt = prompt_words(request_json)
    completion = len(reply.pieces()) + len(reply.thinking_pieces())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_object(reply: Reply, request_json: dict, choices: list[Reply] | None = None) -> dict:
    """A whole (not streamed) ``chat.completion`` body for ``reply`` (or one choice per ``choices``)."""
    return {
        "id": "cmpl-" + uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or request_json.get("model"),
        "choices": [
            {
                "index": number,
                "message": {
                    "role": "assistant",
                    "content": choice.message_content(),
                    "tool_calls": None,
                    **choice.message_fields(),
                },
                "finish_reason": choice.finish_reason,
                "logprobs": None,
            }
            for number, choice in enumerate(choices or [reply])
        ],
        "usage": reply_usage(reply, request_json),
    }


def default_error_body(status: int, request_json: Any) -> dict:
    model = request_json.get("model") if isinstance(request_json, dict) else None
    if status == 400:
        return {
            "object": "error",
            "message": f"Invalid model: {model or 'unknown-model'}",
            "type": "invalid_model",
            "param": None,
            "code": "1500",
        }
    if status == 401:
        return {"message": "Unauthorized", "request_id": uuid.uuid4().hex}
    if status == 403:
        return {
            "object": "error",
            "message": "This model is not available in your subscription tier",
            "type": "tier_not_allowed",
            "param": None,
            "code": None,
        }
    if status == 404:
        return {"detail": "Not Found"}
    if status == 422:
        return validation_error([extra_field_error("foo", "bar")])
    if status == 429:
        return {"message": "Requests rate limit exceeded"}
    if status >= 500:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Server error"
        return {"object": "error", "message": phrase, "type": "server_error", "param": None, "code": None}
    try:
        return {"detail": HTTPStatus(status).phrase}
    except ValueError:
        return {"detail": "Error"}


def validation_error(details: list[dict]) -> dict:
    return {
        "object": "error",
        "message": {"detail": details},
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def extra_field_error(name: str, value: Any) -> dict:
    return {"type": "extra_forbidden", "loc": ["body", name], "msg": "Extra inputs are not permitted", "input": value}


def validate_chat_request(body: bytes, strict: bool) -> tuple[Any, dict | None]:
    """Parse and check a chat request body like Mistral does; return (json, 422-body or None)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None, validation_error(
            [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error", "input": {}}]
        )
    if not isinstance(data, dict):
        return data, validation_error(
            [
                {
                    "type": "model_attributes_type",
                    "loc": ["body"],
                    "input": data,
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                }
            ]
        )
    details = [
        {"type": "missing", "loc": ["body", name], "msg": "Field required", "input": data}
        for name in ("model", "messages")
        if name not in data
    ]
    if "messages" in data and not isinstance(data["messages"], list):
        details.append(
            {
                "type": "list_type",
                "loc": ["body", "messages"],
                "msg": "Input should be a valid list",
                "input": data["messages"],
            }
        )
    if strict:
        details += [extra_field_error(k, v) for k, v in data.items() if k not in ALLOWED_FIELDS]
    if "reasoning_effort" in data and data["reasoning_effort"] not in REASONING_EFFORTS:
        details.append(
            {
                "type": "enum",
                "loc": ["body", "reasoning_effort"],
                "msg": "Input should be 'high' or 'none'",
                "input": data["reasoning_effort"],
            }
        )
    if isinstance(data.get("messages"), list):
        details += _content_errors(data["messages"]) + user_content_errors(data["messages"])
    if "response_format" in data:
        details += response_format_errors(data["response_format"])
    return data, (validation_error(details) if details else None)


JSON_SCHEMA_KEYS = {"name", "schema", "strict", "description"}


def response_format_errors(value: Any) -> list[dict]:
    """Mistral's ``response_format``: ``text``, ``json_object``, or ``json_schema`` with exactly
    ``name`` and ``schema`` (plus optional ``strict`` and ``description``)."""
    loc = ["body", "response_format"]

    def error(kind: str, where: list, msg: str, given: Any) -> list[dict]:
        return [{"type": kind, "loc": loc + where, "msg": msg, "input": given}]

    if not isinstance(value, dict):
        return error("model_type", [], "Input should be a valid dictionary", value)
    kind = value.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        return error("enum", ["type"], "Input should be 'text', 'json_object' or 'json_schema'", kind)
    allowed = {"type", "json_schema"} if kind == "json_schema" else {"type"}
    details = [extra_field_error(k, v) | {"loc": loc + [k]} for k, v in value.items() if k not in allowed]
    if kind != "json_schema":
        return details
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        return details + error("missing", ["json_schema"], "Field required", value)
    for key in ("name", "schema"):
        if key not in spec:
            details += error("missing", ["json_schema", key], "Field required", spec)
    details += [
        extra_field_error(k, v) | {"loc": loc + ["json_schema", k]}
        for k, v in spec.items()
        if k not in JSON_SCHEMA_KEYS
    ]
    if "name" in spec and not isinstance(spec["name"], str):
        details += error("string_type", ["json_schema", "name"], "Input should be a valid string", spec["name"])
    if "schema" in spec and not isinstance(spec["schema"], dict):
        details += error("dict_type", ["json_schema", "schema"], "Input should be a valid dictionary", spec["schema"])
    if "strict" in spec and not isinstance(spec["strict"], bool):
        details += error("bool_type", ["json_schema", "strict"], "Input should be a valid boolean", spec["strict"])
    return details


def _content_errors(messages: list) -> list[dict]:
    """Malformed content parts of assistant messages (strings need no check)."""
    details = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if content is None or isinstance(content, str):
            continue
        parts = content if isinstance(content, list) else [content]
        for number, part in enumerate(parts):
            kind = part.get("type") if isinstance(part, dict) else None
            loc = ["body", "messages", index, "content", number]
            if kind not in PART_KEYS:
                details.append({"type": "union_tag_invalid", "loc": loc, "msg": "Unknown content part", "input": part})
                continue
            extra = set(part) - PART_KEYS[kind]
            details += [extra_field_error(name, part[name]) | {"loc": [*loc, name]} for name in sorted(extra)]
            inner = part.get(kind)
            if kind == "text":
                valid = isinstance(inner, str)
            else:
                valid = isinstance(inner, list) and all(
                    isinstance(chunk, dict) and isinstance(chunk.get("text"), str) for chunk in inner
                )
            if not valid:
                details.append({"type": "invalid", "loc": [*loc, kind], "msg": f"Invalid {kind}", "input": inner})
    return details


def reply_from_dict(item: dict) -> Reply | ErrorReply | RawReply | Hang:
    """Build a reply from its JSON form (as used by ``--script``).

    ``{"status": 429, ...}`` is an ErrorReply, ``{"pieces": [...]}`` a RawReply (str pieces are
    UTF-8 encoded), ``{"hang": 2}`` a Hang, anything else the fields of a Reply.
    """
    item = dict(item)
    if "pieces" in item:
        item["pieces"] = [p.encode() if isinstance(p, str) else bytes(p) for p in item["pieces"]]
        return RawReply(**item)
    if "hang" in item:
        return Hang(seconds=float(item["hang"]))
    if "status" in item:
        return ErrorReply(**item)
    known = {f.name for f in fields(Reply)}
    unknown = set(item) - known
    if unknown:
        raise ValueError(f"unknown Reply fields in script: {sorted(unknown)}")
    return Reply(**item)


def model_entry(model_id: str, context: int, vision: bool = False) -> dict:
    return {
        "id": model_id,
        "object": "model",
        "created": 1741852402,
        "owned_by": "mistralai",
        "capabilities": {
            "completion_chat": True,
            "completion_fim": False,
            "function_calling": True,
            "fine_tuning": False,
            "vision": vision,
            "classification": False,
        },
        "name": model_id,
        "description": f"Fake {model_id}",
        "max_context_length": context,
        "aliases": [],
        "deprecation": None,
        "default_model_temperature": 0.3,
        "type": "base",
    }


def sse_event(obj: Any) -> bytes:
    """One SSE event carrying ``obj`` as JSON (for a RawReply's pieces)."""
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def delta_chunk(content: Any = "", finish: Any = None, **extra: Any) -> dict:
    """A streamed chunk in Mistral's shape: one choice whose delta has ``content``; ``extra`` top-level fields."""
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    return {"id": "x", "object": "chat.completion.chunk", "model": "m", "choices": [choice], **extra}
