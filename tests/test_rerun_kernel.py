"""Re-run in a real kernel: JupyterLab's ``metadata.cellId`` reaches the magic through ipykernel and
IPython, and the fake server receives only what is on screen."""

from __future__ import annotations

import pytest

from tests.fakeapi import ErrorReply
from tests.support import execute_in_cell, loaded_kernel, run_and_collect, shown


@pytest.fixture
def kernel(kernel_env):
    with loaded_kernel("%load_ext mistral_magic\n%mistral config display=text max_retries=0") as client:
        yield client


def sent(fake) -> list[str]:
    return [m["content"] for m in fake.requests[-1].json()["messages"]]


def test_edit_rerun_undo_and_a_failed_rerun_in_a_real_kernel(kernel, fake):
    _, ann = execute_in_cell(kernel, "%%mistral\nMy name is Ann.", "cell-a")
    _, ask = execute_in_cell(kernel, "%%mistral\nWhat is my name?", "cell-b")
    messages, bob = execute_in_cell(kernel, "%%mistral\nMy name is Bob.", "cell-a")
    assert sent(fake) == ["My name is Bob."]
    assert (
        f"In [{ask}] left chat 'default': they built on this cell's earlier run (In [{ann}]). "
        "Run them again to bring them back; %mistral undo restores the chat as it was."
    ) in shown(messages)
    history = shown(run_and_collect(kernel, "%mistral history"))
    assert f"[1] user (In [{bob}]): My name is Bob." in history and "[2]" not in history
    assert f"In [{ask}] ('What is my name?')" in history

    execute_in_cell(kernel, "%%mistral\nWhat is my name?", "cell-b")  # brings it back, asked again
    assert sent(fake) == ["My name is Bob.", "Echo: My name is Bob.", "What is my name?"]

    fake.script(ErrorReply(500))
    failed, _ = execute_in_cell(kernel, "%%mistral\nMy name is Carol.", "cell-a")
    assert "MistralError 500" in shown(failed)
    execute_in_cell(kernel, "%%mistral\nAnd now?", "cell-c")  # the failed re-run kept the old turns
    assert sent(fake) == [
        "My name is Bob.",
        "Echo: My name is Bob.",
        "What is my name?",
        "Echo: What is my name?",
        "And now?",
    ]

    execute_in_cell(kernel, "%%mistral\nMy name is Dan.", "cell-a")
    undone = shown(run_and_collect(kernel, "%mistral undo"))
    assert "back as it was before its last re-run or --new (3 turn(s))" in undone
    execute_in_cell(kernel, "%%mistral\nWho am I?", "cell-d")
    assert sent(fake)[0] == "My name is Bob." and sent(fake)[-1] == "Who am I?" and len(sent(fake)) == 7


def test_cells_without_an_id_append_as_before(kernel, fake):
    run_and_collect(kernel, "%%mistral\nMy name is Ann.")
    run_and_collect(kernel, "%%mistral\nMy name is Ann.")
    assert sent(fake) == ["My name is Ann.", "Echo: My name is Ann.", "My name is Ann."]
