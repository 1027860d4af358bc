"""Rendering: safe HTML, incremental blocks equal to a one-shot render, the live widget view."""

from __future__ import annotations

import random

import pytest
from hostile import HOSTILE_REPLIES, problems

from mistral_magic.render.blocks import BlockSplitter
from mistral_magic.render.html import render_markdown
from mistral_magic.render.static import final_bundle

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
        assert "\n".join(render_markdown(b) for b in blocks) == render_markdown(doc)


def test_a_code_fence_stays_one_block_until_it_closes():
    splitter = BlockSplitter()
    assert splitter.feed("```\na\n\nb\n") == []
    assert splitter.in_fence == "```"
    assert splitter.feed("```\n\nnext\n") == ["```\na\n\nb\n```"]
    assert splitter.in_fence is None


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
