"""Fixtures of the annotation tests."""

from __future__ import annotations

import pytest

from tests.support.batch import FAST_POLL


@pytest.fixture
def batch_shell(shell, fake):
    """A shell whose --batch runs meet quick jobs and poll them often."""
    fake.batch.queued_seconds = 0.05
    fake.batch.running_seconds = 0.2
    shell.magics.session.batch_poll = FAST_POLL
    return shell
