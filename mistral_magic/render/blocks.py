"""Splitting streaming markdown into finished blocks and the block still growing.

A block ends at a blank line, unless what follows continues it (an indented line, or another
item of the same list); a fenced code block stays one block until its fence closes. Each
finished block is rendered once and never again; only the tail is re-rendered as text arrives.
"""

from __future__ import annotations

import re

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^ {0,3}(?:[*+-]|\d{1,9}[.)])(?:\s|$)")
_MAYBE_LIST_MARKER = re.compile(r" {0,3}(?:[*+-]|\d{1,9}[.)]?)")
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:", re.MULTILINE)


def has_link_definitions(text: str) -> bool:
    """Reference-style link definitions change blocks other than their own."""
    return bool(_LINK_DEFINITION.search(text))


class BlockSplitter:
    """Feed text as it streams; finished blocks come out, the growing block stays in ``tail``."""

    def __init__(self) -> None:
        self._lines: list[str] = []  # complete lines of the current block
        self._partial = ""  # the line still being written
        self._fence: str | None = None  # the opening fence while inside a fenced block
        self._after_blank = False

    @property
    def tail(self) -> str:
        """The current block so far (complete lines and the line being written)."""
        if not self._lines:
            return self._partial
        return "\n".join(self._lines) + ("\n" + self._partial if self._partial else "")

    @property
    def in_fence(self) -> str | None:
        """The open fence (e.g. ``` or ~~~~) when the tail is inside a fenced code block."""
        return self._fence

    def feed(self, text: str) -> list[str]:
        """Add streamed text; return the blocks it finished, in order."""
        if "\n" not in text:
            self._partial += text
            return []
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        finished: list[str] = []
        for line in lines:
            block = self._add_line(line)
            if block is not None:
                finished.append(block)
        if self._after_blank and self._partial and self._starts_new_block(self._partial):
            finished.append(self._take_block())
            self._after_blank = False
        return finished

    def _starts_new_block(self, partial: str) -> bool:
        """Whether the line being written, after a blank line, surely starts a new block: its
        first characters already tell (so a block is finished without waiting for the line)."""
        if _MAYBE_LIST_MARKER.fullmatch(partial):
            return False
        return not self._continues(partial)

    def _add_line(self, line: str) -> str | None:
        if self._fence is not None:
            stripped = line.strip()
            if stripped and set(stripped) == {self._fence[0]} and len(stripped) >= len(self._fence):
                self._fence = None
            self._lines.append(line)
            return None
        if not line.strip():
            if self._lines:
                self._after_blank = True
                self._lines.append(line)
            return None
        finished = None
        if self._after_blank and not self._continues(line):
            finished = self._take_block()
        self._after_blank = False
        fence = _FENCE_OPEN.match(line)
        if fence:
            self._fence = fence.group(1)
        self._lines.append(line)
        return finished

    def _continues(self, line: str) -> bool:
        """Whether ``line``, after a blank line, still belongs to the current block."""
        if line[0] in " \t":
            return True
        first = self._lines[0]
        if line.lstrip().startswith(">") and first.lstrip().startswith(">"):
            return True  # blockquotes separated by a blank line are one blockquote
        return bool(_LIST_ITEM.match(line)) and bool(_LIST_ITEM.match(first))

    def _take_block(self) -> str:
        while self._lines and not self._lines[-1].strip():
            self._lines.pop()
        block = "\n".join(self._lines)
        self._lines = []
        return block
