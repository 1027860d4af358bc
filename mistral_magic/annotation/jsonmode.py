"""Reading a ``--json`` reply: the JSON text itself, or JSON inside a fenced code block.

An answer nested more than :data:`MAX_DEPTH` levels deep is not read: deeper than Python can decode
(a ``RecursionError``) it would crash the run, and short of that, every later step that walks the
value (the schema check, the cache, votes, a display) could.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from ..errors import JsonReplyError, hint

_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(?P<body>.*?)\n\s*```\s*$", re.DOTALL)
MAX_DEPTH = 200  # levels of nested lists and objects in an answer: far more than any needs
EMPTY_REPLY = "the reply is empty"


def parse_json_reply(text: str) -> Any:
    """The object in ``text``; raises :class:`JsonReplyError` with the reason."""
    try:
        return read_json(text)
    except ValueError as reason:
        preview = text.strip().replace("\n", " ")[:60]
        raise JsonReplyError(f"The reply is {reason}: {preview!r}. {hint('json_reply')}.") from None


def read_json(text: str) -> Any:
    """The object in ``text``; raises ValueError with what it is instead (``not valid JSON (...)``)."""
    candidate = text.strip()
    fenced = _FENCE.match(candidate)
    if fenced:
        candidate = fenced.group("body")
    try:
        value = json.loads(candidate, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # from _no_constant or _finite
        raise ValueError(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep") from None
    if candidate.count("[") + candidate.count("{") > MAX_DEPTH and _nested_deeper(value, MAX_DEPTH):
        raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep")
    return value


def _no_constant(name: str) -> Any:
    """Python's json reads NaN, Infinity and -Infinity as floats; JSON has no such numbers."""
    raise ValueError(f"{name.lstrip('-')} is not a JSON number")


def _finite(text: str) -> float:
    """A JSON number too large for a float (1e999) is read as infinity by Python: refused too."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a number")
    return value


def _nested_deeper(value: Any, limit: int) -> bool:
    """Whether lists and dicts nest more than ``limit`` levels in ``value`` (found without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return False


def reply_problem(text: str, json: bool) -> str | None:
    """Why a reply is no answer (``the reply is empty``; with ``json``: ``the reply is not valid
    JSON (...)``), or None."""
    if not text.strip():
        return EMPTY_REPLY
    if json:
        try:
            read_json(text)
        except ValueError as reason:
            return f"the reply is {reason}"
    return None


def is_usable(text: str, json: bool, rule: Callable[[str], bool] | None = None) -> bool:
    """Whether a reply is worth caching and serving again: by ``rule`` when given (``--schema``),
    else one without a :func:`reply_problem`."""
    if rule is not None:
        return rule(text)
    return reply_problem(text, json) is None
