"""Reading a ``--json`` reply: the JSON text itself, or JSON inside a fenced code block."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ..errors import JsonReplyError, hint

_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(?P<body>.*?)\n\s*```\s*$", re.DOTALL)


def parse_json_reply(text: str) -> Any:
    """The object in ``text``; raises :class:`JsonReplyError` with the parser's complaint."""
    candidate = text.strip()
    fenced = _FENCE.match(candidate)
    if fenced:
        candidate = fenced.group("body")
    try:
        return json.loads(candidate)
    except json.JSONDecodeError as exc:
        preview = text.strip().replace("\n", " ")[:60]
        raise JsonReplyError(
            f"The reply is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}): "
            f"{preview!r}. {hint('json_reply')}."
        ) from None


def is_usable(text: str, json: bool, rule: Callable[[str], bool] | None = None) -> bool:
    """Whether a reply is worth caching and serving again: by ``rule`` when given (``--schema``),
    else with ``--json`` only one that parses."""
    if rule is not None:
        return rule(text)
    if not json:
        return True
    try:
        parse_json_reply(text)
    except JsonReplyError:
        return False
    return True
