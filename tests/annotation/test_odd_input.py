"""Issue 11, items 17 and 18: odd input to --each/--out, and chat files of the wrong shape."""

from __future__ import annotations

import pandas as pd
import pytest

from mistral_magic import UsageError

# -- item 17: --each and --out refuse what they would silently get wrong --------------------------------------


def test_each_refuses_a_generator_instead_of_emptying_it(shell, fake):
    """Item 17: a generator is read once; a second run used to store [] silently."""
    shell.ok("t_gen = (f'row {i}' for i in range(3))")
    run = shell.run("%%mistral --each t_gen --out t_out\n{item}")
    assert type(run.error) is UsageError
    assert "list(t_gen)" in str(run.error) and "\n" not in str(run.error)
    assert fake.requests == [] and "t_out" not in shell.ns
    assert list(shell.ns["t_gen"]) == ["row 0", "row 1", "row 2"]  # nothing consumed


def test_each_frame_out_same_name_is_refused(shell, fake):
    """Item 17: --each df --out df used to replace the DataFrame by a Series."""
    shell.ns["t_df"] = pd.DataFrame({"text": ["a", "b"]})
    run = shell.run("%%mistral --each t_df --out t_df\n{text}")
    assert type(run.error) is UsageError and "t_df" in str(run.error)
    assert isinstance(shell.ns["t_df"], pd.DataFrame) and list(shell.ns["t_df"].columns) == ["text"]
    assert fake.requests == []


def test_each_list_out_same_name_is_refused(shell, fake):
    """Item 17: answers stored over the inputs would make a re-run template over the answers."""
    shell.ns["t_items"] = ["a", "b"]
    run = shell.run("%%mistral --each t_items --out t_items\n{item}")
    assert type(run.error) is UsageError
    assert shell.ns["t_items"] == ["a", "b"] and fake.requests == []


@pytest.mark.parametrize("name", ["None", "class", "True", "get_ipython", "__builtins__", "In", "Out", "exit", "_ih"])
def test_out_refuses_keywords_and_ipython_names(shell, fake, name):
    """Item 17: --out used to accept keywords and the names IPython keeps in the namespace."""
    before = shell.ns.get(name, "absent")
    run = shell.run(f"%%mistral --out {name}\nhello")
    assert type(run.error) is UsageError, run.error
    assert repr(name) in str(run.error) and "\n" not in str(run.error)
    assert fake.requests == []
    assert shell.ns.get(name, "absent") is before


def test_out_still_accepts_ordinary_names(shell, fake):
    shell.ok("%%mistral --out t_answer\nhello")
    assert shell.ns["t_answer"] == "Echo: hello"


# -- item 18: %mistral load validates, %mistral save gives one line and keeps mode and links ------------------


def _chat_file(path, chats) -> str:
    import json

    path.write_text(json.dumps({"format": "mistral-magic/chats", "version": 1, "chats": chats}))
    return str(path)


GOOD_CHAT = {"name": "good", "system": None, "turns": [{"user": "q", "assistant": "a"}]}


@pytest.mark.parametrize(
    "chats",
    [
        5,
        [GOOD_CHAT, {"name": "bad", "turns": [{"user": 5, "assistant": "a"}]}],
        [GOOD_CHAT, {"name": "bad", "system": {"role": "system"}, "turns": []}],
        [GOOD_CHAT, {"name": "bad", "turns": "q and a"}],
        [GOOD_CHAT, {"name": "bad", "turns": [None]}],
        [GOOD_CHAT, {"name": "bad", "turns": [{"user": "q", "assistant": "a", "usage": "lots"}]}],
        [GOOD_CHAT, {"name": "bad", "turns": [{"user": "q", "assistant": "a", "interrupted": "no"}]}],
        [GOOD_CHAT, {"name": ["x"], "turns": []}],
        [GOOD_CHAT, "just text"],
    ],
    ids=[
        "chats-int",
        "int-user",
        "dict-system",
        "turns-str",
        "turn-null",
        "usage-str",
        "interrupted-str",
        "name-list",
        "chat-str",
    ],
)
def test_load_refuses_wrong_shapes_and_loads_nothing(shell, fake, tmp_path, chats):
    """Item 18: wrong shapes crashed load, or loaded data that crashed chats/undo later."""
    shell.ok("%%mistral\nkeep me")
    path = _chat_file(tmp_path / "chats.json", chats)
    run = shell.run(f"%mistral load {path}")
    assert type(run.error) is UsageError, run.error
    assert "\n" not in str(run.error) and "chats.json" in str(run.error)
    assert list(shell.magics.session.store.chats) == ["default"]  # nothing half-loaded
    shell.ok("%mistral chats")
    shell.ok("%mistral undo")


def test_a_valid_file_still_loads(shell, fake, tmp_path):
    path = _chat_file(tmp_path / "chats.json", [GOOD_CHAT])
    shell.ok(f"%mistral load {path}")
    assert shell.magics.session.store.chats["good"].turns[0].assistant == "a"


def test_save_to_a_directory_or_an_unusable_folder_is_one_line(shell, fake, tmp_path):
    """Item 18: saving to a directory, or under a path that is a file, gave raw OS errors."""
    shell.ok("%%mistral\nhello")
    for target in (tmp_path, tmp_path / "afile" / "chats.json"):
        (tmp_path / "afile").write_text("not a folder")
        run = shell.run(f"%mistral save {target}")
        assert type(run.error) is UsageError, run.error
        assert str(target) in str(run.error) and "\n" not in str(run.error)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no temporary file left behind


def test_save_creates_a_missing_folder(shell, fake, tmp_path):
    shell.ok("%%mistral\nhello")
    shell.ok(f"%mistral save {tmp_path}/new/folder/chats.json")
    assert (tmp_path / "new" / "folder" / "chats.json").exists()


def test_save_over_a_file_keeps_its_mode_and_writes_through_a_symlink(shell, fake, tmp_path):
    """Item 18: saving over a file changed its mode to 0600 and replaced a symlink by a file."""
    import os
    import stat

    shell.ok("%%mistral\nhello")
    real = tmp_path / "real.json"
    real.write_text("old")
    os.chmod(real, 0o644)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    shell.ok(f"%mistral save {link}")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert stat.S_IMODE(real.stat().st_mode) == 0o644
    assert "hello" in real.read_text()
    fresh = tmp_path / "fresh.json"
    shell.ok(f"%mistral save {fresh}")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600  # a new file is private: chats can hold private text
