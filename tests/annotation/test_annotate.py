"""--each and annotate(): many items, concurrently, in order, resumable, rate-limit aware."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pandas as pd
import pytest

import mistral_magic
from mistral_magic import AnnotationInterrupted
from tests.fakeapi import ErrorReply, Reply, last_user_message


def label_for(prompt: str) -> str:
    return "positive" if "good" in prompt else "negative"


def json_labeller(request: dict) -> Reply:
    return Reply(text=f'{{"label": "{label_for(last_user_message(request))}"}}')


def test_each_keeps_input_order_under_random_delays(shell, fake):
    rng = random.Random(5)
    fake.default_reply = lambda request: Reply(text=last_user_message(request).upper(), delay=rng.uniform(0, 0.15))
    shell.ns["t_items"] = [f"item {i}" for i in range(40)]
    run = shell.ok("%%mistral --each t_items --out t_answers --workers 8\nsay {item}")
    assert shell.ns["t_answers"] == [f"SAY ITEM {i}" for i in range(40)]
    assert len(fake.requests) == 40
    assert "40 items: 40 answered (0 from the cache)." in run.stdout
    bodies = [r.json() for r in fake.requests]
    assert all(b["stream"] is True and len(b["messages"]) == 1 for b in bodies)  # one-shot (streamed), no history


def test_flags_apply_to_every_item_and_history_is_untouched(shell, fake):
    shell.ns["t_items"] = ["a", "b"]
    shell.ok('%%mistral --each t_items -s "Be brief" -m small -t 0.1 --max-tokens 5 --out t_x\n{item}?')
    for request in fake.requests:
        body = request.json()
        assert body["model"] == "small" and body["temperature"] == 0.1 and body["max_tokens"] == 5
        assert body["messages"][0] == {"role": "system", "content": "Be brief"}
    assert shell.magics.session.store.get("default").turns == []


def test_partial_failures_are_reported_per_item_and_the_run_goes_on(shell, fake):
    def reply(request):
        prompt = last_user_message(request)
        if "bad-request" in prompt:
            return ErrorReply(400, body={"object": "error", "message": "Prompt rejected"})
        if "broken" in prompt:
            return Reply(text="label: positive, probably")
        return json_labeller(request)

    fake.default_reply = reply
    shell.ns["t_reviews"] = ["good film", "bad-request here", "good plot", "broken json", "dull"]
    run = shell.ok("%%mistral --each t_reviews --json --out t_labels\nClassify: {item}")
    assert shell.ns["t_labels"] == [{"label": "positive"}, None, {"label": "positive"}, None, {"label": "negative"}]
    assert "2 failed: see %mistral errors" in run.stdout
    errors = shell.magics.session.last_run.errors
    assert [(e.index, e.item) for e in errors] == [(1, "bad-request here"), (3, "broken json")]
    assert "Prompt rejected" in errors[0].error and "not valid JSON" in errors[1].error
    table = shell.ok("%mistral errors").plain[0]
    assert "bad-request here" in table and "Prompt rejected" in table


def test_a_429_storm_pauses_every_worker_and_loses_nothing(shell, fake):
    lock = threading.Lock()
    state = {"storm_left": 12, "times": []}

    def reply(request):
        with lock:
            state["times"].append(time.monotonic())
            if state["storm_left"] > 0:
                state["storm_left"] -= 1
                return ErrorReply(429, headers={"Retry-After": "0.3"})
        return Reply(text="ok " + last_user_message(request))

    fake.default_reply = reply
    shell.magics.retry_max_wait = 1.0
    shell.ns["t_items"] = list(range(20))
    shell.ok("%%mistral --each t_items --workers 8 --out t_out\n{item}")
    assert shell.ns["t_out"] == [f"ok {i}" for i in range(20)]
    assert len(fake.requests) == 20 + 12
    # After the first 429, no request went out for the pause the server asked for.
    first_429 = state["times"][0]
    later = [t for t in state["times"] if t > first_429 + 0.05]
    assert later and min(later) >= first_429 + 0.25


def test_rpm_caps_the_request_rate(shell, fake):
    shell.ns["t_items"] = list(range(5))
    started = time.monotonic()
    shell.ok("%%mistral --each t_items --workers 5 --rpm 600 --out t_out\n{item}")
    # 5 requests at 10 per second leave 4 gaps of 0.1 s, however many workers there are.
    assert time.monotonic() - started >= 0.4
    assert len(fake.requests) == 5


def test_interrupt_keeps_finished_answers_and_a_rerun_sends_only_the_rest(shell, fake, interruptible):
    counter = {"requests": 0}
    lock = threading.Lock()

    def reply(request):
        with lock:
            counter["requests"] += 1
            if counter["requests"] == 7:  # mid-run, whatever the machine's speed: interrupt the kernel
                os.kill(os.getpid(), signal.SIGINT)
        return Reply(text="A:" + last_user_message(request), delay=0.2)

    fake.default_reply = reply
    shell.ns["t_items"] = [f"q{i}" for i in range(30)]
    run = shell.run("%%mistral --each t_items --workers 3 --out t_out\n{item}")
    assert type(run.error) is AnnotationInterrupted
    partial = shell.ns["t_out"]
    done = [i for i, answer in enumerate(partial) if answer is not None]
    assert 0 < len(done) < 30 and all(partial[i] == f"A:q{i}" for i in done)
    assert "remaining" in run.stdout and "run it again" in run.stdout
    finished = threading.Event()  # requests in flight at the interrupt finish in the background, into the cache
    shell.magics.session.in_flight.when_idle(finished.set)
    assert finished.wait(60)
    assert len(fake.requests) <= 7 + 3  # it stopped at once: only requests already in flight went out
    shell.ok("%%mistral --each t_items --workers 3 --out t_out\n{item}")
    assert shell.ns["t_out"] == [f"A:q{i}" for i in range(30)]
    assert len(fake.requests) == 30  # the re-run sent only the missing items...
    prompts = [last_user_message(r.json()) for r in fake.requests]
    assert sorted(prompts) == sorted(f"q{i}" for i in range(30))  # no item was asked twice


def test_no_cache_sends_everything_again_and_cache_clear_empties_it(shell, fake):
    shell.ns["t_items"] = ["x", "y"]
    shell.ok("%%mistral --each t_items --out t_out\n{item}")
    shell.ok("%%mistral --each t_items --out t_out\n{item}")
    assert len(fake.requests) == 2
    shell.ok("%%mistral --each t_items --no-cache --out t_out\n{item}")
    assert len(fake.requests) == 4
    assert "holds 2 answers" in shell.ok("%mistral cache").plain[0]
    assert "2 answers removed" in shell.ok("%mistral cache clear").plain[0]
    shell.ok("%%mistral --each t_items --out t_out\n{item}")
    assert len(fake.requests) == 6
    shell.ok("%mistral config cache=false")
    shell.ok("%%mistral --each t_items --out t_out\n{item}")
    assert len(fake.requests) == 8


def test_a_single_cell_can_be_answered_from_the_cache(shell, fake):
    first = shell.ok("%%mistral --cache --once\nWhat is 2+2?")
    second = shell.ok("%%mistral --cache --once\nWhat is 2+2?")
    assert len(fake.requests) == 1
    assert second.markdown == first.markdown == ["Echo: What is 2+2?"]


def test_pandas_series_round_trip(shell, fake):
    fake.default_reply = json_labeller
    shell.ns["t_series"] = pd.Series(["good", "meh", "good!"], index=[10, 20, 30])
    shell.ok("%%mistral --each t_series --json --out t_labels\nReview: {item}")
    labels = shell.ns["t_labels"]
    assert isinstance(labels, pd.Series) and list(labels.index) == [10, 20, 30]
    assert [v["label"] for v in labels] == ["positive", "negative", "positive"]


def test_pandas_dataframe_rows_fill_columns_and_get_a_new_column(shell, fake):
    frame = pd.DataFrame({"title": ["A", "B"], "text": ["good stuff", "poor"]}, index=["r1", "r2"])
    shell.ns["t_frame"] = frame
    shell.ok("%%mistral --each t_frame --out sentiment\n{title}: {text} (row {item[title]})")
    prompts = [last_user_message(r.json()) for r in fake.requests]
    assert sorted(prompts) == ["A: good stuff (row A)", "B: poor (row B)"]
    assert list(frame["sentiment"]) == ["Echo: A: good stuff (row A)", "Echo: B: poor (row B)"]
    assert list(shell.ns["sentiment"].index) == ["r1", "r2"]
    del shell.ns["sentiment"]


@pytest.mark.parametrize(
    "flags, written",
    [
        ("--out t_label", ["t_label"]),
        ('--schema "label: positive|negative" --out t_rating', ["t_rating_label"]),
        (
            '--schema "label: positive|negative" --votes 2 --out t_rating',
            ["t_rating_label", "t_rating_label_agreement", "t_rating_label_tie"],
        ),
    ],
    ids=["out", "schema", "votes"],
)
def test_item_of_a_row_leaves_out_the_columns_the_run_writes(shell, fake, flags, written):
    fake.default_reply = lambda request: Reply(text='{"label": "positive"}')
    frame = pd.DataFrame({"text": ["good stuff", "poor"]})
    shell.ns["t_frame"] = frame
    cell = f"%%mistral --each t_frame {flags}\nRate {{item}}"
    shell.ok(cell)
    assert set(written) <= set(frame.columns)
    prompts = sorted(last_user_message(r.json()) for r in fake.requests)
    assert prompts == ["Rate {'text': 'good stuff'}", "Rate {'text': 'poor'}"]
    fake.requests.clear()
    run = shell.ok(cell)  # the same prompts: every answer from the cache, and the model never sees its labels
    assert fake.requests == [] and "(2 from the cache)" in run.stdout


@pytest.mark.parametrize("value, fragment", [("'just a string'", "must be a list"), ("{'a': 1}", "must be a list")])
def test_bad_each_values(shell, fake, value, fragment):
    shell.ok(f"t_bad = {value}")
    assert fragment in shell.run("%%mistral --each t_bad\n{item}").stdout
    assert "no variable named 't_missing'" in shell.run("%%mistral --each t_missing\n{item}").stdout
    assert "go with --each" in shell.run("%%mistral --workers 4\nhi").stdout
    assert fake.requests == []


def test_python_api(shell, fake):
    fake.default_reply = json_labeller
    run = mistral_magic.annotate(
        ["good one", "bad one"], "Classify {item} as JSON", json=True, workers=2, temperature=0.0, max_tokens=10
    )
    assert list(run) == [{"label": "positive"}, {"label": "negative"}]
    assert run.errors == [] and run.sent == 2 and not run.interrupted
    body = fake.requests[0].json()
    assert body["response_format"] == {"type": "json_object"} and body["temperature"] == 0.0
    again = mistral_magic.annotate(
        ["good one", "bad one"], "Classify {item} as JSON", json=True, temperature=0.0, max_tokens=10
    )
    assert again.cached == 2 and again.sent == 0 and len(fake.requests) == 2
    series_run = mistral_magic.annotate(pd.Series(["good"], index=["k"]), "{item}", cache=False)
    assert list(series_run.series().index) == ["k"]
    with pytest.raises(TypeError):
        mistral_magic.annotate(["x"], "{item}", colour="blue")


def test_progress_is_shown_and_a_summary_stays(shell, fake):
    fake.default_reply = lambda request: Reply(text="ok", delay=0.05)
    shell.ns["t_items"] = list(range(12))
    run = shell.ok("%%mistral --each t_items --workers 2\n{item}")
    assert "[####" in run.stdout and "/s" in run.stdout and "ETA" in run.stdout
    assert run.stdout.rstrip().endswith("12 items: 12 answered (0 from the cache).")


def test_annotate_from_code_speaks_python_and_the_cell_speaks_notebook(shell, fake):
    """The same failures, worded for who asked: no magic command in what annotate() returns."""
    fake.script(ErrorReply(401), Reply(text="not json"))
    run = mistral_magic.annotate(["a", "b"], "{item}", json=True, workers=1, cache=False)
    reasons = [e.error for e in run.errors]
    assert reasons[0].endswith("the API key was rejected. Check MISTRAL_API_KEY.")
    assert reasons[1].endswith("Ask again, or drop json=True.")
    assert run.summary() == "2 items: 0 answered (0 from the cache), 2 failed: see .errors."
    assert "%mistral" not in " ".join(reasons) + run.summary()
    fake.script(ErrorReply(401), Reply(text="not json"))
    shell.ns["t_items"] = ["a", "b"]
    cell = shell.ok("%%mistral --each t_items --json --workers 1 --no-cache\n{item}")
    assert cell.stdout.rstrip().endswith("2 failed: see %mistral errors.")
    table = shell.ok("%mistral errors").plain[0]
    assert "run %mistral key to enter it again" in table and "drop --json" in table


def test_a_run_is_still_a_list():
    """AnnotationRun once shadowed list.index with the input's index: run.index(x) raised TypeError."""
    from mistral_magic.annotation.result import AnnotationRun

    run = AnnotationRun(["x", "y"], errors=[], sent=2, cached=0, interrupted=False, input_index=["k1", "k2"])
    assert run.index("y") == 1 and run.input_index == ["k1", "k2"]


def test_the_interrupt_of_a_run_is_a_public_error():
    from mistral_magic.errors import AnnotationInterrupted as inner

    assert mistral_magic.AnnotationInterrupted is inner
    assert issubclass(inner, mistral_magic.MistralMagicError)


def test_python_callers_are_told_about_keyword_arguments_and_cells_about_flags(shell, fake):
    with pytest.raises(mistral_magic.UsageError) as refused:
        mistral_magic.annotate(["x"], "{item}", votes=3)
    assert str(refused.value) == "votes= needs schema=: the votes are counted per field."
    with pytest.raises(mistral_magic.UsageError) as refused:
        mistral_magic.annotate(["x"], "{item}", batch=True, cache=False)
    assert str(refused.value) == "batch=True keeps its results in the reply cache: drop cache=False."
    shell.ns["t_items"] = ["x"]
    run = shell.run("%%mistral --each t_items --votes 3\n{item}")
    assert isinstance(run.error, mistral_magic.UsageError) and "--votes" in str(run.error)
    assert fake.requests == []
