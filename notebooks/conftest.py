"""nbval runs these notebooks against the test suite's fake server (see tests/notebook_harness.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.support

from tests.support.notebook_harness import patch_nbval, start_fake_server

_server = None


def pytest_collect_file(file_path, parent):
    """Start the fake server before nbval starts a kernel for the first notebook."""
    global _server
    if file_path.suffix == ".ipynb" and _server is None:
        patch_nbval()
        _server = start_fake_server()


def pytest_sessionfinish(session, exitstatus):
    if _server is not None:
        _server.stop()
