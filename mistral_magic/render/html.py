"""Markdown to safe HTML: model output is untrusted, so raw HTML is never passed through.

Two layers: the markdown parser (``parser.py``) does not recognise raw HTML (it comes out as
escaped text) and renders images as links; every fragment then goes through nh3 (the ammonia
sanitizer) with a short allow-list: no script, no event handlers, inline styles limited to the few
properties our own rendering uses (text alignment, code colours and backgrounds), links only to
http, https and mailto.
"""

from __future__ import annotations

import html as _html

import nh3
from markdown_it import MarkdownIt

from ..textsafe import encodable
from .parser import make_parser

_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "b",
    "i",
    "u",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "sup",
    "sub",
    "div",
    "span",
    "dl",
    "dt",
    "dd",
    "abbr",
    "details",
    "summary",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "th": {"style"},
    "td": {"style"},
    "ol": {"start"},
    "abbr": {"title"},
    "li": {"style"},
    "pre": {"style"},
    "code": {"style"},
    "span": {"style", "class"},
    "div": {"class"},
}
_STYLE_PROPERTIES = {
    "text-align",
    "color",
    "font-weight",
    "font-style",
    "background-color",
    "padding",
    "border-radius",
    "overflow-x",
    "list-style-type",
}
_CLASSES = {"math", "math display"}
_URL_SCHEMES = {"http", "https", "mailto"}


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    # Only absolute http(s) and mailto links: relative URLs would point into the Jupyter server.
    if attribute == "href" and not value.lower().startswith(("http://", "https://", "mailto:")):
        return None
    if attribute == "class" and value not in _CLASSES:
        return None  # only the classes our math spans carry
    return value


_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style"},
    attributes=_ATTRIBUTES,
    url_schemes=_URL_SCHEMES,
    attribute_filter=_keep_attribute,
    filter_style_properties=_STYLE_PROPERTIES,
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def sanitize(fragment: str) -> str:
    """``fragment`` with everything outside the allow-list removed."""
    return _CLEANER.clean(encodable(fragment))


class MarkdownRenderer:
    """Renders markdown fragments to sanitized HTML with one reusable parser."""

    def __init__(self, parser: MarkdownIt | None = None) -> None:
        self._md = parser or make_parser()

    def render(self, text: str) -> str:
        """Sanitized HTML for ``text``."""
        return sanitize(self._md.render(text))


_default: MarkdownRenderer | None = None


def render_markdown(text: str) -> str:
    """Sanitized HTML for markdown ``text`` (a shared parser; call from one thread)."""
    global _default
    if _default is None:
        _default = MarkdownRenderer()
    return _default.render(text)


def escape_text(text: str) -> str:
    """Plain text as HTML."""
    return _html.escape(text)
