"""HTML compared by structure: a normal form for equality, and a small tree for assertions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

BLOCK_TAGS = {
    "p", "div", "pre", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "br",
}  # fmt: skip
VOID_TAGS = {"br", "hr", "img", "input"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def descendants(self) -> list[Node]:
        """Every element below this one, in document order."""
        found = []
        for child in self.children:
            if isinstance(child, Node):
                found.append(child)
                found.extend(child.descendants())
        return found

    def find_all(self, tag: str) -> list[Node]:
        return [node for node in self.descendants() if node.tag == tag]

    def child_tags(self) -> list[str]:
        return [c.tag for c in self.children if isinstance(c, Node)]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("root")
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID_TAGS:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    """The element tree of an HTML fragment."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def normal_form(html: str, *, drop_style: bool = True) -> str:
    """A canonical rendering: sorted attributes, no whitespace between blocks, runs of whitespace
    collapsed outside ``<pre>``, and plain ``<span>`` wrappers (no attributes left) unwrapped."""
    out: list[str] = []

    def walk(node: Node, in_pre: bool) -> None:
        for child in node.children:
            if isinstance(child, str):
                text = child if in_pre else re.sub(r"\s+", " ", child)
                out.append(text)
                continue
            attrs = {k: v for k, v in child.attrs.items() if not (drop_style and k == "style")}
            if child.tag == "span" and not attrs:
                walk(child, in_pre)
                continue
            rendered = "".join(f' {k}="{v}"' for k, v in sorted(attrs.items()))
            out.append(f"<{child.tag}{rendered}>")
            walk(child, in_pre or child.tag == "pre")
            if child.tag not in VOID_TAGS:
                out.append(f"</{child.tag}>")

    walk(parse(html), False)
    text = "".join(out)
    tags = "|".join(BLOCK_TAGS)
    text = re.sub(rf"\s*(</?(?:{tags})\b[^>]*>)\s*", r"\1", text)
    return text.strip()
