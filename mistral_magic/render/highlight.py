"""Fenced code highlighted with Pygments, as inline styles that survive an untrusted reload.

JupyterLab sanitizes the HTML outputs of an untrusted notebook: ``<style>`` elements go, and its
own code colours are CodeMirror classes generated at run time, so there is no stable class to
use. Inline ``color``/``font-weight``/``font-style`` and an ``rgba`` background do survive (its
sanitizer allows them), so every token carries its colour. One palette serves light and dark
themes: each colour has a contrast of at least 3.3:1 on white and on JupyterLab's dark
background (``tests/render/test_highlight.py`` checks it); text that is not a keyword, string, number
or comment keeps the theme's own colour.
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

from markdown_it.common.utils import escapeHtml
from pygments import highlight as _pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.style import Style
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String, Token, _TokenType
from pygments.util import ClassNotFound

# A translucent grey reads as a slightly lighter or darker panel on any theme.
CODE_BLOCK_STYLE = "background-color:rgba(127, 127, 127, 0.1);padding:0.5em 0.75em;border-radius:4px;overflow-x:auto"
INLINE_CODE_STYLE = "background-color:rgba(127, 127, 127, 0.12);padding:0 0.2em;border-radius:3px"
# JupyterLab gives every <code> its own background: inside a block it would band each line.
BLOCK_CODE_STYLE = "background-color:transparent;padding:0"

PALETTE = {
    "keyword": "#b35ad6",
    "string": "#2b9148",
    "number": "#c0702a",
    "comment": "#808080",
    "function": "#2a86b5",
    "class": "#c75c8c",
    "type": "#2a8c96",
    "error": "#d05050",
}


class ThemeNeutralStyle(Style):
    """Mid-luminance colours readable on JupyterLab's light and dark backgrounds."""

    background_color = ""
    highlight_color = ""
    styles: ClassVar[dict[_TokenType, str]] = {
        Token: "",
        Keyword: f"bold {PALETTE['keyword']}",
        Keyword.Type: PALETTE["type"],
        Operator.Word: f"bold {PALETTE['keyword']}",
        Name.Builtin: PALETTE["type"],
        Name.Builtin.Pseudo: PALETTE["keyword"],
        Name.Function: PALETTE["function"],
        Name.Class: f"bold {PALETTE['class']}",
        Name.Decorator: PALETTE["class"],
        Name.Exception: PALETTE["class"],
        Name.Namespace: PALETTE["function"],
        Name.Tag: f"bold {PALETTE['keyword']}",
        Name.Attribute: PALETTE["function"],
        Name.Constant: PALETTE["number"],
        Name.Variable.Magic: PALETTE["type"],
        String: PALETTE["string"],
        String.Escape: f"bold {PALETTE['number']}",
        String.Interpol: f"bold {PALETTE['number']}",
        Number: PALETTE["number"],
        Comment: f"italic {PALETTE['comment']}",
        Comment.Preproc: PALETTE["class"],
        Error: PALETTE["error"],
    }


_FORMATTER = HtmlFormatter(style=ThemeNeutralStyle, noclasses=True, nowrap=True)


@lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer | None:
    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def highlight_code(code: str, language: str) -> str:
    """``code`` as HTML, with coloured spans when ``language`` is one Pygments knows."""
    lexer = _lexer(language.lower()) if language else None
    if lexer is None:
        return escapeHtml(code)
    return _pygments_highlight(code, lexer, _FORMATTER)


def code_block(code: str, language: str) -> str:
    """A ``<pre>`` code block with a background; its indentation is kept as written."""
    return f'<pre style="{CODE_BLOCK_STYLE}"><code style="{BLOCK_CODE_STYLE}">{highlight_code(code, language)}</code></pre>\n'
