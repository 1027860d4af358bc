"""--batch resumes across kernel processes (issue 13): a wait interrupted in one real kernel, then the same
cell in a new kernel process with the same reply cache collects the job without a second upload or job."""

from __future__ import annotations

import json
import queue
import threading
import time

from jupyter_client.manager import start_new_kernel

from tests.support import messages_until_idle, run_and_collect, shown
from tests.support.batch import requests_to, uploaded_lines

CELL = "%%mistral --each t_items --batch --out t_out\n{item}"
SETUP = "%load_ext mistral_magic\nt_items = [f'q{i}' for i in range(6)]"


def polls_of_a_job(fake) -> list:
    """The created jobs the kernel has polled: it saved their ids and is waiting."""
    return [job for job in fake.batch.jobs if requests_to(fake, "GET", f"/v1/batch/jobs/{job}")]


def test_an_interrupted_wait_is_collected_by_a_new_kernel_process(kernel_env):
    fake = kernel_env
    fake.batch.queued_seconds = 0.1
    fake.batch.running_seconds = 4.0  # long enough to interrupt the first kernel while it waits
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        run_and_collect(client, SETUP)
        msg_id = client.execute(CELL)
        deadline = time.monotonic() + 20
        while not polls_of_a_job(fake) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert polls_of_a_job(fake), "the first kernel did not start waiting for a batch job"
        manager.interrupt_kernel()
        stopped = messages_until_idle(client, msg_id)
        [job_id] = list(fake.batch.jobs)
        errors = [m["content"] for m in stopped if m["msg_type"] == "error"]
        assert errors and errors[0]["ename"] == "BatchWaitInterrupted", shown(stopped)
        assert f"The batch job {job_id} keeps running" in shown(stopped)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert not manager.is_alive()
    uploads = len(requests_to(fake, "POST", "/v1/files"))
    created = len(requests_to(fake, "POST", "/v1/batch/jobs"))
    assert (uploads, created) == (1, 1)

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        run_and_collect(client, SETUP)
        collected = run_and_collect(client, CELL)
        assert not [m for m in collected if m["msg_type"] == "error"], shown(collected)
        assert "6 answered by the requests of the interrupted run" in shown(collected)
        printed = shown(run_and_collect(client, "import json; print(json.dumps(t_out))"))
        assert json.loads(printed) == [f"Echo: q{i}" for i in range(6)]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert len(requests_to(fake, "POST", "/v1/files")) == uploads
    assert len(requests_to(fake, "POST", "/v1/batch/jobs")) == created
    assert list(fake.batch.jobs) == [job_id]
    assert len(requests_to(fake, "GET", f"/v1/batch/jobs/{job_id}")) >= 2  # both kernels polled that job


def messages_until_text(client, msg_id: str, text: str, timeout: float = 60) -> list[dict]:
    """The IOPub messages of the execution ``msg_id`` until what they show holds ``text``."""
    messages: list[dict] = []
    deadline = time.monotonic() + timeout
    while text not in shown(messages):
        assert time.monotonic() < deadline, f"{text!r} never shown: {shown(messages)!r}"
        try:
            msg = client.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            messages.append(msg)
    return messages


def test_two_kernels_on_one_cache_send_each_request_once(kernel_env):
    """Issue 19: two kernels sharing a cache folder ran the same cell and paid 400 requests for 200
    items. The second kernel now finds the first one's claim and waits for its job."""
    fake = kernel_env
    gate = fake.batch.gates["create"] = threading.Event()  # the first kernel's job is held in creation
    setup = "%load_ext mistral_magic\nt_items = [f'q{i}' for i in range(200)]"
    kernels = [start_new_kernel(kernel_name="python3") for _ in range(2)]
    try:
        (_, first), (_, second) = kernels
        for client in (first, second):
            run_and_collect(client, setup)
        running = first.execute(CELL)
        deadline = time.monotonic() + 60
        while not fake.batch.jobs:  # created on the server, its answer not given yet
            assert time.monotonic() < deadline, "the first kernel never created its job"
            time.sleep(0.02)
        waiting = second.execute(CELL)
        early = messages_until_text(second, waiting, "another run is creating the batch job")
        gate.set()
        outcomes = [messages_until_idle(first, running), early + messages_until_idle(second, waiting)]
        for messages in outcomes:
            assert not [m for m in messages if m["msg_type"] == "error"], shown(messages)
        for client in (first, second):
            printed = shown(run_and_collect(client, "import json; print(json.dumps(t_out))"))
            assert json.loads(printed) == [f"Echo: q{i}" for i in range(200)]
    finally:
        gate.set()
        for manager, client in kernels:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    assert len(fake.batch.jobs) == 1 and [len(lines) for lines in uploaded_lines(fake)] == [200]
