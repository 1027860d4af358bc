"""Math in replies: ``$...$``, ``$$...$$``, ``\\(...\\)`` and ``\\[...\\]`` kept verbatim for MathJax.

A math span is parsed before backslash escapes and emphasis, so ``\\(a_1 * b_1\\)`` reaches the
page exactly as written (HTML-escaped: it is model output). It is emitted with the delimiters it
was written with, which JupyterLab's and Notebook 7's MathJax recognise in an HTML output
(``$``/``\\(`` inline, ``$$``/``\\[`` display, ``\\begin{...}`` environments). Dollars follow pandoc's
rule (no space inside the delimiters, no digit right after the closing one), so ``costs $5 and
$10`` stays text; a ``$`` left as text is wrapped in its own ``<span>`` so MathJax, which never
pairs delimiters across elements, cannot typeset the words between two prices.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.amsmath import amsmath_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin

_CLOSERS = {"(": "\\)", "[": "\\]"}
# Text MathJax would read as the start of math: a dollar, or a backslash before ( or [.
_MATH_TRIGGER = re.compile(r"\$|\\(?=[(\[])")


def _find_closer(src: str, start: int, closer: str, limit: int) -> int:
    """Index of the first unescaped ``closer`` (``\\)`` or ``\\]``) at or after ``start``, or -1."""
    while True:
        found = src.find(closer, start, limit)
        if found < 0:
            return -1
        backslashes = 0
        while found - backslashes - 1 >= start and src[found - backslashes - 1] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:  # \\) is a LaTeX line break followed by ")", not a closer
            return found
        start = found + 1


def _bracket_inline(state: StateInline, silent: bool) -> bool:
    """``\\(...\\)`` and ``\\[...\\]`` inside a paragraph (before backslash escapes run)."""
    src, pos = state.src, state.pos
    if src[pos] != "\\" or pos + 1 >= state.posMax or src[pos + 1] not in _CLOSERS:
        return False
    opener = src[pos + 1]
    end = _find_closer(src, pos + 2, _CLOSERS[opener], state.posMax)
    if end < 0 or not src[pos + 2 : end].strip():
        return False
    if not silent:
        token = state.push("math_inline" if opener == "(" else "math_inline_double", "math", 0)
        token.markup = "\\" + opener
        token.content = src[pos + 2 : end]
    state.pos = end + 2
    return True


def _bracket_block(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """``\\[`` ... ``\\]`` on lines of their own (no blank line inside, as in LaTeX)."""
    if state.sCount[start_line] - state.blkIndent >= 4:
        return False
    begin = state.bMarks[start_line] + state.tShift[start_line]
    if not state.src.startswith("\\[", begin):
        return False
    line = start_line
    content_start = begin + 2
    search_from = content_start
    while line < end_line:
        line_end = state.eMarks[line]
        text = state.src[state.bMarks[line] : line_end]
        if not text.strip():
            return False
        closer = _find_closer(state.src, search_from, "\\]", line_end)
        if closer >= 0:
            if state.src[closer + 2 : line_end].strip():
                return False  # text after \] on its line: a paragraph with inline math
            if silent:
                return True
            token = state.push("math_block", "math", 0)
            token.block = True
            token.markup = "\\["
            token.content = state.src[content_start:closer]
            token.map = [start_line, line + 1]
            state.line = line + 1
            return True
        line += 1
        if line < end_line:
            search_from = state.bMarks[line]
    return False


_DELIMITERS = {"$": ("$", "$"), "$$": ("$$", "$$"), "\\(": ("\\(", "\\)"), "\\[": ("\\[", "\\]")}


def _render_math(tokens: Sequence[Token], idx: int, display: bool, block: bool) -> str:
    token = tokens[idx]
    opener, closer = _DELIMITERS.get(token.markup, ("$$", "$$") if display else ("$", "$"))
    body = escapeHtml(f"{opener}{token.content}{closer}")
    if block:
        return f'<div class="math display">{body}</div>\n'
    return f'<span class="math{" display" if display else ""}">{body}</span>'


def _render_environment(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return f'<div class="math display">{escapeHtml(tokens[idx].content)}</div>\n'


def math_plugin(md: MarkdownIt) -> None:
    """Parse the four math delimiters and LaTeX environments; render them verbatim."""
    dollarmath_plugin(
        md, allow_labels=False, allow_space=False, allow_digits=False, allow_blank_lines=False, double_inline=True
    )
    amsmath_plugin(md)
    md.inline.ruler.before("escape", "math_bracket_inline", _bracket_inline)
    md.block.ruler.before("fence", "math_bracket_block", _bracket_block)
    md.add_render_rule("math_inline", lambda self, t, i, o, e: _render_math(t, i, display=False, block=False))
    md.add_render_rule("math_inline_double", lambda self, t, i, o, e: _render_math(t, i, display=True, block=False))
    md.add_render_rule("math_block", lambda self, t, i, o, e: _render_math(t, i, display=True, block=True))
    md.add_render_rule("amsmath", _render_environment)


def escape_outside_math(text: str) -> str:
    """Text as HTML, with anything MathJax would take for a math delimiter put in its own element."""
    escaped = escapeHtml(text)
    if "$" not in escaped and "\\" not in escaped:
        return escaped
    return _MATH_TRIGGER.sub(lambda m: f"<span>{m.group()}</span>", escaped)
