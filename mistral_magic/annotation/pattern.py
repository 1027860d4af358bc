"""The ``pattern`` of a ``--schema``, searched in time linear in the text.

Python's ``re`` backtracks: ``^(a+)+$`` against 30 ``a`` and a ``!`` tries 2**30 ways, inside one C
call that holds the GIL, so the kernel freezes and Ctrl-C does nothing. A reply is untrusted text,
so a pattern is not searched with ``re``: Python's own parser reads it (same syntax, same meaning),
and the parsed pattern runs as a Thompson NFA, every path at once (at most one thread per
instruction at each position), in Python, where an interrupt works. Each character class is still
decided by ``re``, one character at a time (a single class cannot backtrack), so classes, case
folding and ``\\w`` mean exactly what they mean to ``re``.

What needs backtracking (backreferences, lookaround, conditionals, atomic groups, possessive
repeats), a pattern whose program would be too large (``(a{100}){100}``) and an invalid one are
refused with :class:`PatternError`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

_parser: Any = importlib.import_module("re._parser" if hasattr(re, "_parser") else "sre_parse")  # 3.10: sre_parse

MAX_INSTRUCTIONS = 5_000
_CHAR_FLAGS = re.IGNORECASE | re.DOTALL | re.ASCII | re.UNICODE  # what decides a single character
_CATEGORIES = {
    _parser.CATEGORY_DIGIT: r"\d",
    _parser.CATEGORY_NOT_DIGIT: r"\D",
    _parser.CATEGORY_SPACE: r"\s",
    _parser.CATEGORY_NOT_SPACE: r"\S",
    _parser.CATEGORY_WORD: r"\w",
    _parser.CATEGORY_NOT_WORD: r"\W",
}
_REFUSED = {
    "GROUPREF": "a backreference",
    "GROUPREF_EXISTS": "a conditional group",
    "ASSERT": "a lookahead or lookbehind",
    "ASSERT_NOT": "a lookahead or lookbehind",
    "ATOMIC_GROUP": "an atomic group",
    "POSSESSIVE_REPEAT": "a possessive repeat",
}

CharTest = Callable[[str], bool]
PositionTest = Callable[[str, int], bool]


class PatternError(ValueError):
    """A pattern that cannot be searched here, and why (one line)."""


class LinearPattern:
    """A compiled pattern: :meth:`search` says whether it matches anywhere in a text, as
    ``re.search`` would, in time proportional to the text's length times the pattern's size."""

    def __init__(self, pattern: str):
        try:
            parsed = _parser.parse(pattern)
        except re.error as error:
            raise PatternError(f"is not a valid regular expression ({error})") from None
        self._code: list[list[Any]] = []
        self._sequence(parsed, parsed.state.flags)
        self._emit("match")

    def search(self, text: str) -> bool:
        code = self._code
        threads: list[int] = []
        seen: set[int] = set()
        pos = 0
        while True:
            if self._follow((0,), text, pos, threads, seen):  # a new attempt starts at every position
                return True
            if pos == len(text):
                return False
            char = text[pos]
            advanced = [pc + 1 for pc in threads if code[pc][1](char)]
            threads, seen = [], set()
            pos += 1
            if self._follow(advanced, text, pos, threads, seen):
                return True

    def _follow(self, starts: Iterable[int], text: str, pos: int, threads: list[int], seen: set[int]) -> bool:
        """Add to ``threads`` the character instructions reachable from ``starts`` without reading
        (jumps, splits, anchors that hold at ``pos``); True once the match instruction is reached."""
        code = self._code
        stack = list(starts)
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            kind, a, b = code[pc]
            if kind == "char":
                threads.append(pc)
            elif kind == "jump":
                stack.append(a)
            elif kind == "split":
                stack += (a, b)
            elif kind == "assert":
                if a(text, pos):
                    stack.append(pc + 1)
            else:
                return True
        return False

    # Compiling the parsed pattern: each instruction is [kind, a, b].

    def _emit(self, kind: str, a: Any = None, b: Any = None) -> int:
        if len(self._code) >= MAX_INSTRUCTIONS:
            raise PatternError(f"is too large to check in bounded time (over {MAX_INSTRUCTIONS} steps)")
        self._code.append([kind, a, b])
        return len(self._code) - 1

    def _sequence(self, items: Iterable[tuple[Any, Any]], flags: int) -> None:
        for op, value in items:
            self._node(op, value, flags)

    def _node(self, op: Any, value: Any, flags: int) -> None:
        name = str(op)
        if name in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
            self._emit("char", _char_test(_char_source(name, value), flags))
        elif name == "AT":
            self._emit("assert", _anchor(str(value), flags))
        elif name == "SUBPATTERN":
            _group, add, remove, body = value
            self._sequence(body, (flags | add) & ~remove)
        elif name == "BRANCH":
            self._branch(value[1], flags)
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):  # lazy or greedy: the same texts match
            low, high, body = value
            self._repeat(low, high, body, flags)
        else:
            raise PatternError(f"uses {_REFUSED.get(name, name)}, which cannot be checked in bounded time")

    def _branch(self, alternatives: list[Any], flags: int) -> None:
        exits = []
        for alternative in alternatives[:-1]:
            split = self._emit("split")
            self._code[split][1] = split + 1
            self._sequence(alternative, flags)
            exits.append(self._emit("jump"))
            self._code[split][2] = len(self._code)
        self._sequence(alternatives[-1], flags)
        for jump in exits:
            self._code[jump][1] = len(self._code)

    def _repeat(self, low: int, high: int, body: Any, flags: int) -> None:
        for _ in range(low):
            self._sequence(body, flags)
        if high == _parser.MAXREPEAT:
            split = self._emit("split")
            self._code[split][1] = split + 1
            self._sequence(body, flags)
            self._emit("jump", split)
            self._code[split][2] = len(self._code)
            return
        splits = []
        for _ in range(high - low):
            splits.append(self._emit("split"))
            self._code[splits[-1]][1] = splits[-1] + 1
            self._sequence(body, flags)
        for split in splits:
            self._code[split][2] = len(self._code)


@lru_cache(maxsize=256)
def linear_pattern(pattern: str) -> LinearPattern:
    """``pattern`` compiled for :meth:`LinearPattern.search`; raises :class:`PatternError`."""
    return LinearPattern(pattern)


def _char(code: int) -> str:
    return f"\\U{code:08x}"  # any character, escaped, inside a class or out


def _char_source(name: str, value: Any) -> str:
    """A pattern of one character class, as ``re`` reads it."""
    if name == "LITERAL":
        return _char(value)
    if name == "NOT_LITERAL":
        return f"[^{_char(value)}]"
    if name == "ANY":
        return "."
    negate = bool(value) and str(value[0][0]) == "NEGATE"
    items = []
    for op, item in value[1:] if negate else value:
        kind = str(op)
        if kind == "LITERAL":
            items.append(_char(item))
        elif kind == "RANGE":
            items.append(f"{_char(item[0])}-{_char(item[1])}")
        elif kind == "CATEGORY":
            items.append(_CATEGORIES[item])
        else:
            raise PatternError(f"uses {kind} in a character class, which is not supported")
    return f"[{'^' if negate else ''}{''.join(items)}]"


def _char_test(source: str, flags: int) -> CharTest:
    """Whether one character is in the class ``source`` (decided by ``re``, remembered per character)."""
    match = re.compile(source, flags & _CHAR_FLAGS).match
    known: dict[str, bool] = {}

    def test(char: str) -> bool:
        found = known.get(char)
        if found is None:
            found = known[char] = match(char) is not None
        return found

    return test


def _anchor(name: str, flags: int) -> PositionTest:
    """The test of a zero-width anchor at a position, as ``re`` reads it under ``flags``."""
    multiline = bool(flags & re.MULTILINE)
    word = _char_test(r"\w", flags)

    def boundary(text: str, pos: int) -> bool:
        return (pos > 0 and word(text[pos - 1])) != (pos < len(text) and word(text[pos]))

    tests: dict[str, PositionTest] = {
        "AT_BEGINNING": lambda t, i: i == 0 or (multiline and t[i - 1] == "\n"),
        "AT_BEGINNING_STRING": lambda t, i: i == 0,
        "AT_END": lambda t, i: i == len(t) or (t[i] == "\n" and (multiline or i == len(t) - 1)),
        "AT_END_STRING": lambda t, i: i == len(t),
        "AT_BOUNDARY": boundary,
        "AT_NON_BOUNDARY": lambda t, i: bool(t) and not boundary(t, i),  # re: \B never matches ""
    }
    if name not in tests:
        raise PatternError(f"uses the anchor {name}, which is not supported")
    return tests[name]
