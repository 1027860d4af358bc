"""Trial runs of --each: --limit, --sample (seeded), --dry-run; the full run afterwards sends only the rest."""

from __future__ import annotations

import json
import random

import pandas as pd

from tests.fakeapi import Reply, last_user_message

CELL = "Label: {item}"


def echo_label(request) -> Reply:
    return Reply(text=json.dumps({"label": last_user_message(request).split(": ")[-1]}))


def asked(fake) -> list[str]:
    return sorted(last_user_message(r.json()).split(": ")[-1] for r in fake.requests)


def test_limit_answers_the_first_items_and_the_full_run_sends_exactly_the_rest(shell, fake):
    fake.default_reply = echo_label
    shell.ns["t_items"] = [f"i{n:02d}" for n in range(10)]
    trial = shell.ok(f'%%mistral --each t_items --schema "label" --limit 3 --out t_labels\n{CELL}')
    assert asked(fake) == ["i00", "i01", "i02"]
    assert "t_labels" not in shell.ns  # a trial is shown, not stored
    html = "\n".join(o.get("text/html", "") for o in trial.outputs)
    assert "Label: i00" in html and "Trial: 3 item(s)" in html
    assert "| 1 | i01 | i01 |" in trial.markdown[-1]
    fake.requests.clear()
    full = shell.ok(f'%%mistral --each t_items --schema "label" --out t_labels\n{CELL}')
    assert asked(fake) == [f"i{n:02d}" for n in range(3, 10)]
    assert "10 items: 10 answered (3 from the cache)" in full.stdout
    assert shell.ns["t_labels"]["label"].tolist() == shell.ns["t_items"]


def test_sample_is_reproducible_with_its_seed_and_shows_the_index_labels(shell, fake):
    fake.default_reply = lambda request: Reply(text=last_user_message(request).upper())
    shell.ns["t_items"] = pd.Series([f"s{n}" for n in range(20)], index=[f"row{n}" for n in range(20)])
    run = shell.ok(f"%%mistral --each t_items --sample 4 --seed 7\n{CELL}")
    expected = sorted(random.Random(7).sample(range(20), 4))
    assert asked(fake) == sorted(f"s{n}" for n in expected)
    assert f"| row{expected[0]} | s{expected[0]} | LABEL: S{expected[0]} |" in run.markdown[-1]
    fake.requests.clear()
    again = shell.ok(f"%%mistral --each t_items --sample 4 --seed 7\n{CELL}")
    assert fake.requests == [] and "4 items: 4 answered (4 from the cache)" in again.stdout
    shell.ok(f"%%mistral --each t_items --seed 7 --out t_answers\n{CELL}")
    assert len(fake.requests) == 16


def test_dry_run_sends_nothing_and_counts(shell, fake):
    shell.ns["t_items"] = ["aaaa", "bbbbbbbb"]
    run = shell.ok('%%mistral --each t_items --dry-run -s "12345678"\nWord: {item}')
    assert fake.requests == []
    # prompts "Word: aaaa" (10) and "Word: bbbbbbbb" (14), each with the 8-character system prompt: 40 / 4
    assert "Dry run: 2 request(s) for 2 item(s), about 10 prompt tokens" in run.stdout
    assert "Word: aaaa" in run.outputs[0]["text/plain"]


def test_trial_flags_need_each(shell, fake):
    run = shell.run("%%mistral --limit 2\nhi")
    assert "go with --each NAME" in str(run.error) and not fake.requests
    both = shell.run("%%mistral --each t --limit 2 --sample 2\nhi")
    assert "not allowed with argument" in str(both.error)
