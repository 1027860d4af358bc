"""--votes K: K answers per item with the API's n (one request) or K requests; majority, agreement, ties."""

from __future__ import annotations

import itertools
import json
import math
import threading

import pandas as pd
import pytest

from mistral_magic.annotation.votes import tally
from tests.fakeapi import Reply, last_user_message

VOTES = {
    "a": [("pos", 1), ("pos", 1), ("neg", 1)],  # pos 2/3; stars 1 (3/3)
    "b": [("neg", 2), ("neg", 3), ("neg", 3)],  # neg 3/3; stars 3 (2/3)
    "c": [("pos", 1), ("neg", 2), ("neu", 3)],  # three-way tie in both fields (1/3 each)
}
SPEC = "label: pos|neg|neu, stars: int"


def voter():
    counters = {item: itertools.count() for item in VOTES}
    lock = threading.Lock()

    def reply(request) -> Reply:
        item = last_user_message(request).split(": ")[-1]
        with lock:
            label, stars = VOTES[item][next(counters[item]) % 3]
        return Reply(text=json.dumps({"label": label, "stars": stars}))

    return reply


@pytest.mark.parametrize(("honour_n", "requests"), [(True, 3), (False, 9)])
def test_votes_give_majority_agreement_and_ties(shell, fake, honour_n, requests):
    fake.honour_n = honour_n
    fake.default_reply = voter()
    shell.ns["t_items"] = ["a", "b", "c"]
    run = shell.ok(f'%%mistral --each t_items --schema "{SPEC}" --votes 3 -t 0.7 --workers 1 --out t_v\nRate: {{item}}')
    assert len(fake.requests) == requests
    bodies = [r.json() for r in fake.requests]
    assert bodies[0]["n"] == 3 and bodies[0]["temperature"] == 0.7
    if not honour_n:  # after the first reply with one choice, the votes are asked one by one (without n)
        assert sum("n" in b for b in bodies) == 1
    frame = shell.ns["t_v"]
    assert frame["label"].tolist()[:2] == ["pos", "neg"] and pd.isna(frame["label"][2])
    assert list(frame["label"].cat.categories) == ["pos", "neg", "neu"]
    assert frame["label_agreement"].tolist() == pytest.approx([2 / 3, 1, 1 / 3])
    assert frame["stars"].tolist()[:2] == [1, 3] and str(frame["stars"].dtype) == "Int64"
    assert frame["stars_agreement"].tolist() == pytest.approx([1, 2 / 3, 1 / 3])
    assert frame["label_tie"].tolist() == ["", "", "pos | neg | neu"]
    assert frame["stars_tie"].tolist() == ["", "", "1 | 2 | 3"]
    assert "3 answered (0 from the cache), 1 with tied votes." in run.stdout
    fake.requests.clear()  # the votes are cached together: a re-run sends nothing
    again = shell.ok(
        f'%%mistral --each t_items --schema "{SPEC}" --votes 3 -t 0.7 --workers 1 --out t_v\nRate: {{item}}'
    )
    assert fake.requests == [] and "(3 from the cache)" in again.stdout


def test_votes_columns_join_a_dataframe(shell, fake):
    fake.default_reply = voter()
    shell.ns["t_df"] = pd.DataFrame({"text": ["a", "b"]})
    shell.ok(f'%%mistral --each t_df --schema "{SPEC}" --votes 3 --out v\nRate: {{text}}')
    assert [c for c in shell.ns["t_df"].columns if c.startswith("v_")] == [
        "v_label",
        "v_label_agreement",
        "v_label_tie",
        "v_stars",
        "v_stars_agreement",
        "v_stars_tie",
    ]


def test_votes_need_a_schema(shell, fake):
    shell.ns["t_items"] = ["a"]
    run = shell.run("%%mistral --each t_items --votes 3\nRate: {item}")
    assert "--votes needs --schema" in str(run.error) and not fake.requests


def test_tally_by_hand():
    assert tally(["x", "x", "y"]).winner == "x" and tally(["x", "x", "y"]).agreement == pytest.approx(2 / 3)
    tie = tally([["a"], ["b"]])
    assert tie.winner is None and tie.tied == (["a"], ["b"]) and tie.agreement == 0.5
    assert math.isnan(tally([]).agreement)


def test_a_vote_in_a_fenced_block_counts_and_an_invalid_vote_is_dropped(shell, fake):
    fake.honour_n = False
    fake.script(
        Reply(text='```json\n{"label": "neg", "stars": 2}\n```'),
        Reply(text='{"label": "neg", "stars": 2}'),
        Reply(text="not json"),
        Reply(text="still not json"),  # the repair of the third vote fails too: that vote is dropped
    )
    shell.ns["t_items"] = ["a"]
    run = shell.ok(f'%%mistral --each t_items --schema "{SPEC}" --votes 3 --out t_v\nRate: {{item}}')
    assert shell.ns["t_v"]["label"].tolist() == ["neg"] and shell.ns["t_v"]["label_agreement"].tolist() == [1.0]
    assert "1 answered" in run.stdout and len(fake.requests) == 4
