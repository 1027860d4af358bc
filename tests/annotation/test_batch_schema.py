"""--batch with --schema and --votes (issue 13): the job carries Mistral's json_schema format and n,
its answers are validated, and the ones that need more (a repair, missing votes) are finished live."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Literal

import pandas as pd
import pytest
from pydantic import BaseModel

from mistral_magic import BatchWaitInterrupted
from mistral_magic.annotation.validate import REPAIR_PROMPT
from tests.fakeapi import Reply, last_user_message
from tests.support.batch import requests_to, uploaded_lines

from .test_votes import SPEC as VOTE_SPEC
from .test_votes import voter

SPEC = "label: positive|negative|neutral, stars: int"
CELL = f'%%mistral --each t_items --batch --schema "{SPEC}" --out t_labels\nRate: {{item}}'


def repairing(request) -> bool:
    return last_user_message(request).startswith(REPAIR_PROMPT.split(":")[0])


def rater(request) -> Reply:
    """'bad' answers in words until asked to repair; 'hopeless' never matches; the rest are valid."""
    item = request["messages"][0]["content"].split(": ")[-1]
    if item == "hopeless" or (item == "bad" and not repairing(request)):
        return Reply(text='{"label": "great"}' if item == "hopeless" else "positive, 3 stars")
    return Reply(text=json.dumps({"label": "positive", "stars": len(item)}))


def live_requests(fake) -> list:
    return requests_to(fake, "POST", "/v1/chat/completions")


def test_schema_goes_in_the_job_and_invalid_answers_are_repaired_live(batch_shell, fake):
    fake.default_reply = rater
    batch_shell.ns["t_items"] = ["fine", "bad", "hopeless", "ok"]
    run = batch_shell.ok(CELL)
    [lines] = uploaded_lines(fake)
    response_format = lines[0]["body"]["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"]["required"] == ["label", "stars"]
    assert all("stream" not in line["body"] and "model" not in line["body"] for line in lines)
    # Only the two invalid answers went live, each repair carrying the batch's own answer and the reason.
    repairs = [request.json() for request in live_requests(fake)]
    assert len(repairs) == 2 and all(repairing(body) for body in repairs)
    assert sorted(body["messages"][-2]["content"] for body in repairs) == ["positive, 3 stars", '{"label": "great"}']
    frame = batch_shell.ns["t_labels"]
    assert frame["stars"].tolist() == [4, 3, pd.NA, 2] and str(frame["stars"].dtype) == "Int64"
    assert list(frame["label"].cat.categories) == ["positive", "negative", "neutral"]
    assert "4 items: 3 answered (0 from the cache), 4 sent as a batch, 1 repaired, 1 failed" in run.stdout
    shown = batch_shell.ok("%mistral errors").everything
    assert "hopeless" in shown and "does not match the schema (after 1 repair)" in shown
    # The valid and repaired answers are cached: a re-run submits the failed item alone.
    again = batch_shell.ok(CELL)
    assert "(3 from the cache)" in again.stdout and "1 sent as a batch" in again.stdout
    assert [len(file) for file in uploaded_lines(fake)] == [4, 1]


def test_batch_answers_and_live_repairs_count_their_tokens_once(batch_shell, fake):
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    fake.script(Reply(text="{}", usage=usage), Reply(text='{"label": "positive", "stars": 1}', usage=usage))
    batch_shell.ns["t_items"] = ["x"]
    batch_shell.ok(CELL)
    counted = batch_shell.magics.session.store.usage["--each t_items"]
    assert (counted.prompt_tokens, counted.completion_tokens) == (20, 4)  # the batch answer and its repair


@pytest.mark.parametrize(("honour_n", "live"), [(True, 0), (False, 4)])
def test_votes_ride_in_the_job_as_n_and_missing_votes_are_asked_live(batch_shell, fake, honour_n, live):
    fake.honour_n = honour_n
    fake.default_reply = voter()
    batch_shell.ns["t_items"] = ["a", "b"]
    cell = f'%%mistral --each t_items --batch --schema "{VOTE_SPEC}" --votes 3 -t 0.7 --out t_v\nRate: {{item}}'
    run = batch_shell.ok(cell)
    [lines] = uploaded_lines(fake)
    assert [line["body"]["n"] for line in lines] == [3, 3] and lines[0]["body"]["temperature"] == 0.7
    # A server that gives one choice: the two missing votes of each item are asked one by one, without n.
    assert len(live_requests(fake)) == live and all("n" not in r.json() for r in live_requests(fake))
    frame = batch_shell.ns["t_v"]
    assert frame["label"].tolist() == ["pos", "neg"]
    assert frame["label_agreement"].tolist() == pytest.approx([2 / 3, 1])
    assert frame["stars"].tolist() == [1, 3] and frame["stars_agreement"].tolist() == pytest.approx([1, 2 / 3])
    assert "2 sent as a batch" in run.stdout and "no tied votes" in run.stdout
    before = len(fake.requests)
    again = batch_shell.ok(cell)
    assert "(2 from the cache)" in again.stdout and len(fake.requests) == before


def test_an_invalid_vote_is_repaired_live(batch_shell, fake):
    answers = iter(['{"label": "positive", "stars": 2}', "two stars", '{"label": "positive", "stars": 2}'])
    fake.default_reply = lambda request: Reply(
        text='{"label": "negative", "stars": 2}' if repairing(request) else next(answers)
    )
    batch_shell.ns["t_items"] = ["x"]
    batch_shell.ok(f'%%mistral --each t_items --batch --schema "{SPEC}" --votes 3 --out t_v\nRate: {{item}}')
    [repair] = live_requests(fake)
    assert repair.json()["messages"][-2]["content"] == "two stars"
    frame = batch_shell.ns["t_v"]
    assert frame["label"].tolist() == ["positive"] and frame["label_agreement"].tolist() == pytest.approx([2 / 3])


def test_an_interrupt_while_repairing_is_finished_by_a_rerun_without_a_new_job(batch_shell, fake, interruptible):
    slow_repairs = threading.Event()
    slow_repairs.set()

    def reply(request) -> Reply:
        if repairing(request):
            return Reply(text=json.dumps({"label": "neutral", "stars": 1}), delay=5.0 if slow_repairs.is_set() else 0)
        return Reply(text="no JSON here")

    fake.default_reply = reply
    batch_shell.ns["t_items"] = ["p", "q", "r"]

    def interrupt_once_repairs_started() -> None:
        deadline = time.monotonic() + 30
        while not live_requests(fake) and time.monotonic() < deadline:
            time.sleep(0.01)
        slow_repairs.clear()  # the re-run's repairs answer at once
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_repairs_started, daemon=True).start()
    stopped = batch_shell.run(CELL)
    assert type(stopped.error) is BatchWaitInterrupted, stopped.error
    assert "finishing the answers of batch job" in str(stopped.error)
    run = batch_shell.ok(CELL)
    assert batch_shell.ns["t_labels"]["label"].tolist() == ["neutral"] * 3
    assert len(requests_to(fake, "POST", "/v1/files")) == 1 and len(fake.batch.jobs) == 1
    assert "3 answered" in run.stdout and "failed" not in run.stdout


class Verdict(BaseModel):
    label: Literal["positive", "negative", "neutral"]
    stars: int


def test_annotate_batch_with_a_pydantic_model(batch_shell, fake):
    import mistral_magic

    fake.default_reply = rater
    run = mistral_magic.annotate(["fine", "bad"], "Rate: {item}", schema=Verdict, batch=True)
    assert run == [{"label": "positive", "stars": 4}, {"label": "positive", "stars": 3}]  # as live annotate()
    [lines] = uploaded_lines(fake)
    assert lines[0]["body"]["response_format"]["json_schema"]["name"] == "Verdict"
    assert len(live_requests(fake)) == 1 and run.sent == 2


def test_repair_zero_keeps_a_batch_run_off_the_live_api(batch_shell, fake):
    fake.default_reply = rater
    batch_shell.ns["t_items"] = ["fine", "bad"]
    run = batch_shell.ok(CELL.replace("--out", "--repair 0 --out"))
    assert live_requests(fake) == [] and "1 failed" in run.stdout
    assert batch_shell.ns["t_labels"]["stars"].tolist() == [4, pd.NA]
