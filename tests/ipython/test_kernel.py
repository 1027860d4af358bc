"""The magic in a real Jupyter kernel: headless runs (nbconvert/nbclient) and kernel interrupts."""

from __future__ import annotations

import queue
import time

import nbformat
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

from tests.fakeapi import Reply
from tests.support import execute_in_cell, loaded_kernel, run_and_collect

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_headless_run_keeps_each_answer_as_a_static_display(kernel_env, tmp_path):
    fake = kernel_env
    fake.add_rule("table please", Reply(text="| a | b |\n|---|---|\n| 1 | 2 |\n\nDone.", chunk_delay=0.01))
    fake.add_rule("whole", Reply(text="All **at once**."))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext mistral_magic"),
        nbformat.v4.new_code_cell("%%mistral\ntable please"),
        nbformat.v4.new_code_cell("%%mistral --no-stream\nwhole"),
    ]
    NotebookClient(nb, kernel_name="python3", timeout=60, resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell, text in [(nb.cells[1], "| a | b |"), (nb.cells[2], "All **at once**.")]:
        outputs = cell.outputs
        assert [o.output_type for o in outputs] == ["display_data"], outputs  # streamed text was cleared
        data = outputs[0].data
        assert data["text/plain"] == data["text/markdown"]
        assert data["text/markdown"].startswith(text)
        assert WIDGET_VIEW not in data
    assert "<table>" in nb.cells[1].outputs[0].data["text/html"]
    assert "<strong>at once</strong>" in nb.cells[2].outputs[0].data["text/html"]
    assert (
        nb.metadata.get("widgets", {}) == {}
        or not nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    )


def test_kernel_interrupt_keeps_the_partial_reply_and_the_kernel_ready(kernel_env):
    fake = kernel_env
    words = [f"w{i} " for i in range(60)]
    fake.add_rule("slow", Reply(text="".join(words), chunks=words, chunk_delay=0.1))
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        run_and_collect(client, "%load_ext mistral_magic")
        msg_id = client.execute("%%mistral\nslow")
        seen_text = ""
        deadline = time.monotonic() + 20
        while "w5" not in seen_text and time.monotonic() < deadline:
            try:
                msg = client.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                seen_text += msg["content"]["text"]
        assert "w5" in seen_text, "the reply did not stream"
        manager.interrupt_kernel()
        messages = []
        while True:
            msg = client.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        errors = [m["content"] for m in messages if m["msg_type"] == "error"]
        assert errors and errors[0]["ename"] == "ReplyInterrupted"
        assert "kept in chat 'default'" in "".join(errors[0]["traceback"])
        displays = [m["content"]["data"] for m in messages if m["msg_type"] == "display_data"]
        assert displays and displays[-1]["text/plain"].startswith("w0 w1 w2 w3 w4 w5")
        assert "Interrupted" in displays[-1]["text/plain"] and "Interrupted" in displays[-1]["text/html"]
        assert "w59" not in displays[-1]["text/plain"]  # the stream was closed, not read to the end
        history = run_and_collect(client, "%mistral history")
        shown = "".join(str(m["content"].get("data", {}).get("text/plain", "")) for m in history)
        assert "(interrupted)" in shown
        after = run_and_collect(client, "%%mistral\nstill there?")
        assert any("Echo: still there?" in str(m["content"].get("data", "")) for m in after)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_notebook_frontend_gets_the_widget_view(kernel_env):
    """JupyterLab sends the cell id with each execution; then the live widget view is used."""
    kernel_env.add_rule("widget please", Reply(text="Shown live.", chunk_delay=0.01))
    with loaded_kernel() as client:
        messages, _ = execute_in_cell(client, "%%mistral\nwidget please", "cell-1")
        kinds = [m["msg_type"] for m in messages]
        assert "comm_open" in kinds and "comm_close" in kinds
        views = [m for m in messages if m["msg_type"] == "display_data" and WIDGET_VIEW in m["content"]["data"]]
        assert views, "the live widget was not displayed"
        final = [m for m in messages if m["msg_type"] == "display_data" and "text/markdown" in m["content"]["data"]]
        assert final[-1]["content"]["data"]["text/markdown"] == "Shown live."
        assert kinds.index("clear_output") < kinds.index("comm_close")
