"""Message content of reasoning models: thinking parts apart from the answer's text.

With ``reasoning_effort``, Mistral's magistral models send ``content`` as a list of typed parts::

    [{"type": "thinking", "thinking": [{"type": "text", "text": "..."}], "signature": None, "closed": True},
     {"type": "text", "text": "..."}]

When streaming, ``delta.content`` is such a list while the model thinks, then a list with the closing
thinking part and the first text part, then plain strings. The answer is the text parts; the
thinking is shown apart from it, and the whole assistant message, thinking included, is sent back
in later turns (the API's docs ask for that).

Other OpenAI-compatible servers (vLLM, llama.cpp's server, Ollama, DeepSeek) send the thinking in a
field of its own, ``reasoning_content`` or ``reasoning``, beside a plain-text ``content``. It is kept
as a thinking part marked :data:`SHOWN_ONLY`: shown and saved like Mistral's, never sent back (those
servers take plain text in an assistant message).
"""

from __future__ import annotations

from typing import Any

REASONING_FIELDS = ("reasoning_content", "reasoning")
SHOWN_ONLY = "shown_only"  # a thinking part that came in a reasoning field: not part of what is sent back


def reasoning_of(fields: dict[str, Any]) -> str:
    """The thinking in a message's or a delta's reasoning field ("" when there is none)."""
    for name in REASONING_FIELDS:
        value = fields.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def sendable(content: list[dict[str, Any]]) -> bool:
    """Whether an assistant content list may go back to the server as it is: every part well formed
    (as :meth:`ContentParts.message_content` makes them; a hand-edited chat file may hold others)
    and none :data:`SHOWN_ONLY`. Otherwise the answer's text is sent instead."""
    return all(_well_formed(part) for part in content)


def _well_formed(part: Any) -> bool:
    if not isinstance(part, dict):
        return False
    if part.get("type") == "text":
        return part.keys() == {"type", "text"} and isinstance(part["text"], str)
    return (
        part.get("type") == "thinking"
        and part.keys() <= {"type", "thinking", "signature", "closed"}
        and isinstance(part.get("thinking"), list)
        and all(_inner_chunk(chunk) == chunk for chunk in part["thinking"])
        and isinstance(part.get("signature", ""), str)
        and isinstance(part.get("closed", True), bool)
    )


def _inner_chunk(chunk: Any) -> dict[str, Any] | None:
    """A chunk of a thinking part, well formed (a text chunk, or a reference chunk of ids), else ``None``."""
    text = _chunk_text(chunk)
    if text is not None:
        return {"type": "text", "text": text}
    if isinstance(chunk, dict) and chunk.get("type") == "reference":
        ids = chunk.get("reference_ids")
        if isinstance(ids, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return {"type": "reference", "reference_ids": list(ids)}
    return None


def _chunk_text(chunk: Any) -> str | None:
    """The text of a text chunk (``{"type": "text", "text": ...}``, or a bare string), else ``None``."""
    if isinstance(chunk, str):
        return chunk
    if isinstance(chunk, dict) and chunk.get("type", "text") == "text":
        text = chunk.get("text")
        return text if isinstance(text, str) else None
    return None


class ContentParts:
    """Collects content values, whole or streamed: the thinking so far, and the assistant content
    to send back. Plain strings never need to pass through it (they are answer text)."""

    def __init__(self) -> None:
        self._inner: list[dict[str, Any] | list[str]] = []  # the thinking's chunks; a run of text: a list of pieces
        self._thinking: list[str] = []
        self._closed: bool | None = None
        self._signature: Any = None
        self._shown_only = False  # the thinking came in a reasoning field
        self.has_thinking = False  # True once a thinking part arrived, even an empty one

    @property
    def thinking(self) -> str:
        """All thinking text received so far."""
        return "".join(self._thinking)

    def add(self, content: Any) -> tuple[str, str]:
        """Take one content value (a string, ``None`` or a list of parts) and return its
        ``(thinking, text)``: what it adds to the thinking and to the answer."""
        if isinstance(content, str):
            return "", content
        if not isinstance(content, list):
            return "", ""
        thinking: list[str] = []
        text: list[str] = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "thinking":
                self._add_thinking(part, thinking)
            else:
                piece = _chunk_text(part)
                if piece:
                    text.append(piece)
        return "".join(thinking), "".join(text)

    def add_reasoning(self, text: str) -> str:
        """Take thinking from a reasoning field (see the module's docstring); returns ``text``.
        Nothing happens for "" (most deltas have no such field)."""
        if text:
            self._shown_only = True
            self._add_thinking({"type": "thinking", "thinking": text}, [])
        return text

    def _add_thinking(self, part: dict[str, Any], added: list[str]) -> None:
        """Keep what a thinking part holds in well-formed shapes only (what is sent back must be):
        ``closed`` a bool, ``signature`` a string, text and reference chunks; the rest is dropped."""
        self.has_thinking = True
        if isinstance(part.get("closed"), bool):
            self._closed = part["closed"]
        if isinstance(part.get("signature"), str):
            self._signature = part["signature"]
        inner = part.get("thinking")
        for chunk in [inner] if isinstance(inner, str) else inner if isinstance(inner, list) else []:
            piece = _chunk_text(chunk)
            if piece is None:
                reference = _inner_chunk(chunk)
                if reference is not None:
                    self._inner.append(reference)  # sent back, not shown
                continue
            if not piece:
                continue
            run = self._inner[-1] if self._inner else None
            if not isinstance(run, list):
                run = []
                self._inner.append(run)
            run.append(piece)
            self._thinking.append(piece)
            added.append(piece)

    def message_content(self, text: str) -> list[dict[str, Any]] | None:
        """The assistant content to send back with answer ``text``: one thinking part holding
        everything thought, then the text; ``None`` when there was no thinking (plain text then)."""
        if not self.has_thinking:
            return None
        inner = [{"type": "text", "text": "".join(c)} if isinstance(c, list) else dict(c) for c in self._inner]
        part: dict[str, Any] = {"type": "thinking", "thinking": inner}
        if self._signature is not None:
            part["signature"] = self._signature
        if self._closed is not None:
            part["closed"] = self._closed
        if self._shown_only:
            part[SHOWN_ONLY] = True
        return [part, {"type": "text", "text": text}] if text else [part]


def split_content(content: Any) -> tuple[str, str]:
    """``(thinking, text)`` of a whole content value: a string, ``None`` or a list of parts."""
    return ContentParts().add(content)
