"""{name} interpolation: replaces notebook variables once, leaves everything else as written."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mistral_magic.interpolate import interpolate

NS = {
    "name": "Ada",
    "n": 3,
    "point": SimpleNamespace(x=1.5, _hidden="no"),
    "data": {"key": "value", 2: "two"},
    "items": ["zero", "one"],
    "template": "{name}",
}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello {name}, n={n}", "Hello Ada, n=3"),
        ("x is {point.x}", "x is 1.5"),
        ("{data[key]} {data['key']} {data[\"key\"]} {data[2]}", "value value value two"),
        ("{items[1]} {items[-1]}", "one one"),
        ("unknown {nobody} stays", "unknown {nobody} stays"),
        ("missing attr {point.y} stays", "missing attr {point.y} stays"),
        ("private {point._hidden} stays", "private {point._hidden} stays"),
        ("bad index {items[5]} stays", "bad index {items[5]} stays"),
        ('json {"label": "positive"} stays', 'json {"label": "positive"} stays'),
        ('nested {"a": {"b": 1}} stays', 'nested {"a": {"b": 1}} stays'),
        (r"latex \frac{a}{b} and \textbf{\emph{x}}", r"latex \frac{a}{b} and \textbf{\emph{x}}"),
        (r"a variable in latex \frac{{n}}{2} keeps braces", r"a variable in latex \frac{n}{2} keeps braces"),
        ("code: def f(): return {k: v for k, v in d}", "code: def f(): return {k: v for k, v in d}"),
        ("escaped {{name}} is literal", "escaped {name} is literal"),
        ("empty {} and spaced { name } stay", "empty {} and spaced { name } stay"),
        ("runs once: {template}", "runs once: {name}"),
    ],
)
def test_interpolation(text, expected):
    assert interpolate(text, NS) == expected


def test_text_without_braces_is_returned_unchanged():
    text = "plain question?"
    assert interpolate(text, NS) == text
