"""A cell run again replaces its own turn: the conversation follows the notebook on screen.

Cells run through a real IPython shell with the cell id a notebook frontend sends (IPython's
``run_cell(cell_id=...)``, as ipykernel passes JupyterLab's ``metadata.cellId``); the fake server
shows what each request carried.
"""

from __future__ import annotations

import json

from mistral_magic import ReplyInterrupted, ServerError
from tests.fakeapi import ErrorReply, Reply


def contents(fake, index=-1) -> list[str]:
    return [m["content"] for m in fake.requests[index].json()["messages"]]


def turns(shell, chat="default") -> list[str]:
    return [t.user for t in shell.magics.session.store.get(chat).turns]


def test_an_edited_cell_run_again_replaces_its_turn_and_later_turns_leave(shell, fake):
    shell.ok("%%mistral\nMy name is Ann.", cell_id="c1")
    shell.ok("%%mistral\nWhat is my name?", cell_id="c2")
    run = shell.ok("%%mistral\nMy name is Bob.", cell_id="c1")
    assert contents(fake) == ["My name is Bob."]  # neither Ann nor the later question is sent
    assert turns(shell) == ["My name is Bob."]
    first = shell.ip.execution_count - 3  # In [n] of the cells above
    assert run.stdout.strip().splitlines()[-1] == (
        f"In [{first + 1}] left chat 'default': they built on this cell's earlier run (In [{first}]). "
        "Run them again to bring them back; %mistral undo restores the chat as it was."
    )
    shell.ok("%%mistral\nWhat is my name?", cell_id="c2")  # brings it back, asked again
    assert contents(fake) == ["My name is Bob.", "Echo: My name is Bob.", "What is my name?"]
    assert turns(shell) == ["My name is Bob.", "What is my name?"]
    assert shell.magics.session.store.get("default").left == []


def test_history_shows_each_turns_cell_and_source_and_what_left(shell, fake):
    shell.ok("%%mistral\nfirst", cell_id="c1")
    first_number = shell.ip.execution_count - 1
    shell.ok("%%mistral\nsecond", cell_id="c2")
    shell.ok("%%mistral\nfirst again", cell_id="c1")
    shown = shell.ok("%mistral history").plain[0]
    assert f"[1] user (In [{first_number + 2}]): first again" in shown
    assert "[1] assistant (Mistral-chat · live): Echo: first again" in shown
    assert f"Left the chat when an earlier cell ran again: In [{first_number + 1}] ('second')" in shown


def test_undo_after_a_rerun_restores_the_chat_with_the_turns_that_left(shell, fake):
    shell.ok("%%mistral\nMy name is Ann.", cell_id="c1")
    shell.ok("%%mistral\nWhat is my name?", cell_id="c2")
    shell.ok("%%mistral\nMy name is Bob.", cell_id="c1")
    said = shell.ok("%mistral undo").plain[0]
    assert said == "Chat 'default' is back as it was before its last re-run or --new (2 turn(s))."
    assert turns(shell) == ["My name is Ann.", "What is my name?"]
    shell.ok("%%mistral\nAnd now?", cell_id="c3")
    assert contents(fake) == [
        "My name is Ann.",
        "Echo: My name is Ann.",
        "What is my name?",
        "Echo: What is my name?",
        "And now?",
    ]
    shell.ok("%mistral undo")  # a plain turn: undo drops it, as before
    assert turns(shell) == ["My name is Ann.", "What is my name?"]


def test_a_failed_rerun_keeps_the_old_turn(shell, fake):
    shell.ok("%%mistral\nMy name is Ann.", cell_id="c1")
    shell.ok("%%mistral\nWhat is my name?", cell_id="c2")
    fake.script(ErrorReply(500), ErrorReply(500), ErrorReply(500))
    run = shell.run("%%mistral\nMy name is Bob.", cell_id="c1")
    assert isinstance(run.error, ServerError)
    assert turns(shell) == ["My name is Ann.", "What is my name?"]
    shell.ok("%%mistral\nStill there?", cell_id="c3")
    assert contents(fake)[0] == "My name is Ann." and contents(fake)[-1] == "Still there?"


def test_without_cell_ids_every_run_appends_as_before(shell, fake):
    shell.ok("%%mistral\nMy name is Ann.")
    shell.ok("%%mistral\nMy name is Bob.")
    assert turns(shell) == ["My name is Ann.", "My name is Bob."]


