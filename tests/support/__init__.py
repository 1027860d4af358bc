"""Helpers the tests share: the test key and a real IPython shell that records what cells show."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from mistral_magic.provenance import Provenance
from mistral_magic.usage import TokenUsage

TEST_KEY = "sk-test-0123456789abcdefSECRET"


@dataclass
class CellRun:
    """What one cell printed and displayed, and the error it raised."""

    stdout: str
    stderr: str
    outputs: list[dict] = field(default_factory=list)
    error: BaseException | None = None
    result: object = None
    metadata: list[dict] = field(default_factory=list)  # each output's metadata, in the order of ``outputs``

    @property
    def markdown(self) -> list[str]:
        return [o["text/markdown"] for o in self.outputs if "text/markdown" in o]

    @property
    def plain(self) -> list[str]:
        return [o["text/plain"] for o in self.outputs if "text/plain" in o]

    @property
    def everything(self) -> str:
        """All text the user could see, for "never shows X" checks."""
        shown = [self.stdout, self.stderr, repr(self.error), str(self.error)]
        for output in self.outputs:
            shown.extend(str(v) for v in output.values())
        return "\n".join(shown)


class Shell:
    """A real IPython InteractiveShell with the extension loaded, pointed at the fake server."""

    def __init__(self, ip: InteractiveShell):
        self.ip = ip

    def run(self, cell: str, cell_id: str | None = None) -> CellRun:
        """Run ``cell``; with ``cell_id``, as a notebook frontend runs its cell of that id."""
        with capture_output() as cap:
            result = self.ip.run_cell(cell, store_history=True, cell_id=cell_id)
        error = result.error_in_exec or result.error_before_exec
        outputs = cap.outputs
        return CellRun(
            cap.stdout, cap.stderr, [o.data for o in outputs], error, result.result, [o.metadata or {} for o in outputs]
        )

    def ok(self, cell: str, cell_id: str | None = None) -> CellRun:
        run = self.run(cell, cell_id)
        assert run.error is None, f"cell failed: {run.error!r}\n{run.stdout}"
        return run

    @property
    def ns(self) -> dict:
        return self.ip.user_ns

    @property
    def magics(self):
        from mistral_magic.ipython.extension import magics_of

        return magics_of(self.ip)


def run_and_collect(client, code: str, timeout: float = 60) -> list[dict]:
    """Execute ``code`` in a real kernel and return its IOPub messages until it is idle again."""
    return messages_until_idle(client, client.execute(code), timeout)


def messages_until_idle(client, msg_id: str, timeout: float = 60) -> list[dict]:
    """The IOPub messages of the execution ``msg_id`` until the kernel is idle again."""
    messages = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
    raise AssertionError(f"no idle after execution {msg_id}")


def shown(messages: list[dict]) -> str:
    """Everything the IOPub ``messages`` show as text: streams, plain-text displays and tracebacks."""
    parts = []
    for msg in messages:
        content = msg["content"]
        parts.append(content.get("text", ""))
        parts.append(str(content.get("data", {}).get("text/plain", "")))
        parts.extend(content.get("traceback", []))
    return "".join(parts)


def answered(*, finish_reason: str = "stop", usage: dict | None = None, model: str = "m") -> Provenance:
    """The provenance of a live answer, for driving a renderer directly."""
    return Provenance(
        source="live",
        model_asked=model,
        model_answered=model,
        server="127.0.0.1",
        request_hash="0" * 64,
        asked_at="2026-01-01T00:00:00Z",
        finish_reason=finish_reason,
        usage=TokenUsage.of(usage),
    )


@contextmanager
def loaded_kernel(setup: str = "%load_ext mistral_magic") -> Iterator[Any]:
    """A real kernel (it inherits this process's environment) that ran ``setup``: its client, shut
    down afterwards."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        run_and_collect(client, setup)
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def execute_in_cell(client, code: str, cell_id: str, timeout: float = 60) -> tuple[list[dict], int]:
    """Execute ``code`` in a real kernel as JupyterLab runs a cell: with the cell's id in the execute
    request's metadata. Returns the IOPub messages until idle and the cell's execution count."""
    msg = client.session.msg(
        "execute_request",
        {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False},
        metadata={"cellId": cell_id},
    )
    client.shell_channel.send(msg)
    messages = messages_until_idle(client, msg["header"]["msg_id"], timeout)
    while True:  # replies to earlier executions may still wait on the shell channel
        reply = client.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return messages, reply["content"]["execution_count"]
