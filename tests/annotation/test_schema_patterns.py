"""A ``pattern`` in a ``--schema`` is checked in time linear in the reply (issue 19, item 10):
``^(a+)+$`` against a crafted reply froze the kernel in Python's backtracking ``re``, deaf to
Ctrl-C. Patterns that need backtracking are refused in one line before anything is sent."""

from __future__ import annotations

import json
import random
import re

import pytest

from mistral_magic import SchemaReplyError
from mistral_magic.annotation.pattern import PatternError, linear_pattern
from mistral_magic.annotation.schema import resolve
from mistral_magic.errors import UsageError
from tests.fakeapi import Reply
from tests.support import TEST_KEY, loaded_kernel, messages_until_idle, shown

HOSTILE = "^(a+)+$"
CRAFTED = json.dumps({"code": "a" * 5_000 + "!"})  # Python's re would try 2**5000 ways
SCHEMA = {"type": "object", "properties": {"code": {"type": "string", "pattern": HOSTILE}}, "required": ["code"]}

PATTERNS = [
    r"abc", r"^a.c$", r"a.c", r"(?s)a.c", r"^\d{2,4}-\d+$", r"[a-c]+x?", r"[^a-c\s]{2}", r"colou?r",
    r"(cat|dog)s?\b", r"\bthe\B", r"\Bhe\b", r"^$", r"$", r"\A\w*\Z", r"^b", r"(?m)^b$", r"a$", r"(?m)a$",
    r"(?i)ABC", r"(?i:a)B", r"(?i)a(?-i:B)", r"(?a)\w+", r"\w+", r"\s\S\d\D\W", r"[\w-]+@[\w-]+\.\w+",
    r"(a|ab)(c|bcd)(d*)", r"(a*)*b", r"(a|a)*$", r"^(a+)+$", r"x{3}", r"x{2,}", r"x{0,2}y", r"(?:ab){1,3}?c",
    r"[.]", r"\.", r"[\]\\-]", r"é+", r"(?i)É", r"\u00e9|\U0001F600", r"[^\n]+", r".+", r"(?x) a  b # c",
    r"^(?:[a-z0-9]+(?:-[a-z0-9]+)*)$", r"\d*\d*\d*x", r"(?i)[a-z]+\d",
]  # fmt: skip
ALPHABET = ["a", "b", "c", "A", "B", "x", "y", "1", "2", "-", "@", ".", " ", "\n", "é", "É", "😀", "_", "d", "s"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_same_verdict_as_pythons_re_search(pattern):
    rng = random.Random(pattern)
    texts = [
        "",
        "a",
        "abc",
        "\n",
        "b\n",
        "ab\nb",
        *("".join(rng.choices(ALPHABET, k=rng.randint(0, 12))) for _ in range(300)),
    ]
    linear = linear_pattern(pattern)
    for text in texts:
        assert linear.search(text) == bool(re.search(pattern, text)), (pattern, text)


def test_a_crafted_text_is_checked_at_once():
    assert not linear_pattern(HOSTILE).search("a" * 100_000 + "!")
    assert linear_pattern(HOSTILE).search("a" * 100_000)
    assert not linear_pattern(r"(\w|\d)*\d*\d*\d*x").search("1" * 20_000)


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        (r"(a)\1", "backreference"),
        (r"a(?=b)", "lookahead or lookbehind"),
        (r"(?<!a)b", "lookahead or lookbehind"),
        (r"(a)?(?(1)b|c)", "conditional"),
        (r"(?>a+)b", "atomic group"),
        (r"a++b", "possessive"),
        (r"((a{100}){100}){10}", "too large"),
        (r"(ab", "not a valid regular expression"),
    ],
)
def test_patterns_that_need_backtracking_are_refused(pattern, says):
    with pytest.raises(PatternError) as caught:
        linear_pattern(pattern)
    assert says in str(caught.value)
    nested = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string", "pattern": pattern}}}}
    with pytest.raises(UsageError) as refused:
        resolve(nested)
    assert "/properties/a/items" in str(refused.value) and says in str(refused.value)
    assert "\n" not in str(refused.value)


def test_pattern_properties_are_refused_and_a_field_named_pattern_is_not():
    with pytest.raises(UsageError) as caught:
        resolve({"type": "object", "properties": {}, "patternProperties": {"^x": {"type": "string"}}})
    assert "patternProperties" in str(caught.value)
    fields = {"pattern": {"type": "string"}, "patternProperties": {"type": "string"}}
    assert resolve({"type": "object", "properties": fields}).json_schema["properties"] == fields


def test_a_single_cell_reply_against_a_backtracking_pattern_is_an_invalid_answer(shell, fake):
    shell.ns["t_schema"] = SCHEMA
    fake.script(Reply(text=CRAFTED), Reply(text='{"code": "aaa"}'))
    run = shell.ok("%%mistral --schema t_schema --out t_v\nA code, please.")
    assert shell.ns["t_v"] == {"code": "aaa"}
    assert f"does not match '{HOSTILE}'" in run.stderr and "asking again (repair 1 of 1)" in run.stderr
    fake.script(Reply(text=CRAFTED))
    failed = shell.run("%%mistral --schema t_schema --repair 0\nAgain.")
    assert isinstance(failed.error, SchemaReplyError) and HOSTILE in str(failed.error)


def test_each_item_with_a_crafted_reply_is_reported_and_the_run_goes_on(shell, fake):
    shell.ns["t_schema"] = SCHEMA
    shell.ns["t_items"] = ["one", "two", "three"]
    fake.default_reply = lambda request: Reply(
        text=CRAFTED if "two" in request["messages"][-1]["content"] else '{"code": "a"}'
    )
    run = shell.ok("%%mistral --each t_items --schema t_schema --repair 0 --out t_codes\nCode for {item}")
    assert "3 items: 2 answered" in run.stdout and "1 failed" in run.stdout
    errors = shell.magics.session.last_run.errors
    assert [e.item for e in errors] == ["two"] and HOSTILE in errors[0].error


def test_a_kernel_checking_a_crafted_reply_stays_responsive(fake, monkeypatch):
    """In a real kernel: the cell ends (with the invalid answer) instead of freezing the kernel."""
    monkeypatch.setenv("MISTRAL_BASE_URL", fake.url + "/v1")
    monkeypatch.setenv("MISTRAL_API_KEY", TEST_KEY)
    fake.script(Reply(text=CRAFTED))
    with loaded_kernel(f"%load_ext mistral_magic\nt_schema = {SCHEMA!r}") as client:
        messages = messages_until_idle(client, client.execute("%%mistral --schema t_schema --repair 0\nA code."))
        errors = [m["content"]["ename"] for m in messages if m["msg_type"] == "error"]
        assert errors == ["SchemaReplyError"] and HOSTILE in shown(messages)
