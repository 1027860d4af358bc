"""Splitting streaming markdown into finished blocks and the block still growing.

The boundaries come from the markdown parser itself: the complete lines not yet handed out are
parsed (block structure only), and every top-level block but the last is finished, because a
block followed by another one can no longer change: text that arrives later can only extend or
change the last block (a list that continues after a blank line, a paragraph that becomes a
heading or a table, a fence that closes). The parser's own line ranges (``token.map``) cut the
text, so the blocks always agree with a one-shot render. Each finished block is rendered once
and never again; only the tail is re-rendered as text arrives. Reference-style link definitions
are the one exception (they change blocks other than their own): see ``has_link_definitions``.
"""

from __future__ import annotations

import re
from functools import cache
from itertools import pairwise

from markdown_it import MarkdownIt

from .parser import make_block_parser

# Blocks that end with their own last line: a later line cannot change them.
_COMPLETE_WHEN_CLOSED = {"fence", "heading_open", "hr", "math_block", "amsmath"}
_LISTS = {"bullet_list_open", "ordered_list_open"}
_LIST_MARKER_STARTS = set("-*+0123456789")
_SPANS_BLANK_LINES = {"environment"}
_ENVIRONMENT = re.compile(r" {0,3}\\begin\{")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the line breaks the parser knows
_CLOSING_FENCE = re.compile(r" {0,3}(`+|~+)[ \t]*")
_OPENING_FENCE = re.compile(r" {0,3}(```|~~~)")


def has_link_definitions(text: str) -> bool:
    """Reference-style link definitions change blocks other than their own."""
    if "]:" not in text:
        return False
    env: dict[str, object] = {}
    _shared_block_parser().parse(text, env)
    return bool(env.get("references"))


@cache
def _shared_block_parser() -> MarkdownIt:
    return make_block_parser()


class BlockSplitter:
    """Feed text as it streams; finished blocks come out, the growing block stays in ``tail``."""

    def __init__(self, parser: MarkdownIt | None = None) -> None:
        self._md = parser or make_block_parser()
        self._lines: list[str] = []  # complete lines not yet handed out as a finished block
        self._partial = ""  # the line still being written
        self._fence: str | None = None
        self._last_type: str | None = None  # the token type of the block in ``_lines``
        self._unparsed = 0  # lines of ``_lines`` added since the last parse

    @property
    def tail(self) -> str:
        """The current block so far (complete lines and the line being written)."""
        return "".join(line + "\n" for line in self._lines) + self._partial

    @property
    def in_fence(self) -> str | None:
        """The open fence (e.g. ``` or ~~~~) when the tail is a fenced code block not yet closed."""
        return self._fence

    def feed(self, text: str) -> list[str]:
        """Add streamed text; return the blocks it finished, in order."""
        if "\n" not in text and "\r" not in text:
            started = not self._partial
            self._partial += text
            return self._take_before_new_block() if started and self._partial else []
        combined = self._partial + text
        held = "\r" if combined.endswith("\r") else ""  # perhaps the first half of \r\n
        lines = _LINE_BREAK.split(combined[: len(combined) - len(held)])
        self._partial = lines.pop() + held
        self._lines.extend(lines)
        self._unparsed += len(lines)
        fence = self._fence
        if fence is not None and not any(_closes(fence, line) for line in lines):
            return []  # a code block that is still open only grows until its closing line: no parse
        finished = self._take_finished() if self._worth_parsing(lines) else []
        return finished + self._take_before_new_block()

    def _worth_parsing(self, lines: list[str]) -> bool:
        """Parse again once the unparsed lines are an eighth of the growing block (so a long list or
        table costs linear time, not quadratic), or at once when a code block may open (so
        ``in_fence`` is right) or a new block likely starts after a blank line. Block ends found
        later are the same ends, only later."""
        if self._unparsed * 8 >= len(self._lines) or any(_OPENING_FENCE.match(line) for line in lines):
            return True
        first_new = len(self._lines) - len(lines)
        return any(
            not self._lines[index - 1].strip() and _starts_unindented_block(self._lines[index])
            for index in range(max(first_new, 1), len(self._lines))
        )

    def _take_finished(self) -> list[str]:
        """Cut the complete lines where the parser's top-level blocks begin; all but the last
        block are finished (the last one too when it is closed: a fence, a heading, a rule)."""
        self._drop_leading_blank_lines()
        self._fence = self._last_type = None
        self._unparsed = 0
        if not self._lines:
            return []
        tokens = self._md.parse("\n".join(self._lines) + "\n")
        top = [(t, t.map[0]) for t in tokens if t.level == 0 and t.map is not None and t.nesting >= 0]
        for index, (token, first_line) in enumerate(top):
            if token.type != "amsmath" and _ENVIRONMENT.match(self._lines[first_line]):
                del top[index + 1 :]  # \begin{...} without its \end yet: may swallow what follows
                break
        if not top:
            return []  # only link definitions so far: they render as nothing on their own
        bounds = [first_line for _, first_line in top]
        last, last_line = top[-1]
        self._last_type = "environment" if _ENVIRONMENT.match(self._lines[last_line]) else last.type
        if last.type == "fence":
            self._fence = self._open_fence(last.markup, last_line)
        if self._fence is None and last.type in _COMPLETE_WHEN_CLOSED:
            bounds.append(len(self._lines))  # nothing that follows can change it
        finished = [self._block(begin, end) for begin, end in pairwise(bounds)]
        if len(bounds) > 1:
            del self._lines[: bounds[-1]]
            self._drop_leading_blank_lines()
            if not self._lines:
                self._last_type = None
        return [block for block in finished if block]

    def _take_before_new_block(self) -> list[str]:
        """The block in ``_lines`` is finished as soon as the line being written surely starts a new
        one: after a blank line, unindented, and not another item of the same list."""
        if not (self._lines and self._partial and not self._lines[-1].strip()):
            return []
        if self._partial[0] in " \t":
            return []
        if self._unparsed:  # the decision below needs the block's type as it is now
            return self._take_finished() + self._take_before_new_block()
        if self._fence is not None or self._last_type in _SPANS_BLANK_LINES:
            return []
        if self._last_type in _LISTS and self._partial[0] in _LIST_MARKER_STARTS:
            return []
        block = self._block(0, len(self._lines))
        self._lines.clear()
        self._last_type = None
        return [block]

    def _drop_leading_blank_lines(self) -> None:
        """Blank lines between blocks belong to neither."""
        while self._lines and not self._lines[0].strip():
            self._lines.pop(0)

    def _block(self, begin: int, end: int) -> str:
        while end > begin and not self._lines[end - 1].strip():
            end -= 1
        return "".join(line + "\n" for line in self._lines[begin:end])

    def _open_fence(self, markup: str, opening: int) -> str | None:
        """``markup`` if the fence opened on line ``opening`` has no closing line yet."""
        last = len(self._lines) - 1
        while last > opening and not self._lines[last].strip():
            last -= 1
        return None if last > opening and _closes(markup, self._lines[last]) else markup


def _starts_unindented_block(line: str) -> bool:
    """A line that, after a blank line, most likely begins a new top-level block (not a list item)."""
    return bool(line) and line[0] not in " \t" and line[0] not in _LIST_MARKER_STARTS


def _closes(markup: str, line: str) -> bool:
    """Whether ``line`` closes a code block opened with ``markup`` (the same character, at least as many)."""
    closing = _CLOSING_FENCE.fullmatch(line)
    return closing is not None and closing.group(1)[0] == markup[0] and len(closing.group(1)) >= len(markup)
