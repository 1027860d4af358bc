"""Running the notebooks against the fake server: for nbval, and to refresh their saved outputs.

nbval ignores ``clear_output`` messages (an upstream limitation), while every notebook frontend
and nbclient apply them. The magic streams text and then replaces it with the static display
through ``clear_output``, so :func:`apply_clear_output` gives nbval what a reader sees.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Iterable

from tests.fakeapi import FakeChatServer
from tests.support.notebook_replies import install

DUMMY_KEY = "sk-notebooks-dummy-key"
OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error"}


def start_fake_server() -> FakeChatServer:
    """The fake server with the notebooks' answers, and the environment kernels inherit."""
    server = FakeChatServer().start()
    install(server)
    os.environ["MISTRAL_BASE_URL"] = server.url + "/v1"
    os.environ["MISTRAL_API_KEY"] = DUMMY_KEY
    os.environ.pop("MISTRAL_MODEL", None)
    # A fresh reply cache: the notebooks show what is and is not answered from it.
    os.environ["MISTRAL_MAGIC_CACHE_DIR"] = tempfile.mkdtemp(prefix="mistral-magic-notebooks-")
    return server


def apply_clear_output(messages: Iterable[dict]) -> list[dict]:
    """IOPub messages with ``clear_output`` applied: outputs it clears are dropped (with
    ``wait=True``, the clearing happens when the next output arrives, as in JupyterLab)."""
    kept: list[dict] = []
    waiting = False
    for msg in messages:
        kind = msg["msg_type"]
        if kind == "clear_output":
            if msg["content"].get("wait"):
                waiting = True
            else:
                kept = [m for m in kept if m["msg_type"] not in OUTPUT_TYPES]
            continue
        if kind in OUTPUT_TYPES and waiting:
            kept = [m for m in kept if m["msg_type"] not in OUTPUT_TYPES]
            waiting = False
        kept.append(msg)
    return kept


def patch_nbval() -> None:
    """Make nbval read each execution's messages with clear_output applied."""
    from nbval.plugin import IPyNbFile

    original = IPyNbFile.get_kernel_message
    if getattr(original, "applies_clear_output", False):
        return

    def get_kernel_message(self, timeout=None, stream="iopub"):
        pending = self.__dict__.setdefault("_cleared_messages", deque())
        if stream != "iopub":
            return original(self, timeout=timeout, stream=stream)
        if pending:
            return pending.popleft()
        first = original(self, timeout=timeout, stream=stream)
        if first["msg_type"] != "status" or first["content"]["execution_state"] != "busy":
            return first
        parent = first["parent_header"].get("msg_id")
        batch = [first]
        while True:
            msg = original(self, timeout=timeout, stream=stream)
            batch.append(msg)
            mine = msg["parent_header"].get("msg_id") == parent
            if mine and msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        pending.extend(apply_clear_output(batch))
        return pending.popleft()

    get_kernel_message.applies_clear_output = True
    IPyNbFile.get_kernel_message = get_kernel_message
