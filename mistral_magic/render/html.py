"""Markdown to safe HTML: model output is untrusted, so raw HTML is never passed through.

Two layers: the markdown parser is told not to recognise raw HTML (it comes out as escaped
text), and every fragment then goes through nh3 (the ammonia sanitizer) with a short allow-list:
no script, no event handlers, no style except text alignment, links only to http, https and
mailto. Images are turned into links, so a reply cannot make the page fetch a URL by itself
(prompt-injected images are a known way to leak data through their URL).
"""

from __future__ import annotations

import html as _html
import xml.etree.ElementTree as etree

import markdown
import nh3
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

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
_ATTRIBUTES = {"a": {"href", "title"}, "th": {"style"}, "td": {"style"}, "ol": {"start"}, "abbr": {"title"}}
_URL_SCHEMES = {"http", "https", "mailto"}


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    # Only absolute http(s) and mailto links: relative URLs would point into the Jupyter server.
    if attribute == "href" and not value.lower().startswith(("http://", "https://", "mailto:")):
        return None
    return value


_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style"},
    attributes=_ATTRIBUTES,
    url_schemes=_URL_SCHEMES,
    attribute_filter=_keep_attribute,
    filter_style_properties={"text-align"},
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def sanitize(fragment: str) -> str:
    """``fragment`` with everything outside the allow-list removed."""
    return _CLEANER.clean(fragment)


class _ImagesAsLinks(Treeprocessor):
    """``![alt](url)`` becomes a link: nothing is fetched unless the reader clicks."""

    def run(self, root: etree.Element) -> None:
        for image in root.iter("img"):
            src = image.get("src", "")
            label = image.get("alt") or src
            image.tag = "a"
            image.attrib.clear()
            image.set("href", src)
            image.text = f"[image: {label}]"


class _UntrustedMarkdown(Extension):
    """Raw HTML stays text, and images become links."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 - markdown's API
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_ImagesAsLinks(md), "images_as_links", 0)


class MarkdownRenderer:
    """Renders markdown fragments to sanitized HTML with one reusable parser."""

    def __init__(self) -> None:
        self._md = markdown.Markdown(
            extensions=["fenced_code", "tables", "sane_lists", _UntrustedMarkdown()],
            output_format="html",
        )

    def render(self, text: str) -> str:
        """Sanitized HTML for ``text``."""
        self._md.reset()
        return sanitize(self._md.convert(text))


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
