"""Highlighted code: colours readable in light and dark themes, plain text when the language is unknown."""

from __future__ import annotations

import re

import pytest

from mistral_magic.render.highlight import PALETTE, ThemeNeutralStyle, code_block
from mistral_magic.render.html import render_markdown
from tests.support.htmlshape import parse

# JupyterLab's light and dark theme backgrounds (--jp-layout-color0, --jp-layout-color1), bare and
# under the code block's translucent grey.
BACKGROUNDS = ["#ffffff", "#f2f2f2", "#111111", "#1c1c1c", "#212121", "#2b2b2b"]


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    low, high = sorted([luminance(a), luminance(b)])
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("name", sorted(PALETTE))
def test_every_colour_reads_on_light_and_dark_backgrounds(name):
    assert min(contrast(PALETTE[name], bg) for bg in BACKGROUNDS) >= 3.3


def test_the_style_uses_only_the_palette():
    used = {c.lower() for rule in ThemeNeutralStyle.styles.values() for c in re.findall(r"#[0-9a-fA-F]{6}", rule)}
    assert used and used <= set(PALETTE.values())


def test_highlighted_code_keeps_its_text_and_indentation_exactly():
    code = "def f(x):\n\tif x:\n        return [x,  'a\\tb']  # note\n\n    pass\n"
    html = render_markdown(f"```python\n{code}```")
    (pre,) = parse(html).find_all("pre")
    assert pre.text() == code
    assert {s.attrs["style"] for s in pre.find_all("span")} >= {"color:#B35AD6;font-weight:bold"}


@pytest.mark.parametrize("fence", ["```", "```nosuchlanguage", "~~~ {.unknown}", "```  "])
def test_missing_or_unknown_language_is_plain_text_with_a_background(fence):
    html = render_markdown(f"{fence}\nif x: <b>y</b>\n{fence.split()[0][:3]}")
    (pre,) = parse(html).find_all("pre")
    assert pre.find_all("span") == [] and pre.text() == "if x: <b>y</b>\n"
    assert "background-color" in pre.attrs["style"]


def test_indented_code_and_inline_code_get_a_background():
    root = parse(render_markdown("    indented()\n\nand `inline`"))
    (pre,) = root.find_all("pre")
    assert pre.text() == "indented()\n" and "background-color" in pre.attrs["style"]
    inline = [c for c in root.find_all("code") if c.text() == "inline"]
    assert inline and "background-color" in inline[0].attrs["style"]


def test_language_names_are_case_insensitive_and_aliases_work():
    for fence in ("```Python", "```py", "```bash", "```js"):
        (pre,) = parse(code_block("x = 1 # c\n", fence[3:])).find_all("pre")
        assert pre.find_all("span"), fence
