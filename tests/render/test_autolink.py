"""Bare links (GitHub's autolink extension): the links mdit-py-plugins' gfm_autolink finds, found in
time linear in the reply (issue 19, item 9: a one-line JSON reply of 279 KB took 70 s)."""

from __future__ import annotations

import json
import random

import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.gfm_autolink import gfm_autolink_plugin

from mistral_magic.render.autolink import autolink_plugin
from mistral_magic.render.parser import make_parser

# GitHub's spec examples of the extension (https://github.github.com/gfm/#autolinks-extension-).
GFM_EXAMPLES = [
    "www.commonmark.org",
    "Visit www.commonmark.org/help for more information.",
    "Visit www.commonmark.org.\n\nVisit www.commonmark.org/a.b.",
    "www.google.com/search?q=Markup+(business)\n\nwww.google.com/search?q=Markup+(business)))\n\n"
    "(www.google.com/search?q=Markup+(business))\n\n(www.google.com/search?q=Markup+(business)",
    "www.google.com/search?q=(business))+ok",
    "www.google.com/search?q=commonmark&hl=en\n\nwww.google.com/search?q=commonmark&hl;",
    "www.commonmark.org/he<lp",
    "http://commonmark.org\n\n(Visit https://encrypted.google.com/search?q=Markup+(business))",
    "foo@bar.baz",
    "hello@mail+xyz.example isn't valid, but hello+xyz@mail.example is.",
    "a.b-c_d@a.b\n\na.b-c_d@a.b.\n\na.b-c_d@a.b-\n\na.b-c_d@a.b_",
    "mailto:foo@bar.baz\n\nmailto:a.b-c_d@a.b\n\nmailto:a.b-c_d@a.b.\n\nmailto:a.b-c_d@a.b/\n\n"
    "mailto:a.b-c_d@a.b-\n\nmailto:a.b-c_d@a.b_\n\nxmpp:foo@bar.baz\n\nxmpp:foo@bar.baz/txt\n\n"
    "xmpp:foo@bar.baz/txt@bin\n\nxmpp:foo@bar.baz/txt@bin.com",
    "xmpp:foo@bar.baz/txt/bin",
]
# Where a window that reads less than the rest of the paragraph could go wrong: the end of a domain,
# of the text, whitespace and "<" (which ends a link), underscores, entities, parentheses, links.
EDGE_CASES = [
    "http:// x",
    "see http://a.b<c d and https://a<b.c/d e",
    'a {"url":"https://example.org/x?y=1","mail":"mailto:me@example.org","w":"www.example.org"} z',
    "http://a_b.c_d.e! https://a.b_c! https://x.y_z.w http://a_b.c.d.e.f.g.h.i.j.k.l.m_n",
    "https://example.org/a&amp; b https://example.org/q?a=1&hl; c",
    "https://en.wikipedia.org/wiki/Markdown_(disambiguation)) (https://x.org/a_(b)c)",
    "[http://inside.link](http://target.org) and [see www.inside.org](x) and [a@b.co](y)",
    "*http://emphasis.org* _www.under.org_ ~https://tilde.org~ (mailto:a@b.co)",
    "http:\thttp://tab.org\x0bhttps://vt.org\x0cwww.ff.org\r\nxmpp:a@b.c/d/e@f.g",
    "end with http://last.org",
    "x@y.z@w.org a@b. a@b.c- a@b.c_ foo@bar.baz/path mailto:a@ mailto:@b.c xmpp:a@b/c",
    "https://例え.jp/パス https://a.b。c https://exa mple.org www.a.b.c.d.e.f.g.h.i.j.k_l.m_n",
]
_PIECES = [
    "http", "https", "mailto", "xmpp", "www.", "://", ":", "/", "@", ".", "_", "-", "+", " ", "\t", "\n",
    "(", ")", "<", "&", ";", "*", "~", "[", "](", "a", "b", "x.y", "例", "。", '"', "\\", "`",
]  # fmt: skip


def _parser(plugin) -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).use(plugin)


def _tokens(md: MarkdownIt, text: str) -> list[tuple]:
    """Every token of ``text``, inline ones included, as comparable tuples."""
    flat = []
    for token in md.parse(text):
        flat.extend([token, *(token.children or [])])
    return [(t.type, t.content, t.attrs, t.markup, t.info) for t in flat]


def _fuzz(count: int) -> list[str]:
    rng = random.Random(19)
    return ["".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 40))) for _ in range(count)]


def test_the_same_tokens_as_mdit_py_plugins_gfm_autolink():
    upstream, ours = _parser(gfm_autolink_plugin), _parser(autolink_plugin)
    for text in [*GFM_EXAMPLES, *EDGE_CASES, *_fuzz(4_000)]:
        assert _tokens(ours, text) == _tokens(upstream, text), repr(text)
    links = sum(t[0] == "link_open" for text in GFM_EXAMPLES + EDGE_CASES for t in _tokens(ours, text))
    assert links > 40  # the examples do find links
    assert 'href="http://www.commonmark.org/help"' in ours.render(GFM_EXAMPLES[1])


class CountingText(str):
    """Source text that counts the characters copied out of it by slicing: the work a rule does
    when it reads "the rest of the paragraph" at a trigger character."""

    copied = 0

    def __getitem__(self, key):  # type: ignore[override]
        piece = str.__getitem__(self, key)
        if isinstance(key, slice):
            CountingText.copied += len(piece)
        return piece


def copied_while_parsing(text: str) -> int:
    md = make_parser()
    CountingText.copied = 0
    md.inline.parse(CountingText(text), md, {}, [])
    return CountingText.copied


def _json_reply(size: int) -> str:
    """A compact one-line JSON answer of ``size`` characters, as ``--json`` and ``--schema`` get."""
    rows, row = [], 0
    while sum(map(len, rows)) < size:
        rows.append(
            json.dumps(
                {"id": row, "label": "positive", "url": f"https://example.org/r/{row}", "by": f"user{row}@example.org"},
                separators=(",", ":"),
            )
        )
        row += 1
    return "[" + ",".join(rows) + "]"


def _thinking(size: int) -> str:
    """A long paragraph of reasoning, with colons, a few links and addresses and no blank line."""
    sentence = "Step: check the label: positive or negative; see http://example.org/x or ask a@b.org. "
    return (sentence * (size // len(sentence) + 1))[:size]


def _html_in_json(size: int) -> str:
    """Compact JSON of HTML snippets: each link is cut at a "<", and no whitespace ends the text."""
    snippet = '{"html":"<p>(http://example.org/page</p><p>(www.example.org/a</p>"},'
    return "[" + snippet * (size // len(snippet)) + "{}]"


@pytest.mark.parametrize(
    "reply", [_json_reply, _thinking, _html_in_json], ids=["one-line JSON", "thinking paragraph", "HTML in JSON"]
)
def test_the_inline_rules_read_each_character_a_bounded_number_of_times(reply):
    small, large = reply(20_000), reply(80_000)
    assert copied_while_parsing(large) < 3 * len(large)
    assert copied_while_parsing(large) < 5 * copied_while_parsing(small)  # linear: 4x the text, 4x the work
