"""Replies in the shapes models write, each with a structural check of its rendered HTML."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.htmlshape import Node


def _only(root: Node, *tags: str) -> list[Node]:
    assert root.child_tags() == list(tags), root.child_tags()
    return [c for c in root.children if isinstance(c, Node)]


def _items(node: Node) -> list[Node]:
    return [c for c in node.children if isinstance(c, Node) and c.tag == "li"]


def _own_text(node: Node) -> str:
    return "".join(c for c in node.children if isinstance(c, str)).strip()


def _no_emphasis(root: Node) -> None:
    assert not root.find_all("em") and not root.find_all("strong")


def _math(root: Node) -> list[str]:
    return [n.text() for n in root.descendants() if "math" in n.attrs.get("class", "").split()]


def _coloured_spans(node: Node) -> list[Node]:
    return [s for s in node.find_all("span") if "color:" in s.attrs.get("style", "")]


def check_steps_after_paragraph(root: Node) -> None:
    p, ol = _only(root, "p", "ol")
    assert p.text() == "Here are the steps:"
    assert [li.text() for li in _items(ol)] == ["Install it", "Run it", "Test it"]


def check_bullets_after_paragraph(root: Node) -> None:
    p, ul = _only(root, "p", "ul")
    assert p.text() == "Two options:" and [li.text() for li in _items(ul)] == ["fast", "cheap"]


def check_two_space_sub_list(root: Node) -> None:
    (ul,) = _only(root, "ul")
    top, nxt = _items(ul)
    assert _own_text(top) == "top" and nxt.text() == "next"
    (sub,) = top.find_all("ul")
    assert [li.text() for li in _items(sub)] == ["child one", "child two"]


def check_three_space_sub_list(root: Node) -> None:
    (ol,) = _only(root, "ol")
    first, second, third = _items(ol)
    assert not first.find_all("ul") and not third.find_all("ul")
    assert _own_text(second) == "Second"
    (sub,) = second.find_all("ul")
    assert [li.text() for li in _items(sub)] == ["detail", "more detail"]


def check_list_continues_after_blank_lines(root: Node) -> None:
    (ol,) = _only(root, "ol")
    assert [li.text().strip() for li in _items(ol)] == ["one", "two", "three"]


def check_code_in_list_item(root: Node) -> None:
    (ol,) = _only(root, "ol")
    install, run = _items(ol)
    (pre,) = install.find_all("pre")
    assert pre.text() == "import os\nprint(os.getcwd())\n"
    assert _coloured_spans(pre), "the code in the list item is highlighted"
    assert "background-color" in pre.attrs.get("style", "")
    assert run.text().strip() == "Run it."


def check_four_math_delimiters(root: Node) -> None:
    assert _math(root) == [
        "$a_1 * b_1$",
        "\\(x_i * y_i\\)",
        "$$\\sum_{i} a_i * b_i$$",
        "\\[\n\\int_0^1 f_*(x)\\,dx * g_*(x)\n\\]",
        "\\[c_1 * c_2\\]",
    ]
    _no_emphasis(root)


def check_dollar_amounts(root: Node) -> None:
    (p,) = _only(root, "p")
    assert p.text() == "It costs $5 and $10, or $15 in total; \\(not math."
    assert _math(root) == []
    # Every $ sits alone in its element, so MathJax cannot pair two of them.
    assert all(s.text() in ("$", "\\") for s in p.find_all("span"))
    assert len(p.find_all("span")) == 4


def check_strikethrough(root: Node) -> None:
    (p,) = _only(root, "p")
    assert [n.text() for n in p.find_all("s") + p.find_all("del")] == ["wrong"]


def check_task_list(root: Node) -> None:
    (ul,) = _only(root, "ul")
    assert [li.text().strip() for li in _items(ul)] == ["☐ write tests", "☑ fix the parser"]
    assert not root.find_all("input")


def check_highlighted_code(root: Node) -> None:
    (pre,) = _only(root, "pre")
    assert pre.text() == 'def area(r):\n    """Circle."""\n    return 3.14 * r ** 2  # approx\n'
    spans = _coloured_spans(pre)
    assert {s.text() for s in spans} >= {"def", "return", "# approx"}
    assert "background-color" in pre.attrs["style"]


def check_unknown_language_is_plain(root: Node) -> None:
    (pre,) = _only(root, "pre")
    assert pre.text() == "<b>kept</b> as text\n" and not pre.find_all("span") and not pre.find_all("b")


def check_table(root: Node) -> None:
    (table,) = _only(root, "table")
    assert [th.text() for th in table.find_all("th")] == ["name", "score"]
    assert [td.text() for td in table.find_all("td")] == ["Ada", "10"]


def check_math_in_heading_and_item(root: Node) -> None:
    h2, ul = _only(root, "h2", "ul")
    assert _math(h2) == ["$E = mc^2$"]
    assert _math(ul) == ["\\(p_* = q_*\\)"]
    _no_emphasis(root)


REPLY_SHAPES: dict[str, tuple[str, Callable[[Node], None]]] = {
    "ordered list right after a paragraph": (
        "Here are the steps:\n1. Install it\n2. Run it\n3. Test it",
        check_steps_after_paragraph,
    ),
    "bullets right after a paragraph": ("Two options:\n- fast\n- cheap", check_bullets_after_paragraph),
    "2-space sub-list": ("- top\n  - child one\n  - child two\n- next", check_two_space_sub_list),
    "3-space sub-list": ("1. First\n2. Second\n   - detail\n   - more detail\n3. Third", check_three_space_sub_list),
    "list continuing after blank lines": ("1. one\n\n2. two\n\n\n3. three", check_list_continues_after_blank_lines),
    "fenced code in a list item": (
        "1. Install:\n   ```python\n   import os\n   print(os.getcwd())\n   ```\n2. Run it.",
        check_code_in_list_item,
    ),
    "four math delimiters": (
        (
            "Inline $a_1 * b_1$ and \\(x_i * y_i\\), then\n$$\\sum_{i} a_i * b_i$$\n\n"
            "\\[\n\\int_0^1 f_*(x)\\,dx * g_*(x)\n\\]\n\nand \\[c_1 * c_2\\] inline."
        ),
        check_four_math_delimiters,
    ),
    "dollar amounts": ("It costs $5 and $10, or $15 in total; \\\\(not math.", check_dollar_amounts),
    "strikethrough": ("This is ~~wrong~~ right.", check_strikethrough),
    "task list": ("- [ ] write tests\n- [x] fix the parser", check_task_list),
    "highlighted code": (
        '```python\ndef area(r):\n    """Circle."""\n    return 3.14 * r ** 2  # approx\n```',
        check_highlighted_code,
    ),
    "unknown language": ("```nosuchlanguage\n<b>kept</b> as text\n```", check_unknown_language_is_plain),
    "table": ("| name | score |\n|---|--:|\n| Ada | 10 |", check_table),
    "math in a heading and a list item": (
        "## Energy $E = mc^2$\n\n- where \\(p_* = q_*\\) holds",
        check_math_in_heading_and_item,
    ),
}
