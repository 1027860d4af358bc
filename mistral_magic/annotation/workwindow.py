"""A bounded window of work on a thread pool: at most ``size`` tasks submitted and not yet
collected, and each completion collected in O(1).

Submitting 200,000 futures up front costs about 3 KB per item before the first answer, and
``concurrent.futures.wait`` over every pending future after each completion is O(pending). Here
the next item is submitted only when one finishes, and finished futures arrive on a queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Generic, TypeVar

T = TypeVar("T")


class WorkWindow(Generic[T]):
    """Feeds ``submit(index)`` (which returns a future) with indices, keeping ``size`` in flight."""

    def __init__(self, submit: Callable[[int], Future[T]], indices: Iterable[int], size: int):
        self._submit = submit
        self._indices = iter(indices)
        self._size = max(1, size)
        self._in_flight: dict[Future[T], int] = {}
        self._finished: SimpleQueue[Future[T]] = SimpleQueue()

    def fill(self) -> bool:
        """Submit until the window is full or the indices run out; True while anything is in flight."""
        while len(self._in_flight) < self._size:
            index = next(self._indices, None)
            if index is None:
                break
            future = self._submit(index)
            self._in_flight[future] = index
            future.add_done_callback(self._finished.put)
        return bool(self._in_flight)

    def next_done(self, timeout: float) -> tuple[int, Future[T]] | None:
        """The next finished ``(index, future)``, refilling the window; ``None`` after ``timeout`` s."""
        try:
            future = self._finished.get(timeout=timeout)
        except Empty:
            return None
        index = self._in_flight.pop(future)
        self.fill()
        return index, future

    def stop(self) -> list[tuple[int, Future[T]]]:
        """Cancel what has not started; return what finished but was not collected yet."""
        for future in self._in_flight:
            future.cancel()
        return [(index, future) for future, index in self._in_flight.items() if future.done()]

    def running(self) -> list[tuple[int, Future[T]]]:
        """What is still running (after :meth:`stop`: the requests that could not be cancelled)."""
        return [(index, future) for future, index in self._in_flight.items() if not future.done()]

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)
