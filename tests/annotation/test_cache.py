"""Issue 11, items 12 and 13: the reply cache keeps only usable answers and never costs one."""

from __future__ import annotations

import sqlite3

from mistral_magic import JsonReplyError
from tests.fakeapi import Reply, last_user_message


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
    assert type(first.error) is JsonReplyError
    shell.ok("%%mistral --cache --json --once --out t_x\nanswer in JSON")
    assert len(fake.requests) == 2 and shell.ns["t_x"] == {"ok": True}


def test_an_unusable_answer_already_in_the_cache_is_asked_again(shell, fake):
    """Item 12: prose stored under a --json request (by the old code) is not served."""
    from dataclasses import replace

    from mistral_magic.annotation.cache import cache_key
    from mistral_magic.api.protocol import Completion
    from mistral_magic.session import TurnOptions

    session = shell.magics.session
    settings = replace(shell.magics.settings(), stream=False)
    body = session.build_request("a", settings, TurnOptions(json=True, once=True))
    session.cache.put(cache_key(session.endpoint(settings).base_url, body), Completion("prose", "stop"))
    fake.default_reply = lambda request: Reply(text='{"label": "fine"}')
    shell.ns["t_items"] = ["a"]
    shell.ok("%%mistral --each t_items --json --out t_labels\n{item}")
    assert len(fake.requests) == 1 and shell.ns["t_labels"] == [{"label": "fine"}]


# -- item 13: a cache that fails never costs an answer --------------------------------------------------------


def test_a_locked_cache_keeps_the_answers_in_memory_and_warns_once(shell, fake):
    """Item 13: a cache write failure (another process holding the lock) discarded a paid answer."""
    session = shell.magics.session
    session.cache.busy_timeout = 0.2  # instead of 30 s: how long a write waits for the lock
    shell.ok("%mistral cache")  # creates the file
    other = sqlite3.connect(session.cache.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process writes and holds the lock
    try:
        shell.ns["t_items"] = ["a", "b", "c"]
        run = shell.ok("%%mistral --each t_items --out t_out\n{item}")
        assert shell.ns["t_out"] == ["Echo: a", "Echo: b", "Echo: c"]
        warnings = [line for line in run.stderr.splitlines() if "reply cache" in line]
        assert len(warnings) == 1 and "kept in memory" in warnings[0] and "locked" in warnings[0]
        again = shell.ok("%%mistral --each t_items --out t_out\n{item}")
        assert len(fake.requests) == 3  # the answers kept in memory were not paid twice
        assert "3 from the cache" in again.stdout and "reply cache" not in again.stderr  # warned once
    finally:
        other.rollback() if other.in_transaction else None
        other.close()


def test_a_corrupt_cache_file_is_used_around_and_cache_clear_removes_it(shell, fake, tmp_path):
    """Item 13: a corrupt cache file blocked --each, --cache and even %mistral cache clear."""
    cache_file = tmp_path / "cache" / "replies.sqlite3"
    cache_file.parent.mkdir()
    cache_file.write_bytes(b"this is not a database, just bytes " * 100)
    shell.ns["t_items"] = ["a"]
    run = shell.ok("%%mistral --each t_items --out t_out\n{item}")
    assert shell.ns["t_out"] == ["Echo: a"] and "reply cache" in run.stderr
    cell = shell.ok("%%mistral --cache --once\nhello")
    assert "Echo: hello" in cell.plain[-1]
    info = shell.ok("%mistral cache").plain[0]
    assert "cannot be used" in info and "%mistral cache clear" in info
    shell.ok("%mistral cache clear")
    shell.ok("%%mistral --each t_items --out t_out\n{item}")
    assert sqlite3.connect(cache_file).execute("SELECT COUNT(*) FROM replies").fetchone()[0] == 1


def test_an_uncreatable_cache_folder_does_not_block_each_or_cache(shell, fake, tmp_path, monkeypatch):
    """Item 13: a cache folder that cannot be created gave a raw error before anything was sent."""
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    monkeypatch.setenv("MISTRAL_MAGIC_CACHE_DIR", str(blocker / "cache"))
    shell.magics.session.close()  # the next use opens the cache in the new place
    shell.ns["t_items"] = ["a", "b"]
    run = shell.ok("%%mistral --each t_items --out t_out\n{item}")
    assert shell.ns["t_out"] == ["Echo: a", "Echo: b"]
    assert sum("reply cache" in line for line in run.stderr.splitlines()) == 1
    shell.ok("%%mistral --cache --once\nhello")
    cleared = shell.run("%mistral cache clear")
    assert cleared.error is None or "\n" not in str(cleared.error)
    assert blocker.read_text() == "in the way"  # never removes what is not the cache file
