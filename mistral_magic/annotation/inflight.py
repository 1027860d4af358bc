"""Requests of interrupted runs that are still being answered in the background.

An interrupt stops a run at once, but a request already sent keeps going: the server may still be
generating (and billing) it, and its answer lands in the reply cache when it arrives. A re-run
started meanwhile waits for such a request (found by its cache key) instead of paying for it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_for_futures
from typing import Any


class InFlight:
    """The cache keys of requests left running by interrupted runs (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, Future[Any]] = {}
        self._when_idle: list[Callable[[], None]] = []

    def when_idle(self, action: Callable[[], None]) -> None:
        """Run ``action`` once no request is left running: now, or when the last one finishes
        (closing the HTTP client they use, after an unload)."""
        with self._lock:
            if self._running:
                self._when_idle.append(action)
                return
        action()

    def add(self, key: str, future: Future[Any]) -> None:
        """Keep ``key`` until ``future`` (its request) finishes."""
        with self._lock:
            self._running[key] = future
        future.add_done_callback(lambda done: self._forget(key, done))

    def wait(self, key: str) -> bool:
        """Wait for the request of ``key`` if one is still running; True when there was one."""
        with self._lock:
            future = self._running.get(key)
        if future is None:
            return False
        wait_for_futures([future])
        return True

    def _forget(self, key: str, future: Future[Any]) -> None:
        actions: list[Callable[[], None]] = []
        with self._lock:
            if self._running.get(key) is future:
                del self._running[key]
            if not self._running:
                actions, self._when_idle = self._when_idle, []
        for action in actions:
            action()

    def __len__(self) -> int:
        with self._lock:
            return len(self._running)
