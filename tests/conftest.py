"""Shared fixtures: the fake chat-completions server on 127.0.0.1 and a real IPython shell."""

from __future__ import annotations

import os
import signal
import tempfile

import pytest
from IPython.core.interactiveshell import InteractiveShell

from mistral_magic.ipython.extension import forget
from tests.fakeapi import FakeChatServer
from tests.support import TEST_KEY, Shell


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


@pytest.fixture
def kernel_env(fake, monkeypatch, tmp_path):
    """The environment a real kernel started by the test inherits: the fake server, the test key, a
    reply cache of its own and no model set; returns the fake server."""
    monkeypatch.setenv("MISTRAL_BASE_URL", fake.url + "/v1")
    monkeypatch.setenv("MISTRAL_API_KEY", TEST_KEY)
    monkeypatch.setenv("MISTRAL_MAGIC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MISTRAL_MODEL", raising=False)
    return fake


@pytest.fixture
def shell(fake, monkeypatch, tmp_path):
    """A fresh extension state in the shell, talking to the fake server with a test key, with a
    reply cache of its own."""
    monkeypatch.setenv("MISTRAL_MAGIC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MISTRAL_API_KEY", TEST_KEY)
    monkeypatch.setenv("MISTRAL_BASE_URL", fake.url + "/v1")
    monkeypatch.delenv("MISTRAL_MODEL", raising=False)
    ip = InteractiveShell.instance()
    ip.run_line_magic("unload_ext", "mistral_magic")
    forget(ip)  # an unload keeps the kernel's state for the next load: each test starts afresh
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


@pytest.fixture
def interruptible():
    """SIGINT raises KeyboardInterrupt, as in a kernel running a cell, even when this test
    process was started with SIGINT ignored (a background job of a non-interactive shell)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def pytest_configure(config):
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    # Nothing the tests run may write to the user's real cache.
    os.environ["MISTRAL_MAGIC_CACHE_DIR"] = tempfile.mkdtemp(prefix="mistral-magic-test-cache-")
