"""A lesson replays from its own file: run once against the server, saved, then run again with replay
on, no key and no requests. Real kernels (nbclient) find the notebook as Jupyter Server tells them
(``JPY_SESSION_NAME``); the fake server counts what reaches it."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from mistral_magic import UsageError
from tests.fakeapi import Reply
from tests.support import TEST_KEY

KEY = "mistral_magic"
LESSON = [
    "%load_ext mistral_magic",
    "%%mistral\nMy name is Ann.",
    "%%mistral\nWhat is my name?",
    "%%mistral --once -t 0 --seed 3\nA haiku about tea",
]


@pytest.fixture
def lesson(kernel_env, fake, tmp_path):
    """The lesson run once against the fake server and saved."""
    fake.add_rule("haiku", Reply(text="Steam over the cup,\nleaves unfold in quiet heat,\nthe kettle sighs twice."))
    path = tmp_path / "lesson.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in LESSON]
    execute(nb, path)
    nbformat.write(nb, path)
    fake.requests.clear()
    return path


def execute(nb, path) -> None:
    NotebookClient(nb, kernel_name="python3", timeout=60, resources={"metadata": {"path": str(path.parent)}}).execute()


def data(output: dict, kind: str) -> str:
    value = output["data"][kind]
    return "".join(value) if isinstance(value, list) else value


def answers(nb) -> list[dict]:
    """Each cell's answer output (the display carrying provenance)."""
    return [o for cell in nb["cells"] for o in cell.get("outputs", []) if KEY in o.get("metadata", {})]


def test_restart_and_run_all_with_replay_on_sends_nothing_and_shows_the_saved_answers(lesson, fake, monkeypatch):
    monkeypatch.delenv("MISTRAL_API_KEY")  # in class: no key...
    monkeypatch.setenv("JPY_SESSION_NAME", str(lesson))  # ...and Jupyter Server says which notebook runs
    monkeypatch.setenv("MISTRAL_MAGIC_REPLAY", "strict")  # a cell without a saved answer would fail
    saved = nbformat.read(lesson, as_version=4)
    again = nbformat.read(lesson, as_version=4)
    execute(again, lesson)
    assert fake.requests == []
    before, after = answers(saved), answers(again)
    assert len(after) == len(before) == 3
    for old, new in zip(before, after):
        assert data(new, "text/markdown") == data(old, "text/markdown")
        assert data(new, "text/plain") == data(old, "text/plain")
        assert data(new, "text/html") == data(old, "text/html").replace("</div>", " · replayed</div>")
        replayed, recorded = new["metadata"][KEY], old["metadata"][KEY]
        assert replayed == {**recorded, "source": "replay"}


def test_an_edited_cell_is_not_answered_from_the_stale_recording(lesson, fake, monkeypatch):
    monkeypatch.setenv("MISTRAL_MAGIC_REPLAY", "on")
    monkeypatch.setenv("JPY_SESSION_NAME", lesson.name)  # relative, as some servers give it
    nb = nbformat.read(lesson, as_version=4)
    nb.cells[1].source = "%%mistral\nMy name is Bob."
    execute(nb, lesson)
    asked = [r.json()["messages"] for r in fake.requests]
    assert asked == [  # the edited cell, and the next cell of its chat, which now asks something else
        [{"role": "user", "content": "My name is Bob."}],
        [
            {"role": "user", "content": "My name is Bob."},
            {"role": "assistant", "content": "Echo: My name is Bob."},
            {"role": "user", "content": "What is my name?"},
        ],
    ]
    sources = [o["metadata"][KEY]["source"] for o in answers(nb)]
    assert sources == ["live", "live", "replay"]  # the haiku asks what it asked before


def test_strict_replay_fails_in_one_line_when_a_cell_changed(lesson, fake, monkeypatch):
    monkeypatch.setenv("MISTRAL_MAGIC_REPLAY", "strict")
    monkeypatch.setenv("JPY_SESSION_NAME", str(lesson))
    nb = nbformat.read(lesson, as_version=4)
    nb.cells[3].source = "%%mistral --once -t 0 --seed 3\nA haiku about coffee"
    with pytest.raises(CellExecutionError) as failed:
        execute(nb, lesson)
    assert fake.requests == []
    error = next(o for o in nb.cells[3].outputs if o.output_type == "error")
    assert error.ename == "ReplayMissError"
    assert error.traceback[-1].endswith(
        "lesson.ipynb holds no saved answer for this cell (it, or an earlier cell of its chat, changed since the "
        "notebook was saved); replay is strict, so nothing was sent."
    )
    assert len(error.traceback) == 1
    assert "ReplayMiss" in str(failed.value)


def test_replay_subcommand_names_its_notebook_and_refuses_a_missing_file(lesson, shell, fake):
    said = shell.ok(f"%mistral replay on {lesson} --fast").plain[0]
    assert said == (
        "Replay is on: 3 saved answer(s) in lesson.ipynb, streamed at once; cells without a saved answer ask the server."
    )
    shell.ok("%%mistral --once -t 0 --seed 3\nA haiku about tea")
    assert fake.requests == []
    run = shell.run("%mistral replay on missing.ipynb")
    assert isinstance(run.error, UsageError) and "missing.ipynb" in str(run.error)
    assert shell.magics.settings().replay_notebook == str(lesson)  # a refused notebook changes nothing
    assert shell.ok("%mistral replay off").plain[0] == "Replay is off: cells ask the server."
    saved = json.loads(lesson.read_text())
    assert TEST_KEY not in json.dumps(saved)


def test_vs_code_names_the_notebook_in_the_namespace(lesson, shell, fake):
    shell.ns["__vsc_ipynb_file__"] = str(lesson)
    try:
        said = shell.ok("%mistral replay strict").plain[0]
        assert said.startswith("Replay is strict: 3 saved answer(s) in lesson.ipynb")
        shell.ok("%%mistral --once -t 0 --seed 3\nA haiku about tea")
        assert fake.requests == []
    finally:
        del shell.ns["__vsc_ipynb_file__"]
