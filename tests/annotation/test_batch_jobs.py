"""--batch (issue 13): --each through the fake server's Batch API, end to end in a real IPython shell."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import replace

import pandas as pd
import pytest

from mistral_magic import BatchWaitInterrupted, BatchWaitLost, InvalidSettingError, RateLimitError, UsageError
from mistral_magic.usage import TokenUsage
from tests.fakeapi import ErrorReply, Reply, last_user_message
from tests.support import TEST_KEY
from tests.support.batch import FAST_POLL, fresh_session, requests_to, uploaded_lines


def test_batch_fills_out_in_input_order_with_mistral_shapes(batch_shell, fake):
    fake.default_reply = lambda request: Reply(text="A:" + last_user_message(request))
    batch_shell.ns["t_items"] = [f"q{i}" for i in range(12)]
    run = batch_shell.ok('%%mistral --each t_items --batch -s "Be brief" --max-tokens 9 --out t_out\nsay {item}')
    assert batch_shell.ns["t_out"] == [f"A:say q{i}" for i in range(12)]
    assert "12 items: 12 answered (0 from the cache), 12 sent as a batch." in run.stdout
    assert "batch success · 12/12 · " in run.stdout and " elapsed · " in run.stdout  # the progress line
    assert requests_to(fake, "POST", "/v1/chat/completions") == []
    [lines] = uploaded_lines(fake)
    assert all(set(line) == {"custom_id", "body"} for line in lines)
    assert lines[0]["body"] == {
        "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "say q0"}],
        "max_tokens": 9,
    }
    [creation] = requests_to(fake, "POST", "/v1/batch/jobs")
    job_body = creation.json()
    assert set(job_body) == {"input_files", "endpoint", "model", "metadata", "timeout_hours"}
    model = batch_shell.magics.session.config.settings().model
    assert job_body["endpoint"] == "/v1/chat/completions" and job_body["model"] == model
    assert set(job_body["metadata"]) == {"mistral_magic_run", "requests"} and job_body["metadata"]["requests"] == "12"
    assert all(r.headers.get("authorization") == f"Bearer {TEST_KEY}" for r in fake.requests)


def test_a_base_url_without_v1_still_reaches_the_v1_batch_endpoints(batch_shell, fake):
    batch_shell.ok(f"%mistral config base_url={fake.url}")  # chat completions go to {base}/chat/completions
    batch_shell.ns["t_items"] = ["a"]
    batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    assert batch_shell.ns["t_out"] == ["Echo: a"]
    assert len(requests_to(fake, "POST", "/v1/files")) == 1 and len(requests_to(fake, "POST", "/v1/batch/jobs")) == 1
    assert "1 done" in batch_shell.ok("%mistral jobs").everything


def test_cached_items_are_not_sent_and_identical_requests_go_once(batch_shell, fake):
    batch_shell.ns["t_items"] = ["a", "b"]
    batch_shell.ok("%%mistral --each t_items --out t_out\n{item}")  # live: both now cached
    batch_shell.ns["t_items"] = ["a", "b", "c", "c", "d"]
    run = batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    assert batch_shell.ns["t_out"] == ["Echo: a", "Echo: b", "Echo: c", "Echo: c", "Echo: d"]
    [lines] = uploaded_lines(fake)
    assert sorted(line["body"]["messages"][-1]["content"] for line in lines) == ["c", "d"]
    assert "(2 from the cache)" in run.stdout and "2 sent as a batch" in run.stdout


def test_dataframe_column_and_failed_items_go_to_errors(batch_shell, fake):
    fake.add_rule("bad", ErrorReply(400))
    batch_shell.ns["t_df"] = pd.DataFrame({"text": ["good", "bad", "fine"]})
    run = batch_shell.ok("%%mistral --each t_df --batch --out t_label\n{text}")
    column = batch_shell.ns["t_df"]["t_label"]
    assert column[0] == "Echo: good" and pd.isna(column[1]) and column[2] == "Echo: fine"
    assert "1 failed" in run.stdout
    errors = batch_shell.ok("%mistral errors")
    assert "HTTP 400: Invalid model" in errors.everything


def test_timeout_keeps_half_and_a_rerun_sends_only_the_missing_half(batch_shell, fake):
    fake.batch.outcomes.append("TIMEOUT_EXCEEDED")
    batch_shell.ns["t_items"] = [f"q{i}" for i in range(10)]
    first = batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    assert sum(answer is not None for answer in batch_shell.ns["t_out"]) == 5
    assert "ended TIMEOUT_EXCEEDED" in batch_shell.ok("%mistral errors").everything
    assert "5 failed" in first.stdout
    batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    assert batch_shell.ns["t_out"] == [f"Echo: q{i}" for i in range(10)]
    first_file, second_file = uploaded_lines(fake)
    assert len(first_file) == 10 and len(second_file) == 5
    first_ids = {line["custom_id"] for line in first_file}
    assert {line["custom_id"] for line in second_file} < first_ids


def test_a_job_cancelled_midway_keeps_its_results_and_a_rerun_sends_the_rest(batch_shell, fake):
    fake.batch.running_seconds = 40.0  # 2 s a request: the cancel lands after the first one, however busy the machine
    batch_shell.ns["t_items"] = [f"q{i}" for i in range(20)]

    def cancel_midway() -> None:  # as from Mistral's console, while the cell waits: once a request is done
        while not fake.batch.jobs:
            time.sleep(0.01)
        job_id = next(iter(fake.batch.jobs))
        while fake.batch.progress(job_id)[1] < 1:
            time.sleep(0.01)
        fake.batch.cancel(job_id)

    threading.Thread(target=cancel_midway, daemon=True).start()
    first = batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    kept = sum(answer is not None for answer in batch_shell.ns["t_out"])
    assert 0 < kept < 20 and f"{20 - kept} failed" in first.stdout
    assert "ended CANCELLED" in batch_shell.ok("%mistral errors").everything
    fake.batch.running_seconds = 0.2
    batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    assert batch_shell.ns["t_out"] == [f"Echo: q{i}" for i in range(20)]
    assert [len(lines) for lines in uploaded_lines(fake)] == [20, 20 - kept]


def test_a_failed_job_keeps_nothing_and_says_why(batch_shell, fake):
    fake.batch.outcomes.append("FAILED")
    batch_shell.ns["t_items"] = ["a", "b"]
    first = batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    assert batch_shell.ns["t_out"] == [None, None] and "2 failed" in first.stdout
    shown = batch_shell.ok("%mistral errors").everything
    assert "ended FAILED (Internal error while processing the batch)" in shown and "Run the cell again" in shown
    batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    assert batch_shell.ns["t_out"] == ["Echo: a", "Echo: b"]


def test_interrupted_wait_reattaches_in_a_new_session(batch_shell, fake, interruptible):
    fake.batch.running_seconds = 1.5
    batch_shell.ns["t_items"] = [f"q{i}" for i in range(6)]

    def interrupt_while_polling() -> None:
        while not any(r.method == "GET" and r.path.startswith("/v1/batch/jobs/") for r in list(fake.requests)):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_while_polling, daemon=True).start()
    stopped = batch_shell.run("%%mistral --each t_items --batch --out t_out\n{item}")
    assert type(stopped.error) is BatchWaitInterrupted, stopped.error
    [job_id] = list(fake.batch.jobs)
    assert f"The batch job {job_id} keeps running" in str(stopped.error)
    fresh_session(batch_shell)
    uploads = len(requests_to(fake, "POST", "/v1/files"))
    run = batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    assert batch_shell.ns["t_out"] == [f"Echo: q{i}" for i in range(6)]
    assert len(requests_to(fake, "POST", "/v1/files")) == uploads == 1
    assert len(requests_to(fake, "POST", "/v1/batch/jobs")) == 1
    assert "6 answered by the requests of the interrupted run" in run.stdout
    again = batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")  # all cached now
    assert "6 from the cache" in again.stdout and len(fake.batch.jobs) == 1


def test_creation_429_fails_in_one_line_and_registers_nothing(batch_shell, fake):
    fake.batch.creation_errors.append(ErrorReply(429))
    batch_shell.ns["t_items"] = ["a", "b"]
    run = batch_shell.run("%%mistral --each t_items --batch --out t_out\n{item}")
    assert type(run.error) is RateLimitError and "\n" not in str(run.error)
    assert "No batch jobs" in batch_shell.ok("%mistral jobs").everything
    batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    assert batch_shell.ns["t_out"] == ["Echo: a", "Echo: b"]


def test_job_size_and_timeout_are_settings(batch_shell, fake):
    batch_shell.ok("%mistral config batch_job_requests=4")
    batch_shell.ok("%mistral config batch_timeout_hours=2")
    batch_shell.ns["t_items"] = [f"q{i}" for i in range(10)]
    run = batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    assert batch_shell.ns["t_out"] == [f"Echo: q{i}" for i in range(10)]
    assert [len(lines) for lines in uploaded_lines(fake)] == [4, 4, 2]
    assert [r.json()["timeout_hours"] for r in requests_to(fake, "POST", "/v1/batch/jobs")] == [2, 2, 2]
    assert "batch jobs: 3 success · 10/10" in run.stdout
    refused = batch_shell.run("%mistral config batch_timeout_hours=200")
    assert type(refused.error) is InvalidSettingError and "from 1 to 168" in str(refused.error)


def test_429s_while_polling_are_waited_out_as_the_server_asks(batch_shell, fake):
    # More 429s than one look's attempts (six): a whole look fails, and the run still waits the job out.
    fake.batch.poll_errors.extend(ErrorReply(429, headers={"retry-after-ms": "150"}) for _ in range(8))
    batch_shell.ns["t_items"] = ["a", "b"]
    looks: list[tuple[float, int | None]] = []  # (when, status) of each look as the client sent and read it

    def is_look(request) -> bool:
        return request.method == "GET" and request.url.path.startswith("/v1/batch/jobs/")

    def sent(request) -> None:
        if is_look(request):
            looks.append((time.monotonic(), None))

    def answered(response) -> None:
        if is_look(response.request):
            looks.append((time.monotonic(), response.status_code))

    http = batch_shell.magics.session.client._direct  # the connections to a server on this machine
    hooks, http.event_hooks = http.event_hooks, {"request": [sent], "response": [answered]}
    try:
        batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    finally:
        http.event_hooks = hooks
    assert batch_shell.ns["t_out"] == ["Echo: a", "Echo: b"]
    refused = [n for n, (_, status) in enumerate(looks) if status == 429]
    assert len(refused) == 8
    for n in refused:  # a lower bound the client's own clock guarantees, however busy the machine
        when, _ = looks[n]
        next_look = next(at for at, status in looks[n + 1 :] if status is None)
        assert next_look - when >= 0.15, "a look went out before the Retry-After the server asked"


def test_a_server_that_stops_answering_ends_the_wait_and_a_rerun_collects(batch_shell, fake):
    batch_shell.magics.session.batch_poll = replace(FAST_POLL, patience=1)
    fake.batch.poll_errors.extend(ErrorReply(503) for _ in range(12))  # two looks of six attempts
    batch_shell.ns["t_items"] = ["a", "b"]
    cell = "%%mistral --each t_items --batch --out t_out\n{item}"
    stopped = batch_shell.run(cell)
    [job_id] = list(fake.batch.jobs)
    assert type(stopped.error) is BatchWaitLost and "\n" not in str(stopped.error)
    assert "the server did not answer (Server error (after 6 attempts)" in str(stopped.error)
    assert f"The batch job {job_id} keeps running" in str(stopped.error)
    batch_shell.ok(cell)
    assert batch_shell.ns["t_out"] == ["Echo: a", "Echo: b"]
    assert len(requests_to(fake, "POST", "/v1/files")) == 1 and len(fake.batch.jobs) == 1


def test_jobs_lists_and_cancels(batch_shell, fake):
    batch_shell.ns["t_items"] = ["a"]
    batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    [job_id] = list(fake.batch.jobs)
    listing = batch_shell.ok("%mistral jobs").everything
    assert job_id in listing and "SUCCESS" in listing and "1 done, 0 failed of 1" in listing
    fake.batch.running_seconds = 60
    fresh_job = fake.batch.create(
        json.dumps(
            {
                "requests": [{"custom_id": "x", "body": {"messages": []}}],
                "endpoint": "/v1/chat/completions",
                "model": "m",
            }
        ).encode()
    ).payload["id"]
    cancelled = batch_shell.ok(f"%mistral jobs cancel {fresh_job} --force")  # not a job of this cache
    assert "CANCELLATION_REQUESTED" in cancelled.everything
    assert requests_to(fake, "POST", f"/v1/batch/jobs/{fresh_job}/cancel")
    assert type(batch_shell.run("%mistral jobs cancel").error) is UsageError


@pytest.mark.parametrize(
    "cell, fragment",
    [
        ("%%mistral --batch\nhi", "--batch goes with --each"),
        ("%%mistral --each t_items --batch --workers 2\n{item}", "--batch goes with --each"),
        ("%%mistral --each t_items --batch --no-cache\n{item}", "drop --no-cache"),
        ("%%mistral --each t_items --no-wait\n{item}", "--no-wait goes with --batch"),
    ],
)
def test_what_batch_refuses_is_one_line(batch_shell, fake, cell, fragment):
    batch_shell.ns["t_items"] = ["a"]
    run = batch_shell.run(cell)
    assert type(run.error) is UsageError and fragment in str(run.error)
    assert fake.requests == []


def test_annotate_batch(batch_shell, fake):
    import mistral_magic

    run = mistral_magic.annotate(["x", "y"], "about {item}", batch=True)
    assert list(run) == ["Echo: about x", "Echo: about y"] and run.sent == 2
    assert len(requests_to(fake, "POST", "/v1/batch/jobs")) == 1


def test_a_run_over_the_per_job_limit_is_split_and_leaves_no_temp_files(fake, tmp_path, monkeypatch):
    from mistral_magic.annotation.batchrun import BatchRunner
    from mistral_magic.annotation.batchstore import BatchJobStore
    from mistral_magic.annotation.cache import ReplyCache
    from mistral_magic.annotation.items import as_items
    from mistral_magic.api.batchjobs import BatchJobs
    from mistral_magic.api.client import ChatClient
    from mistral_magic.api.protocol import Endpoint
    from mistral_magic.secret import Secret

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    fake.batch.queued_seconds, fake.batch.running_seconds = 0.02, 0.05
    endpoint = Endpoint(base_url=fake.url + "/v1", api_key=Secret(""))
    client = ChatClient()
    cache = ReplyCache(tmp_path / "cache")
    store = BatchJobStore(cache.path)
    runner = BatchRunner(BatchJobs(client, endpoint), endpoint, cache, store, model="m", poll=FAST_POLL, per_job=4)
    items = as_items([f"r{i}" for i in range(10)])

    def body_for(index: int) -> dict:
        return {"model": "m", "messages": [{"role": "user", "content": items.values[index]}], "stream": True}

    run = runner.run(items, body_for)
    assert list(run) == [f"Echo: r{i}" for i in range(10)] and run.sent == 10
    assert [len(lines) for lines in uploaded_lines(fake)] == [4, 4, 2]
    assert len(fake.batch.jobs) == 3 and all(record.collected for record in store.recent())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("mistral-batch-")] == []
    store.close()
    cache.close()
    client.close()


def test_put_many_is_one_transaction_and_falls_back_to_memory(tmp_path):
    from mistral_magic.annotation.cache import ReplyCache
    from mistral_magic.api.protocol import Completion

    answers = [(f"k{i}", Completion(f"text {i}", "stop", TokenUsage(prompt_tokens=1), "m")) for i in range(5)]
    cache = ReplyCache(tmp_path / "ok")
    cache.put_many(answers)
    assert len(cache) == 5 and cache.get("k3") == answers[3][1]
    cache.close()
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "replies.sqlite3").mkdir()  # a folder where the file should be: the cache cannot open it
    broken = ReplyCache(blocked)
    broken.put_many(answers)
    assert broken.problem is not None and broken.get("k4") == answers[4][1] and len(broken) == 5


def test_no_wait_submits_returns_and_a_later_run_collects(batch_shell, fake):
    fake.batch.running_seconds = 0.6
    batch_shell.ns["t_items"] = ["a", "b", "c"]
    cell = "%%mistral --each t_items --batch --no-wait --out t_out\n{item}"
    first = batch_shell.ok(cell)
    [job_id] = list(fake.batch.jobs)
    assert f"Submitted 3 requests as batch job {job_id}: run the cell again" in first.stdout
    assert "t_out" not in batch_shell.ns
    second = batch_shell.ok(cell)  # at once: still running, nothing new sent
    assert f"The batch job {job_id} is still running" in second.stdout
    assert len(requests_to(fake, "POST", "/v1/files")) == 1 and len(fake.batch.jobs) == 1
    fresh_session(batch_shell)  # days later, another kernel: the same cell collects
    collected = batch_shell.ok("%%mistral --each t_items --batch --out t_out\n{item}")
    assert batch_shell.ns["t_out"] == ["Echo: a", "Echo: b", "Echo: c"]
    assert "3 answered by the requests of the interrupted run" in collected.stdout
    assert len(fake.batch.jobs) == 1 and len(requests_to(fake, "POST", "/v1/files")) == 1


def test_no_wait_collects_at_once_when_the_job_is_done(batch_shell, fake):
    batch_shell.ns["t_items"] = ["a"]
    batch_shell.ok("%%mistral --each t_items --batch --no-wait --out t_out\n{item}")
    [job_id] = list(fake.batch.jobs)
    while fake.batch.progress(job_id)[0] != "SUCCESS":  # the job finishes on the server, the cell not running
        time.sleep(0.01)
    batch_shell.ok("%%mistral --each t_items --batch --no-wait --out t_out\n{item}")
    assert batch_shell.ns["t_out"] == ["Echo: a"]
    assert type(batch_shell.run("%%mistral --each t_items --no-wait\n{item}").error) is UsageError
