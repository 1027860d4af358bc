"""Pacing shared by the workers of one batch: a rate limit pauses all of them, and an optional
requests-per-minute cap spaces their requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Cancelled(Exception):
    """The batch was stopped; the worker gives up before sending."""


class Pacer:
    """Call :meth:`before_attempt` before every request and :meth:`back_off` after a 429."""

    def __init__(self, rpm: float | None = None, clock: Callable[[], float] = time.monotonic):
        self._interval = 60.0 / rpm if rpm else 0.0
        self._clock = clock
        self._lock = threading.Lock()
        self._resume_at = 0.0
        self._next_slot = 0.0
        self._cancelled = threading.Event()

    def before_attempt(self) -> None:
        """Wait for the shared pause to end and for this request's slot under the rpm cap."""
        with self._lock:
            now = self._clock()
            start = max(now, self._resume_at, self._next_slot)
            if self._interval:
                self._next_slot = start + self._interval
        if self._cancelled.wait(max(0.0, start - now)):
            raise Cancelled()

    def back_off(self, seconds: float) -> None:
        """Pause every worker for ``seconds`` from now (a rate limit applies to all of them)."""
        with self._lock:
            self._resume_at = max(self._resume_at, self._clock() + seconds)

    def cancel(self) -> None:
        """Stop: waiting workers give up at once."""
        self._cancelled.set()
