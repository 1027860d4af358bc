"""``{name}`` interpolation of notebook variables into a prompt, done once and conservatively.

``{name}``, ``{name.attr}`` and ``{name[key]}`` are replaced by ``str()`` of the value when
``name`` is a variable and every step resolves. Anything else in braces (code, JSON, LaTeX,
unknown names) stays exactly as written. ``{{text}}`` gives a literal ``{text}``. Inserted
values are never scanned again.

This is where text is taken from the kernel into a prompt, so it is where the API key is masked
(a cell that set it, a variable holding it): each value passes through the caller's ``mask``
before it is cut to length.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_PATTERN = re.compile(
    r"\{\{(?P<escaped>[^{}]*)\}\}"
    r"|\{(?P<expr>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[[^\[\]{}]+\])*)\}"
)
_STEP = re.compile(r"\.(?P<attr>[A-Za-z_]\w*)|\[(?P<key>[^\[\]]+)\]")
_MISSING = object()
MISSING = _MISSING  # what resolve() returns for a name that does not resolve


def cut_middle(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters (or ``limit`` is 0); else its start and end
    around a visible ``[... N characters cut]`` line."""
    if limit <= 0 or len(text) <= limit:
        return text
    keep = max(limit, 2)
    head, tail = text[: keep // 2], text[len(text) - keep // 2 :]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut]\n{tail}"


def interpolate(
    text: str, namespace: Mapping[str, Any], limit: int = 0, mask: Callable[[str], str] | None = None
) -> str:
    """``text`` with resolvable ``{...}`` references replaced by the values' ``str()``, each passed
    through ``mask`` (the secrets taken out), then cut in the middle to ``limit`` characters when
    ``limit`` > 0."""

    def replace(match: re.Match) -> str:
        escaped = match.group("escaped")
        if escaped is not None:
            return "{" + escaped + "}"
        value = resolve(match.group("expr"), namespace)
        if value is _MISSING:
            return match.group(0)
        inserted = str(value) if mask is None else mask(str(value))
        return cut_middle(inserted, limit)

    return _PATTERN.sub(replace, text)


def resolve(expr: str, namespace: Mapping[str, Any]) -> Any:
    """The value ``expr`` names, or ``_MISSING`` when any step fails."""
    head = re.match(r"[A-Za-z_]\w*", expr)
    assert head is not None
    name = head.group(0)
    if name not in namespace:
        return _MISSING
    value = namespace[name]
    for step in _STEP.finditer(expr, head.end()):
        try:
            if step.group("attr") is not None:
                if step.group("attr").startswith("_"):
                    return _MISSING
                value = getattr(value, step.group("attr"))
            else:
                value = value[_key(step.group("key"))]
        except Exception:
            return _MISSING
    return value


def _key(text: str) -> Any:
    """A subscript as ``str.format`` reads it, plus quoted strings: ``0`` -> 0, ``'a'`` -> "a"."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text
