"""Issue 19: replies that are no answer are reported as such, per item, and never kept or crash a
run: JSON nested too deep to decode (item 11), an empty reply (item 5), NaN and Infinity (item 14)."""

from __future__ import annotations

import json

import pytest

from mistral_magic.errors import JsonReplyError
from tests.fakeapi import Reply, last_user_message

DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON, deeper than Python can decode
GOOD = {"label": "positive"}


def deep_for(word: str, good: str = '{"label": "positive"}'):
    """A server that answers DEEP to prompts holding ``word`` and ``good`` to the others."""
    return lambda request: Reply(text=DEEP if word in last_user_message(request) else good)


def test_a_single_cell_reply_nested_too_deep_is_an_invalid_answer(shell, fake):
    fake.script(Reply(text=DEEP))
    run = shell.run("%%mistral --json --out t_v\nGive JSON.")
    assert isinstance(run.error, JsonReplyError) and "\n" not in str(run.error)
    assert "nested more than 200 levels deep" in str(run.error) and "t_v" not in shell.ns
    assert shell.magics.session.store.get("default").turns[-1].assistant == DEEP  # what was paid for is kept
    fake.script(Reply(text="[" * 300 + "]" * 300))  # decodable, but deeper than an answer is read
    assert "nested more than 200" in str(shell.run("%%mistral --json\nAgain.").error)
    fake.script(Reply(text="[" * 200 + "]" * 200))
    assert shell.ok("%%mistral --json --out t_v\nOnce more.") and shell.ns["t_v"] is not None


def test_an_each_json_item_nested_too_deep_is_reported_and_asked_again_next_run(shell, fake):
    fake.default_reply = deep_for("two")
    shell.ns["t_items"] = ["one", "two", "three"]
    run = shell.ok("%%mistral --each t_items --json --out t_v\nLabel {item}")
    assert "3 items: 2 answered (0 from the cache), 1 failed" in run.stdout
    assert shell.ns["t_v"] == [GOOD, None, GOOD]
    [error] = shell.magics.session.last_run.errors
    assert error.item == "two" and "nested more than 200 levels deep" in error.error and "\n" not in error.error
    fake.requests.clear()
    rerun = shell.ok("%%mistral --each t_items --json --out t_v\nLabel {item}")
    assert "(2 from the cache)" in rerun.stdout and [last_user_message(r.json()) for r in fake.requests] == [
        "Label two"
    ]


def test_a_schema_reply_nested_too_deep_is_repaired_like_any_invalid_answer(shell, fake):
    shell.ns["t_items"] = ["one", "two"]
    repaired = []

    def answer(request):
        prompt = last_user_message(request)
        if prompt == "Label two":
            return Reply(text=DEEP)
        repaired.append(prompt)
        return Reply(text=json.dumps(GOOD))

    fake.default_reply = answer
    run = shell.ok('%%mistral --each t_items --schema "label: positive|negative" --out t_v\nLabel {item}')
    assert "2 items: 2 answered (0 from the cache), 1 repaired" in run.stdout
    assert any("nested more than 200 levels deep" in text for text in repaired)


def test_a_batch_with_an_answer_nested_too_deep_is_collected_and_reports_it(batch_shell, fake):
    fake.default_reply = deep_for("two")
    batch_shell.ns["t_items"] = ["one", "two", "three"]
    run = batch_shell.ok("%%mistral --each t_items --json --batch --out t_v\nLabel {item}")
    assert batch_shell.ns["t_v"] == [GOOD, None, GOOD] and "1 failed" in run.stdout
    [error] = batch_shell.magics.session.last_run.errors
    assert error.item == "two" and "nested more than 200 levels deep" in error.error
    rerun = batch_shell.ok("%%mistral --each t_items --json --batch --out t_v\nLabel {item}")  # collects again
    assert batch_shell.ns["t_v"] == [GOOD, None, GOOD] and "(2 from the cache)" in rerun.stdout


# -- item 5: an empty reply is not an answer to keep --------------------------------------------------------


def empty_for(word: str):
    return lambda request: Reply(text="  \n" if word in last_user_message(request) else "fine")


def test_an_empty_each_reply_is_reported_not_cached_and_asked_again(shell, fake):
    fake.default_reply = empty_for("two")
    shell.ns["t_items"] = ["one", "two"]
    run = shell.ok("%%mistral --each t_items --out t_v\nSay {item}")
    assert "2 items: 1 answered (0 from the cache), 1 failed" in run.stdout and shell.ns["t_v"] == ["fine", None]
    assert [e.error for e in shell.magics.session.last_run.errors] == ["the reply is empty"]
    fake.requests.clear()
    fake.default_reply = lambda request: Reply(text="now")
    rerun = shell.ok("%%mistral --each t_items --out t_v\nSay {item}")
    assert [last_user_message(r.json()) for r in fake.requests] == ["Say two"]
    assert shell.ns["t_v"] == ["fine", "now"] and "(1 from the cache)" in rerun.stdout


def test_an_empty_cell_reply_is_not_served_from_the_cache(shell, fake):
    fake.script(Reply(text=""), Reply(text="an answer"))
    shell.ok("%%mistral --cache --once --out t_v\nhello")
    assert shell.ns["t_v"] == ""
    shell.ok("%%mistral --cache --once --out t_v\nhello")
    assert len(fake.requests) == 2 and shell.ns["t_v"] == "an answer"


def test_an_empty_batch_answer_is_reported_and_sent_again(batch_shell, fake):
    fake.default_reply = empty_for("two")
    batch_shell.ns["t_items"] = ["one", "two"]
    run = batch_shell.ok("%%mistral --each t_items --batch --out t_v\nSay {item}")
    assert batch_shell.ns["t_v"] == ["fine", None] and "1 failed" in run.stdout
    assert [e.error for e in batch_shell.magics.session.last_run.errors] == ["the reply is empty"]
    fake.default_reply = lambda request: Reply(text="now")
    batch_shell.ok("%%mistral --each t_items --batch --out t_v\nSay {item}")
    assert batch_shell.ns["t_v"] == ["fine", "now"]


# -- item 14: JSON has no NaN or Infinity --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "says"),
    [
        ("NaN", "NaN is not a JSON number"),
        ("Infinity", "Infinity is not a JSON number"),
        ("-Infinity", "Infinity is not a JSON number"),
        ("-1e999", "-1e999 is too large for a number"),  # valid JSON that Python reads as -inf
    ],
)
def test_nan_and_infinity_are_invalid_schema_answers_and_repaired(shell, fake, number, says):
    fake.script(Reply(text=f'{{"score": {number}}}'), Reply(text='{"score": 0.5}'))
    run = shell.ok('%%mistral --schema "score: float" --out t_v\nScore it.')
    assert shell.ns["t_v"] == {"score": 0.5}
    assert says in run.stderr
    assert says in fake.requests[1].json()["messages"][-1]["content"]  # the repair says why


def test_nan_is_an_invalid_json_answer_in_an_each_run(shell, fake):
    fake.default_reply = lambda request: Reply(text='{"score": NaN}' if "two" in last_user_message(request) else "{}")
    shell.ns["t_items"] = ["one", "two"]
    shell.ok("%%mistral --each t_items --json --out t_v\nScore {item}")
    assert shell.ns["t_v"] == [{}, None]
    assert "NaN is not a JSON number" in shell.magics.session.last_run.errors[0].error
    fake.script(Reply(text='{"score": Infinity}'))
    run = shell.run("%%mistral --json\nScore it.")
    assert "Infinity is not a JSON number" in str(run.error)
