"""--batch resumes without paying twice (issue 19): a pending job answers the items it carries whatever
the rows became, a lost or interrupted job creation is looked up on the server before sending again,
a job the server no longer knows is ended and its items sent again, and every interrupt is one line."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable

import pytest

from mistral_magic import BatchCreationLost, BatchWaitInterrupted, UsageError
from tests.fakeapi import ErrorReply, Reply
from tests.support.batch import fresh_session, requests_to, uploaded_lines

from .test_batch_schema import repairing

CELL = "%%mistral --each t_items --batch --out t_out\n{item}"
NO_WAIT = CELL.replace("--batch", "--batch --no-wait")


def until(happened: Callable[[], object], what: str, timeout: float = 30) -> None:
    """Wait for an event another thread makes happen (a request reaching the server, a job created)."""
    deadline = time.monotonic() + timeout
    while not happened():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def interrupt_when(happened: Callable[[], object], what: str) -> None:
    """SIGINT this process (a kernel interrupt) once ``happened()``, from a thread."""

    def watch() -> None:
        until(happened, what)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, daemon=True).start()


def echo(items: list[str]) -> list[str]:
    return [f"Echo: {item}" for item in items]


def test_a_pending_job_answers_its_items_when_rows_are_added_fixed_or_sorted(batch_shell, fake):
    fake.batch.running_seconds = 3600  # the first jobs stay pending while the rows change
    rows = [f"q{i}" for i in range(30)]
    batch_shell.ns["t_items"] = list(rows)
    batch_shell.ok(NO_WAIT)
    [first] = list(fake.batch.jobs)
    batch_shell.ns["t_items"] = rows + ["q30"]  # a row appended
    added = batch_shell.ok(NO_WAIT)
    second = next(job for job in fake.batch.jobs if job != first)
    assert f"Submitted 1 requests as batch job {second}; the batch job {first} is still running" in added.stdout
    changed = sorted(rows + ["q30"], reverse=True)
    changed[changed.index("q5")] = "q5 fixed"  # the rows sorted, one of them fixed
    batch_shell.ns["t_items"] = changed
    batch_shell.ok(NO_WAIT)
    assert [len(lines) for lines in uploaded_lines(fake)] == [30, 1, 1]
    fake.batch.running_seconds = 0  # the jobs finish now
    collected = batch_shell.ok(CELL)
    assert batch_shell.ns["t_out"] == echo(changed)
    assert "31 answered (0 from the cache, 31 answered by the requests of the interrupted run)" in collected.stdout
    assert len(fake.batch.jobs) == 3 and [len(lines) for lines in uploaded_lines(fake)] == [30, 1, 1]
    assert all(record.collected for record in batch_shell.magics.session.job_store.recent())
    batch_shell.ns["t_items"] = ["q5"]  # the answer the fixed row no longer needs was paid: it was kept
    assert "1 from the cache" in batch_shell.ok(CELL).stdout and len(fake.batch.jobs) == 3


def test_a_lost_creation_answer_is_found_on_the_server_instead_of_sent_again(batch_shell, fake):
    fake.batch.lost_creations = 1
    batch_shell.ns["t_items"] = ["a", "b"]
    lost = batch_shell.run(CELL)
    assert type(lost.error) is BatchCreationLost and "\n" not in str(lost.error)
    assert "the job may exist" in str(lost.error) and "looks for that job on the server" in str(lost.error)
    [job_id] = list(fake.batch.jobs)
    again = batch_shell.ok(CELL)
    assert batch_shell.ns["t_out"] == echo(["a", "b"]) and list(fake.batch.jobs) == [job_id]
    assert len(requests_to(fake, "POST", "/v1/files")) == 1 and requests_to(fake, "GET", "/v1/batch/jobs")
    assert "2 answered by the requests of the interrupted run" in again.stdout


def test_a_creation_the_server_never_made_is_sent_again_after_the_grace(batch_shell, fake):
    fake.batch.creation_errors.append(ErrorReply(503))  # a 5xx: the job may or may not exist
    batch_shell.ns["t_items"] = ["a", "b"]
    assert type(batch_shell.run(CELL).error) is BatchCreationLost
    assert fake.batch.jobs == {}
    batch_shell.ok(CELL)  # not on the server once the grace is over: sent again
    assert batch_shell.ns["t_out"] == echo(["a", "b"]) and len(fake.batch.jobs) == 1
    assert len(requests_to(fake, "POST", "/v1/batch/jobs")) == 2


def test_an_interrupt_while_the_creation_waits_leaves_one_job(batch_shell, fake, interruptible):
    gate = fake.batch.gates["create"] = threading.Event()
    batch_shell.ns["t_items"] = ["a", "b", "c"]
    interrupt_when(lambda: fake.batch.jobs, "the job to be created")
    try:
        stopped = batch_shell.run(CELL)
    finally:
        gate.set()
    assert type(stopped.error) is BatchWaitInterrupted and "\n" not in str(stopped.error)
    assert "Stopped while creating a batch job: the server may have created it" in str(stopped.error)
    batch_shell.ok(CELL)
    assert batch_shell.ns["t_out"] == echo(["a", "b", "c"]) and len(fake.batch.jobs) == 1
    assert len(requests_to(fake, "POST", "/v1/files")) == 1


def test_an_interrupt_while_uploading_is_one_line_and_a_rerun_sends_the_items(batch_shell, fake, interruptible):
    gate = fake.batch.gates["upload"] = threading.Event()
    batch_shell.ns["t_items"] = ["a", "b"]
    interrupt_when(lambda: requests_to(fake, "POST", "/v1/files"), "the upload")
    try:
        stopped = batch_shell.run(CELL)
    finally:
        gate.set()
    assert type(stopped.error) is BatchWaitInterrupted and "\n" not in str(stopped.error)
    assert "Stopped while sending the batch requests" in str(stopped.error) and fake.batch.jobs == {}
    assert "No batch jobs" in batch_shell.ok("%mistral jobs").everything  # the claim was given up
    batch_shell.ok(CELL)
    assert batch_shell.ns["t_out"] == echo(["a", "b"]) and len(fake.batch.jobs) == 1


def test_an_interrupt_while_reading_results_is_one_line_and_a_rerun_reads_them(batch_shell, fake, interruptible):
    gate = fake.batch.gates["download"] = threading.Event()
    items = [f"row {i} " + "x" * 300 for i in range(300)]  # a results file of several download pieces
    batch_shell.ns["t_items"] = items
    interrupt_when(lambda: [r for r in list(fake.requests) if r.path.startswith("/v1/files/")], "the download")
    try:
        stopped = batch_shell.run(CELL)
    finally:
        gate.set()
    [job_id] = list(fake.batch.jobs)
    assert type(stopped.error) is BatchWaitInterrupted and "\n" not in str(stopped.error)
    assert f"Stopped while reading the results of batch job {job_id}" in str(stopped.error)
    batch_shell.ok(CELL)
    assert batch_shell.ns["t_out"] == echo(items) and len(fake.batch.jobs) == 1


def test_a_rerun_that_reads_a_job_again_counts_its_tokens_once(batch_shell, fake, interruptible):
    """The answers of a --schema job are read, then the interrupt comes while they are repaired live:
    the re-run reads the job's results again, and its tokens are not counted a second time."""
    slow = threading.Event()
    slow.set()

    def reply(request) -> Reply:
        if repairing(request):
            usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            return Reply(text='{"label": "x"}', usage=usage, delay=5.0 if slow.is_set() else 0)
        return Reply(text="no JSON", usage={"prompt_tokens": 1000, "completion_tokens": 0, "total_tokens": 1000})

    fake.default_reply = reply
    batch_shell.ns["t_items"] = ["p", "q", "r"]
    cell = '%%mistral --each t_items --batch --schema "label: str" --out t_out\n{item}'

    def release_then_interrupt() -> None:
        until(lambda: requests_to(fake, "POST", "/v1/chat/completions"), "the live repairs")
        slow.clear()
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=release_then_interrupt, daemon=True).start()
    assert "finishing the answers" in str(batch_shell.run(cell).error)
    batch_shell.ok(cell)
    assert batch_shell.ns["t_out"]["label"].tolist() == ["x", "x", "x"]
    counted = batch_shell.magics.session.store.usage["--each t_items"]
    assert counted.prompt_tokens // 1000 == 3  # each batch answer once (the repairs add a token each)


