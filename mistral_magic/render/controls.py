"""Model text made safe for a terminal: no escape sequences, no control characters but newline and tab.

A reply can carry OSC 52 (write the clipboard), CSI (clear the screen, move the cursor,
recolour) and other C0/C1 controls; printed as is, they act on the user's terminal. Whole
sequences are removed, then any control character left; what remains is plain, inert text.
"""

from __future__ import annotations

import re

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
