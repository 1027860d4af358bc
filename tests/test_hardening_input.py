"""Issue 11, items 17 and 18: odd input to --each/--out, and chat files of the wrong shape."""

from __future__ import annotations

import pandas as pd
import pytest


# -- item 17: --each and --out refuse what they would silently get wrong --------------------------------------


def test_each_refuses_a_generator_instead_of_emptying_it(shell, fake):
    """Item 17: a generator is read once; a second run used to store [] silently."""
    shell.ok("t_gen = (f'row {i}' for i in range(3))")
    run = shell.run("%%mistral --each t_gen --out t_out\n{item}")
    assert type(run.error).__name__ == "UsageError"
    assert "list(t_gen)" in str(run.error) and "\n" not in str(run.error)
    assert fake.requests == [] and "t_out" not in shell.ns
    assert list(shell.ns["t_gen"]) == ["row 0", "row 1", "row 2"]  # nothing consumed


def test_each_frame_out_same_name_is_refused(shell, fake):
    """Item 17: --each df --out df used to replace the DataFrame by a Series."""
    shell.ns["t_df"] = pd.DataFrame({"text": ["a", "b"]})
    run = shell.run("%%mistral --each t_df --out t_df\n{text}")
    assert type(run.error).__name__ == "UsageError" and "t_df" in str(run.error)
    assert isinstance(shell.ns["t_df"], pd.DataFrame) and list(shell.ns["t_df"].columns) == ["text"]
    assert fake.requests == []


def test_each_list_out_same_name_is_refused(shell, fake):
    """Item 17: answers stored over the inputs would make a re-run template over the answers."""
    shell.ns["t_items"] = ["a", "b"]
    run = shell.run("%%mistral --each t_items --out t_items\n{item}")
    assert type(run.error).__name__ == "UsageError"
    assert shell.ns["t_items"] == ["a", "b"] and fake.requests == []


@pytest.mark.parametrize("name", ["None", "class", "True", "get_ipython", "__builtins__", "In", "Out", "exit", "_ih"])
def test_out_refuses_keywords_and_ipython_names(shell, fake, name):
    """Item 17: --out used to accept keywords and the names IPython keeps in the namespace."""
    before = shell.ns.get(name, "absent")
    run = shell.run(f"%%mistral --out {name}\nhello")
    assert type(run.error).__name__ == "UsageError", run.error
    assert repr(name) in str(run.error) and "\n" not in str(run.error)
    assert fake.requests == []
    assert shell.ns.get(name, "absent") is before


def test_out_still_accepts_ordinary_names(shell, fake):
    shell.ok("%%mistral --out t_answer\nhello")
    assert shell.ns["t_answer"] == "Echo: hello"