def test_a_job_the_server_no_longer_knows_is_ended_and_its_items_sent_again(batch_shell, fake):
    fake.batch.running_seconds = 3600
    batch_shell.ns["t_items"] = ["a", "b"]
    batch_shell.ok(NO_WAIT)
    [gone] = list(fake.batch.jobs)
    fake.batch.expire(gone)  # expired, deleted, or another workspace's key: a 404 from now on
    reported = batch_shell.ok(CELL)
    assert batch_shell.ns["t_out"] == [None, None] and "2 failed" in reported.stdout
    errors = batch_shell.ok("%mistral errors").everything
    assert f"the server no longer knows batch job {gone}" in errors and "Run the cell again" in errors
    assert "GONE" in batch_shell.ok("%mistral jobs").everything
    fake.batch.running_seconds = 0.2
    batch_shell.ok(CELL)
    assert batch_shell.ns["t_out"] == echo(["a", "b"]) and len(fake.batch.jobs) == 1
    assert [len(lines) for lines in uploaded_lines(fake)] == [2, 2]


def test_results_the_server_no_longer_has_are_reported_and_sent_again(batch_shell, fake):
    batch_shell.ns["t_items"] = ["a", "b"]
    batch_shell.ok(NO_WAIT)
    [job_id] = list(fake.batch.jobs)
    until(lambda: fake.batch.get(job_id, False).payload["output_file"], "the job's results")
    del fake.batch.files[fake.batch.jobs[job_id].output_file]
    reported = batch_shell.ok(CELL)
    assert "2 failed" in reported.stdout
    assert f"the server no longer knows the results of batch job {job_id}" in (
        batch_shell.ok("%mistral errors").everything
    )
    batch_shell.ok(CELL)
    assert batch_shell.ns["t_out"] == echo(["a", "b"]) and len(fake.batch.jobs) == 2


