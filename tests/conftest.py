"""Shared fixtures: the fake chat-completions server on 127.0.0.1 and a real IPython shell."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

sys.path.insert(0, str(Path(__file__).parent))

from fakeserver import FakeChatServer  # noqa: E402

TEST_KEY = "sk-test-0123456789abcdefSECRET"


@pytest.fixture(scope="session")
def fake_server():
    with FakeChatServer() as server:
        yield server


@pytest.fixture
def fake(fake_server):
    """The fake server, with an empty script and no captured requests."""
    fake_server.reset()
    fake_server.required_key = None
    yield fake_server
    fake_server.reset()


@dataclass
class CellRun:
    """What one cell printed and displayed, and the error it raised."""

    stdout: str
    stderr: str
    outputs: list[dict] = field(default_factory=list)
    error: BaseException | None = None
    result: object = None

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

    def run(self, cell: str) -> CellRun:
        with capture_output() as cap:
            result = self.ip.run_cell(cell, store_history=True)
        error = result.error_in_exec or result.error_before_exec
        return CellRun(cap.stdout, cap.stderr, [o.data for o in cap.outputs], error, result.result)

    def ok(self, cell: str) -> CellRun:
        run = self.run(cell)
        assert run.error is None, f"cell failed: {run.error!r}\n{run.stdout}"
        return run

    @property
    def ns(self) -> dict:
        return self.ip.user_ns

    @property
    def magics(self):
        import mistral_magic

        return mistral_magic._loaded[id(self.ip)]


@pytest.fixture
def shell(fake, monkeypatch):
    """A fresh extension state in the shell, talking to the fake server with a test key."""
    monkeypatch.setenv("MISTRAL_API_KEY", TEST_KEY)
    monkeypatch.setenv("MISTRAL_BASE_URL", fake.url + "/v1")
    monkeypatch.delenv("MISTRAL_MODEL", raising=False)
    ip = InteractiveShell.instance()
    ip.run_line_magic("unload_ext", "mistral_magic")
    ip.config.pop("MistralMagics", None)  # %config from an earlier test lives on the shell
    ip.run_line_magic("load_ext", "mistral_magic")
    shell = Shell(ip)
    # Retries in tests wait milliseconds, not seconds.
    shell.magics.retry_base_delay = 0.01
    shell.magics.retry_max_wait = 0.2
    yield shell
    ip.run_line_magic("unload_ext", "mistral_magic")
    for name in list(ip.user_ns):
        if name.startswith("t_"):
            del ip.user_ns[name]


def pytest_configure(config):
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
