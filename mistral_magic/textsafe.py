"""Text made safe where it leaves Python: encodable as UTF-8, and inert in a terminal.

``json.loads('"\\ud83d"')`` gives a lone surrogate, which every UTF-8 encoder refuses (httpx's
request JSON, hashlib keys, SQLite, nh3, the kernel's messages). :func:`encodable` is applied
where text leaves Python for one of those; :class:`SurrogateJoiner` joins a pair that a server
split across two streamed deltas before it is made encodable.

A reply can also carry OSC 52 (write the clipboard), CSI (clear the screen, move the cursor,
recolour) and other C0/C1 controls; printed as is, they act on the user's terminal.
:func:`strip_controls` removes whole sequences, then any control character left but newline and
tab; :class:`ControlStripper` does it for text that arrives in pieces.

A leaf module (standard library only), so every layer may use it.
"""

from __future__ import annotations

import re
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


_SEQUENCE = re.compile(
    r"(?:\x1b[\]P_^X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # OSC, DCS, APC, PM, SOS strings
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: cursor moves, screen clears, colours
    r"|\x1b[ -/]*[0-~]"  # any other escape sequence
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # a control character on its own (\r too: it lets text overwrite a line)
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# A sequence still being written at the end of a delta (finished by the next one); strings up to 4 KiB.
_UNFINISHED = re.compile(
    r"(?:(?:\x1b[\]P_^X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]{0,4096}\x1b?"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*|\x1b[ -/]*)\Z"
)


def strip_controls(text: str) -> str:
    """``text`` without escape sequences or control characters, except newline and tab."""
    if _CONTROL.search(text) is None:
        return text
    return _SEQUENCE.sub("", text)


class ControlStripper:
    """:func:`strip_controls` for text that arrives in pieces: a sequence split across two
    pieces is held back until it is complete, so none of it shows."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        text = self._held + text
        self._held = ""
        if _CONTROL.search(text) is None:
            return text
        unfinished = _UNFINISHED.search(text)
        if unfinished is not None:
            self._held = text[unfinished.start() :]
            text = text[: unfinished.start()]
        return _SEQUENCE.sub("", text)

    def flush(self) -> str:
        """What is still held back (an unfinished sequence at the very end), stripped."""
        held, self._held = self._held, ""
        return strip_controls(held)
