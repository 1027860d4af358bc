"""Earlier cells in a prompt: ``{In[N]}``, ``{Out[N]}``, ``{In[-2]}``, ``{_}``, and the cap on what one value inserts."""

from __future__ import annotations


def _prompt(fake) -> str:
    return fake.requests[-1].json()["messages"][-1]["content"]


def test_inputs_and_outputs_of_earlier_cells(shell, fake):
    number = shell.ip.execution_count
    shell.ok("t_x = 41\nt_x + 1")
    shell.ok(f"%%mistral\nCode: {{In[{number}]}} gave {{Out[{number}]}}; last value {{_}}; before: {{In[-2]}}")
    assert _prompt(fake) == "Code: t_x = 41\nt_x + 1 gave 42; last value 42; before: t_x = 41\nt_x + 1"


def test_a_huge_value_is_cut_in_the_middle_visibly(shell, fake):
    shell.ns["t_log"] = "a" * 30_000 + "b" * 30_000
    shell.ok("%%mistral\nLog: {t_log}")
    prompt = _prompt(fake)
    assert prompt == "Log: " + "a" * 10_000 + "\n[... 40000 characters cut]\n" + "b" * 10_000
    shell.ok("%mistral config max_insert_chars=0")
    shell.ok("%%mistral\n{t_log}")
    assert _prompt(fake) == shell.ns["t_log"]
    run = shell.run("%mistral config max_insert_chars=-1")
    assert "max_insert_chars" in str(run.error) and ">= 0" in str(run.error)


def test_the_cap_applies_to_the_system_prompt_and_not_to_raw_cells(shell, fake):
    shell.ns["t_rules"] = "r" * 50
    shell.ok("%mistral config max_insert_chars=10")
    shell.ok('%%mistral -s "Rules: {t_rules}" --once\nhi {t_rules}')
    messages = fake.requests[-1].json()["messages"]
    assert messages[0]["content"] == "Rules: rrrrr\n[... 40 characters cut]\nrrrrr"
    assert messages[1]["content"] == "hi rrrrr\n[... 40 characters cut]\nrrrrr"
    shell.ok("%%mistral --raw --once\n{t_rules}")
    assert _prompt(fake) == "{t_rules}"