def test_the_append_setting_keeps_every_run(shell, fake):
    shell.ok("%mistral config rerun=append")
    shell.ok("%%mistral\nMy name is Ann.", cell_id="c1")
    shell.ok("%%mistral\nMy name is Bob.", cell_id="c1")
    assert contents(fake) == ["My name is Ann.", "Echo: My name is Ann.", "My name is Bob."]
    assert turns(shell) == ["My name is Ann.", "My name is Bob."]


def test_a_cell_moved_to_another_chat_leaves_the_first_chat_alone(shell, fake):
    shell.ok("%%mistral\nAnn", cell_id="c1")
    shell.ok("%%mistral -c other\nAnn in another chat", cell_id="c1")
    assert contents(fake) == ["Ann in another chat"]
    assert turns(shell) == ["Ann"] and turns(shell, "other") == ["Ann in another chat"]


def test_once_reads_and_writes_nothing_and_new_can_be_undone(shell, fake):
    shell.ok("%%mistral\nAnn", cell_id="c1")
    shell.ok("%%mistral\nQuestion", cell_id="c2")
    shell.ok("%%mistral --once\nAside", cell_id="c1")
    assert contents(fake) == ["Aside"] and turns(shell) == ["Ann", "Question"]
    shell.ok("%%mistral --new\nFresh start", cell_id="c2")
    assert turns(shell) == ["Fresh start"]
    shell.ok("%mistral undo")
    assert turns(shell) == ["Ann", "Question"]


def test_the_repairs_of_one_run_stay_together_and_a_rerun_replaces_them_all(shell, fake):
    fake.script(Reply(text='{"age": "old"}'), Reply(text='{"age": 3}'), Reply(text='{"age": 4}'))
    cell = '%%mistral --schema "age: int"\nHow old?'
    shell.ok(cell, cell_id="c1")
    assert turns(shell)[0] == "How old?" and len(turns(shell)) == 2  # the try and its repair
    repair = contents(fake)
    assert len(repair) == 3 and repair[:2] == ["How old?", '{"age": "old"}']  # the repair builds on the bad reply
    shell.ok(cell, cell_id="c1")
    assert contents(fake) == ["How old?"] and turns(shell) == ["How old?"]


def test_saved_chats_keep_each_turns_cell_and_provenance(shell, fake, tmp_path):
    shell.ok("%%mistral\nAnn", cell_id="c1")
    path = tmp_path / "chats.json"
    shell.ok(f"%mistral save {path}")
    saved = json.loads(path.read_text())
    turn = saved["chats"][0]["turns"][0]
    assert saved["version"] == 2 and turn["cell_id"] == "c1" and "run" not in turn
    assert turn["provenance"]["source"] == "live" and turn["provenance"]["request_hash"]
    shell.ok("%mistral reset --all")
    shell.ok(f"%mistral load {path}")
    loaded = shell.magics.session.store.get("default").turns[0]
    assert loaded.cell_id == "c1" and loaded.provenance.source == "live"
    shell.ok("%%mistral\nBob", cell_id="c1")  # the loaded turn's cell, run again, replaces it
    assert turns(shell) == ["Bob"]


def test_an_interrupted_rerun_keeps_its_partial_answer_and_undo_brings_the_old_turn_back(
    shell, fake, interruptible, monkeypatch
):
    import os
    import signal

    from mistral_magic.ipython import cell as magics

    shell.ok("%%mistral\nMy name is Ann.", cell_id="c1")
    shell.ok("%%mistral\nWhat is my name?", cell_id="c2")
    real = magics.make_renderer

    def interrupted_on_first_text(ip, display):  # Ctrl-C as soon as the new answer begins to show
        renderer = real(ip, display)
        feed = renderer.feed

        def feed_then_interrupt(text):
            feed(text)
            os.kill(os.getpid(), signal.SIGINT)

        renderer.feed = feed_then_interrupt
        return renderer

    monkeypatch.setattr(magics, "make_renderer", interrupted_on_first_text)
    fake.script(Reply(text="one two three four five six", chunk_delay=0.05))
    run = shell.run("%%mistral\nMy name is Bob.", cell_id="c1")
    assert isinstance(run.error, ReplyInterrupted)
    chat = shell.magics.session.store.get("default")
    assert [t.user for t in chat.turns] == ["My name is Bob."] and chat.turns[0].interrupted
    shell.ok("%mistral undo")
    assert turns(shell) == ["My name is Ann.", "What is my name?"]
