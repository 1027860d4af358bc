"""Text that UTF-8 can encode: UTF-16 surrogates from JSON, cells or data never break a boundary.

``json.loads('"\\ud83d"')`` gives a lone surrogate, which every UTF-8 encoder refuses (httpx's
request JSON, hashlib keys, SQLite, nh3, the kernel's messages). :func:`encodable` is applied
where text leaves Python for one of those; :class:`SurrogateJoiner` joins a pair that a server
split across two streamed deltas before it is made encodable.
"""

from __future__ import annotations

from typing import Any


def encodable(text: str) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def encodable_data(value: Any) -> Any:
    """:func:`encodable` applied to every string in JSON-like data (a new object only where needed)."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, dict):
        return {encodable_data(k): encodable_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encodable_data(v) for v in value]
    return value


def _ends_in_high_surrogate(text: str) -> bool:
    return bool(text) and "\ud800" <= text[-1] <= "\udbff"


class SurrogateJoiner:
    """Streamed text made encodable piece by piece: a high surrogate at the end of one piece is
    held until the next, so a pair split across two deltas becomes one character."""

    def __init__(self) -> None:
        self.held = ""  # a high surrogate waiting for the next piece

    def feed(self, text: str) -> str:
        if self.held:
            text, self.held = self.held + text, ""
        elif text.isascii():
            return text
        if _ends_in_high_surrogate(text):
            text, self.held = text[:-1], text[-1]
        return encodable(text)

    def flush(self) -> str:
        """A high surrogate still held at the end of the stream, as U+FFFD ("" when none)."""
        held, self.held = self.held, ""
        return encodable(held)
