"""Issue 11, items 12 and 13: the reply cache keeps only usable answers and never costs one."""

from __future__ import annotations

from fakeserver import Reply, last_user_message


def json_or_prose(request: dict) -> Reply:
    prompt = last_user_message(request)
    return Reply(text="I think it is positive." if "vague" in prompt else '{"label": "positive"}')


# -- item 12: only usable answers are cached -----------------------------------------------------------------


def test_each_json_reply_that_does_not_parse_is_asked_again(shell, fake):
    """Item 12: a --json reply that did not parse was cached and served forever."""
    fake.default_reply = json_or_prose
    shell.ns["t_items"] = ["clear", "vague"]
    shell.ok("%%mistral --each t_items --json --out t_labels\n{item}")
    assert len(fake.requests) == 2
    fake.default_reply = lambda request: Reply(text='{"label": "negative"}')
    run = shell.ok("%%mistral --each t_items --json --out t_labels\n{item}")
    assert len(fake.requests) == 3  # only the unusable answer was asked again
    assert shell.ns["t_labels"] == [{"label": "positive"}, {"label": "negative"}]
    assert "2 answered (1 from the cache)" in run.stdout


def test_cell_cache_json_reply_that_does_not_parse_is_not_cached(shell, fake):
    """Item 12: the same for a single %%mistral --cache --json cell."""
    fake.script(Reply(text="not json at all"), Reply(text='{"ok": true}'))
    first = shell.run("%%mistral --cache --json --once --out t_x\nanswer in JSON")
    assert type(first.error).__name__ == "JsonReplyError"
    shell.ok("%%mistral --cache --json --once --out t_x\nanswer in JSON")
    assert len(fake.requests) == 2 and shell.ns["t_x"] == {"ok": True}


def test_an_unusable_answer_already_in_the_cache_is_asked_again(shell, fake):
    """Item 12: prose stored under a --json request (by the old code) is not served."""
    from dataclasses import replace

    from mistral_magic.cache import cache_key
    from mistral_magic.protocol import Completion
    from mistral_magic.session import TurnOptions

    session = shell.magics.session
    settings = replace(shell.magics.settings(), stream=False)
    body = session.build_request("a", settings, TurnOptions(json=True, once=True))
    session.cache.put(cache_key(session.endpoint(settings).base_url, body), Completion("prose", "stop"))
    fake.default_reply = lambda request: Reply(text='{"label": "fine"}')
    shell.ns["t_items"] = ["a"]
    shell.ok("%%mistral --each t_items --json --out t_labels\n{item}")
    assert len(fake.requests) == 1 and shell.ns["t_labels"] == [{"label": "fine"}]
