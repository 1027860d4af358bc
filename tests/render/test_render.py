"""Rendering: safe HTML, incremental blocks equal to a one-shot render, the live widget view."""

from __future__ import annotations

import random

import pytest

from mistral_magic.render.blocks import BlockSplitter
from mistral_magic.render.html import render_markdown
from mistral_magic.render.parser import make_block_parser
from mistral_magic.render.static import final_bundle
from tests.support.hostile import HOSTILE_REPLIES, problems
from tests.support.htmlshape import parse
from tests.support.reply_shapes import REPLY_SHAPES

CORPUS = [
    "# Title\n\nIntro with **bold**, *em*, `code` and a [link](https://example.org).\n\n## Sub\n\nText.",
    "- one\n- two\n  - nested\n- three\n\nAfter the list.",
    "- loose one\n\n- loose two\n\n  continued paragraph\n\n- three",
    "1. first\n2. second\n\n3. third\n\nDone.",
    "| a | b |\n|:--|--:|\n| 1 | 2 |\n| 3 | 4 |\n\nBelow the table.",
    "```python\ndef f():\n\n    return '<b>'\n```\n\nAfter code.\n\n~~~\nraw ~~~ inside\n~~~",
    "> quoted\n> more\n\n> second quote\n\nplain",
    "Setext\n======\n\ntext\n\n***\n\n    indented code\n\nend",
    "line one  \nline two\n\n- a\n\n1. b",
    "Text with <b>raw html</b> and <script>x</script>\n\n<div>block html</div>",
    "Steps:\n1. one\n\n   more on one\n\n2. two\n   ```sh\n   ls\n\n   pwd\n   ```\n\nDone: $x_1$ and \\(y_*\\).",
    "\\begin{align}\na_1 &= b \\\\\n\nc_* &= d\n\\end{align}\n\nafter the environment",
    "$$\nx_1\n$$\n\n\\[\ny_2\n\\]\n\n# Heading $h$\n\n---\n\n> quote with \\(q_1\\)\n>\n> - item",
    "Windows line ends:\r\n- a\r\n- b\r\n\r\nend\rold mac",
    "    indented code\n\n    more code\nparagraph\n\n| a |\n|---|\n| $1 |\n\nafter",
]


def split_randomly(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    pieces, i = [], 0
    while i < len(text):
        n = rng.randint(1, 9)
        pieces.append(text[i : i + n])
        i += n
    return pieces


@pytest.mark.parametrize("doc", CORPUS)
def test_blocks_rendered_one_by_one_equal_a_one_shot_render(doc):
    for seed in range(20):
        splitter = BlockSplitter()
        blocks = []
        for piece in split_randomly(doc, seed):
            blocks.extend(splitter.feed(piece))
        assert "".join(blocks) + splitter.tail != "" and splitter.tail.strip()
        blocks.append(splitter.tail)
        assert "".join(render_markdown(b) for b in blocks) == render_markdown(doc)


def test_a_code_fence_stays_one_block_until_it_closes():
    splitter = BlockSplitter()
    assert splitter.feed("```\na\n\nb\n") == []
    assert splitter.in_fence == "```"
    assert splitter.feed("```\n\nnext\n") == ["```\na\n\nb\n```\n"]
    assert splitter.in_fence is None


def test_only_a_real_closing_line_ends_an_open_fence():
    splitter = BlockSplitter()
    assert splitter.feed("````py\nx = 1\n```\n~~~~\n  ````  x\n") == []  # too short, other char, words after
    assert splitter.in_fence == "````"
    assert splitter.feed("   `````\n\nafter\n") == ["````py\nx = 1\n```\n~~~~\n  ````  x\n   `````\n"]


LONG_BLOCKS = {
    "code": "```python\n" + "".join(f"x_{i} = compute({i})\n" for i in range(2000)) + "```\n",
    "list": "".join(f"- item {i}: a few words\n" for i in range(2000)),
    "table": "| n | word |\n|---|---|\n" + "".join(f"| {i} | w{i} |\n" for i in range(2000)),
}


@pytest.mark.parametrize("kind", sorted(LONG_BLOCKS))
def test_a_long_block_streams_in_linear_time_and_renders_as_one_shot(kind):
    """The parser reads the growing block again only when it has grown by an eighth (a code block:
    not before its closing line), so 2,000 lines cost about 9 reads of the text, not 1,000."""
    parser = make_block_parser()
    parsed: list[int] = []
    parse = parser.parse
    parser.parse = lambda text, env=None: parsed.append(len(text)) or parse(text, env)  # type: ignore[method-assign]
    text = f"Intro:\n\n{LONG_BLOCKS[kind]}\nDone.\n"
    splitter = BlockSplitter(parser)
    blocks = [block for start in range(0, len(text), 10) for block in splitter.feed(text[start : start + 10])]
    assert blocks == ["Intro:\n", LONG_BLOCKS[kind]] and splitter.tail == "Done.\n"
    assert sum(parsed) < 12 * len(text)
    assert "".join(render_markdown(block) for block in [*blocks, splitter.tail]) == render_markdown(text)


@pytest.mark.parametrize("name", sorted(HOSTILE_REPLIES))
def test_hostile_replies_render_inert(name):
    html = final_bundle(HOSTILE_REPLIES[name])["text/html"]
    assert problems(html) == [], html


def test_safe_markdown_still_renders():
    html = render_markdown("**b** [ok](https://example.org) [m](mailto:a@example.org)\n\n| a |\n|---|\n| 1 |")
    assert "<strong>b</strong>" in html and 'href="https://example.org"' in html
    assert 'href="mailto:a@example.org"' in html and "<table>" in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_images_become_links_and_raw_html_stays_text():
    html = render_markdown("![chart](https://example.org/c.png) <b>bold?</b>")
    assert "<img" not in html and 'href="https://example.org/c.png"' in html and "[image: chart]" in html
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html


@pytest.mark.parametrize("name", sorted(REPLY_SHAPES))
def test_reply_shapes_in_the_final_display(name):
    text, check = REPLY_SHAPES[name]
    check(parse(final_bundle(text)["text/html"]))


@pytest.mark.parametrize("name", sorted(REPLY_SHAPES))
def test_reply_shapes_streamed_in_blocks_equal_a_one_shot_render(name):
    text = REPLY_SHAPES[name][0] + "\n\nThe end."
    for seed in range(10):
        splitter = BlockSplitter()
        blocks = [block for piece in split_randomly(text, seed) for block in splitter.feed(piece)]
        assert "".join(render_markdown(b) for b in [*blocks, splitter.tail]) == render_markdown(text)
