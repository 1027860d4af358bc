"""Per-kernel conversations: named chats, history subcommands, save/load and usage."""

from __future__ import annotations

import json

from tests.fakeapi import ErrorReply, Reply


def messages(fake, index=-1) -> list[dict]:
    return fake.requests[index].json()["messages"]


def test_next_cell_continues_the_conversation(shell, fake):
    fake.script(Reply(text="Recursion is a function calling itself."), Reply(text="def f(): f()"))
    shell.ok('%%mistral -s "You are a terse tutor"\nExplain recursion.')
    shell.ok("%%mistral\nNow give a Python example.")
    assert messages(fake) == [
        {"role": "system", "content": "You are a terse tutor"},
        {"role": "user", "content": "Explain recursion."},
        {"role": "assistant", "content": "Recursion is a function calling itself."},
        {"role": "user", "content": "Now give a Python example."},
    ]


def test_named_chats_are_independent(shell, fake):
    shell.ok('%%mistral -c tutor -s "Tutor"\nQ1')
    shell.ok('%%mistral -c critic -s "Critic"\nQ1')
    shell.ok("%%mistral -c tutor\nQ2")
    assert [m["content"] for m in messages(fake)] == ["Tutor", "Q1", "Echo: Q1", "Q2"]
    run = shell.ok("%mistral chats")
    assert "tutor" in run.plain[0] and "critic" in run.plain[0]


def test_new_starts_afresh_and_once_leaves_history_alone(shell, fake):
    shell.ok("%%mistral\nfirst")
    shell.ok("%%mistral --once\naside")
    assert messages(fake) == [{"role": "user", "content": "aside"}]
    shell.ok("%%mistral\nsecond")
    assert [m["content"] for m in messages(fake)] == ["first", "Echo: first", "second"]
    shell.ok("%%mistral --new\nthird")
    assert messages(fake) == [{"role": "user", "content": "third"}]
    assert len(shell.magics.session.store.get("default").turns) == 1


def test_a_failed_request_leaves_the_history_as_it_was(shell, fake):
    shell.ok('%%mistral -s "Sys"\nfirst')
    fake.script(ErrorReply(400))
    run = shell.run('%%mistral --new -s "Other"\nfails')
    assert run.error is not None
    chat = shell.magics.session.store.get("default")
    assert chat.system == "Sys" and [t.user for t in chat.turns] == ["first"]
    shell.ok("%%mistral\nsecond")
    assert [m["content"] for m in messages(fake)] == ["Sys", "first", "Echo: first", "second"]


def test_history_undo_and_reset(shell, fake):
    shell.ok('%%mistral -s "Sys"\nfirst')
    shell.ok("%%mistral\nsecond")
    run = shell.ok("%mistral history")
    assert "[1] user: first" in run.plain[0] and "[2] assistant" in run.plain[0]
    assert "**system:** Sys" in run.markdown[0]
    run = shell.ok("%mistral undo")
    assert "second" in run.plain[0]
    shell.ok("%%mistral\nthird")
    assert [m["content"] for m in messages(fake)] == ["Sys", "first", "Echo: first", "third"]
    shell.ok("%mistral reset")
    shell.ok("%%mistral\nfresh")
    assert messages(fake) == [{"role": "user", "content": "fresh"}]
    run = shell.ok("%mistral undo -c nobody")
    assert "no turn to undo" in run.plain[0]


def test_reset_all(shell, fake):
    shell.ok("%%mistral -c a\nx")
    shell.ok("%%mistral -c b\ny")
    shell.ok("%mistral reset --all")
    assert shell.ok("%mistral chats").plain == ["No chats yet."]


def test_max_history_turns_keeps_the_system_prompt(shell, fake):
    shell.ok("%mistral config max_history_turns=1")
    for prompt in ["one", "two", "three"]:
        shell.ok(f'%%mistral -s "Sys"\n{prompt}')
    assert [m["content"] for m in messages(fake)] == ["Sys", "two", "Echo: two", "three"]
    assert len(shell.magics.session.store.get("default").turns) == 3  # nothing forgotten, only not sent


def test_save_and_load_round_trip_atomically_and_without_the_key(shell, fake, tmp_path):
    from tests.support import TEST_KEY

    shell.ok('%%mistral -c tutor -s "Sys"\nfirst')
    shell.ok("%%mistral -c other\nsecond")
    path = tmp_path / "sub" / "chats.json"
    run = shell.ok(f'%mistral save "{path}" -c tutor')
    assert "Saved 1 chat(s)" in run.plain[0]
    text = path.read_text()
    assert TEST_KEY not in text
    document = json.loads(text)
    assert [c["name"] for c in document["chats"]] == ["tutor"]
    assert [p.name for p in path.parent.iterdir()] == ["chats.json"]  # no temporary file left behind
    shell.ok("%mistral reset --all")
    run = shell.ok(f'%mistral load "{path}"')
    assert "tutor" in run.plain[0]
    shell.ok("%%mistral -c tutor\nthird")
    assert [m["content"] for m in messages(fake)] == ["Sys", "first", "Echo: first", "third"]


def test_load_errors_are_clear(shell, tmp_path):
    run = shell.run(f"%mistral load {tmp_path / 'missing.json'}")
    assert "No such file" in run.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    run = shell.run(f"%mistral load {bad}")
    assert "not a chat file" in run.stdout
    run = shell.run("%mistral save x.json -c nobody")
    assert "No chat named 'nobody'" in run.stdout


def test_usage_adds_up_per_chat_and_in_total(shell, fake):
    fake.script(
        Reply(text="a", usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}),
        Reply(
            text="b",
            usage={"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
            usage_in_separate_chunk=True,
        ),
        Reply(text="c", usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}),
    )
    shell.ok("%%mistral\nx")
    shell.ok("%%mistral\ny")
    shell.ok("%%mistral -c other --no-stream\nz")
    shell.ok("%mistral undo")  # undo does not refund tokens
    usage = shell.magics.session.store.usage
    assert (usage["default"].prompt_tokens, usage["default"].completion_tokens) == (30, 12)
    run = shell.ok("%mistral usage")
    lines = run.plain[0].splitlines()
    assert lines[-1].split() == ["total", "3", "31", "14", "45"]


def test_unknown_or_missing_subcommand(shell):
    assert "Unknown subcommand 'bogus'" in shell.run("%mistral bogus").stdout
    assert "needs a subcommand" in shell.run("%mistral").stdout


def test_models_lists_the_servers_models(shell, fake):
    run = shell.ok("%mistral models")
    assert fake.requests[-1].path == "/v1/models"
    assert "mistral-small-latest" in run.plain[0]
    assert "| model |" in run.markdown[0]


def test_unload_closes_the_client_and_removes_the_magic(shell, fake):
    shell.ok("%%mistral\nhi")
    client = shell.magics.session._client
    shell.ok("%unload_ext mistral_magic")
    assert client._http.is_closed
    assert shell.ip.find_cell_magic("mistral") is None
    shell.ok("%load_ext mistral_magic")
    assert shell.ip.find_cell_magic("mistral") is not None