def test_cancel_only_cancels_this_caches_jobs_unless_forced(batch_shell, fake):
    fake.batch.running_seconds = 3600
    batch_shell.ns["t_items"] = ["a"]
    batch_shell.ok(NO_WAIT)
    [ours] = list(fake.batch.jobs)
    theirs = fake.batch.create(
        b'{"requests": [{"custom_id": "x", "body": {"messages": []}}], "endpoint": "/v1/chat/completions", '
        b'"model": "m"}'
    ).payload["id"]
    refused = batch_shell.run(f"%mistral jobs cancel {theirs}")
    assert type(refused.error) is UsageError and "not one of this cache's jobs" in str(refused.error)
    assert f"%mistral jobs cancel {theirs} --force" in str(refused.error)
    assert not requests_to(fake, "POST", f"/v1/batch/jobs/{theirs}/cancel")
    forced = batch_shell.ok(f"%mistral jobs cancel {theirs} --force")
    assert f"cancel batch job {theirs}, not a job of this cache: now CANCELLATION_REQUESTED" in forced.everything
    cancelled = batch_shell.ok(f"%mistral jobs cancel {ours}")
    assert f"cancel batch job {ours}: now CANCELLATION_REQUESTED" in cancelled.everything
    assert "running its cell again collects it and sends the rest" in cancelled.everything


def test_cancelling_a_job_the_server_no_longer_knows_ends_it_here(batch_shell, fake):
    fake.batch.running_seconds = 3600
    batch_shell.ns["t_items"] = ["a"]
    batch_shell.ok(NO_WAIT)
    [gone] = list(fake.batch.jobs)
    fake.batch.expire(gone)
    said = batch_shell.ok(f"%mistral jobs cancel {gone}")
    assert f"The server no longer knows batch job {gone}" in said.everything and "marked ended" in said.everything
    fake.batch.running_seconds = 0.2
    batch_shell.ok(CELL)  # nothing waits on the gone job: the item is sent again at once
    assert batch_shell.ns["t_out"] == ["Echo: a"] and len(fake.batch.jobs) == 1


def test_a_job_an_earlier_version_registered_is_still_collected(batch_shell, fake):
    """The job list of earlier versions (a ``batch_jobs`` table, a run named by a hash over its server,
    model and the cache key of every item) is carried over: its pending job is collected, not sent again."""
    fake.batch.running_seconds = 3600
    batch_shell.ns["t_items"] = ["a", "b"]
    batch_shell.ok(NO_WAIT)
    [job_id] = list(fake.batch.jobs)
    model = batch_shell.magics.session.config.settings().model
    path = batch_shell.magics.session.job_store.path
    fresh_session(batch_shell)
    with sqlite3.connect(path) as db:  # the same job, as the earlier version wrote it
        keys = [key for (key,) in db.execute("SELECT key FROM batch_claim_keys ORDER BY rowid")]
        digest = hashlib.sha256(f"{fake.url}/v1\n{model}\n".encode())
        for key in keys:
            digest.update(key.encode())
        db.execute("DROP TABLE batch_claims")
        db.execute("DROP TABLE batch_claim_keys")
        db.execute(
            "CREATE TABLE batch_jobs (job_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, base_url TEXT NOT NULL, "
            "model TEXT NOT NULL, items INTEGER NOT NULL, created REAL NOT NULL, collected INTEGER NOT NULL "
            "DEFAULT 0, status TEXT)"
        )
        db.execute(
            "INSERT INTO batch_jobs VALUES (?, ?, ?, ?, 2, ?, 0, NULL)",
            (job_id, digest.hexdigest(), f"{fake.url}/v1", model, time.time()),
        )
    fake.batch.running_seconds = 0
    batch_shell.ok(CELL)
    assert batch_shell.ns["t_out"] == echo(["a", "b"]) and len(fake.batch.jobs) == 1
    assert len(requests_to(fake, "POST", "/v1/files")) == 1


@pytest.mark.parametrize("stage", ["sending", "creating", "reading", "settling", "waiting", "finishing"])
def test_every_interrupt_message_is_one_line(stage):
    from mistral_magic.errors import BatchWaitInterrupted

    for job_ids in ([], ["j1"], ["j1", "j2"]):
        message = str(BatchWaitInterrupted(job_ids, stage=stage))
        assert "\n" not in message and "run the cell again" in message.lower()
