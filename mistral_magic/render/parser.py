"""The markdown parser for replies: CommonMark with GitHub's tables, strikethrough, task lists and
autolinks, math kept verbatim, and highlighted code.

Model output is untrusted: raw HTML is not recognised (it comes out as escaped text) and images
are rendered as links, so a reply cannot make the page fetch a URL by itself (prompt-injected
images are a known way to leak data through their URL). The parser is not a sanitizer: its
output still goes through nh3 (``html.sanitize``).
"""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from .autolink import autolink_plugin
from .highlight import INLINE_CODE_STYLE, code_block
from .math import escape_outside_math, math_plugin

# Parse-only rules: what decides where the blocks of a reply begin and end (see blocks.py).
_BLOCK_CORE_RULES = ["normalize", "block"]


def _fence(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    info = unescapeAll(token.info).strip() if token.info else ""
    return code_block(token.content, info.split(maxsplit=1)[0] if info else "")


def _code_block(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    return code_block(tokens[idx].content, "")


def _code_inline(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    return f'<code style="{INLINE_CODE_STYLE}">{escapeHtml(tokens[idx].content)}</code>'


def _text(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    return escape_outside_math(tokens[idx].content)


def _image_as_link(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    label = self.renderInlineAsText(token.children or [], options, env) or src
    return f'<a href="{escapeHtml(src)}">[image: {escape_outside_math(label)}]</a>'


def _list_item(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    """A task list item shows a box character: a form control would not survive sanitizing."""
    token = tokens[idx]
    if token.meta and "checked" in token.meta:
        box = "☑" if token.meta["checked"] else "☐"
        return f'<li style="list-style-type:none">{box} '
    return self.renderToken(tokens, idx, options, env)


def make_parser() -> MarkdownIt:
    """A parser for replies (not thread-safe: use one per thread)."""
    md = MarkdownIt("commonmark", {"html": False, "tasklists": True})
    md.enable(["table", "strikethrough"])
    md.use(autolink_plugin)
    md.use(math_plugin)
    for name, rule in {
        "fence": _fence,
        "code_block": _code_block,
        "code_inline": _code_inline,
        "text": _text,
        "image": _image_as_link,
        "list_item_open": _list_item,
    }.items():
        md.add_render_rule(name, rule)
    return md


def make_block_parser() -> MarkdownIt:
    """The same parser stopped after the block structure (no inline parsing): cheap enough to
    run on every update of a streaming reply."""
    md = make_parser()
    md.core.ruler.enableOnly(_BLOCK_CORE_RULES)
    return md
