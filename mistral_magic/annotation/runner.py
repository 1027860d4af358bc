"""The live runner: one one-shot request per item over a thread pool, paced, cached as answers arrive.

Each item is its own request (no conversation history). Answers keep input order; an item that fails
(after retries) or whose JSON reply does not parse becomes an error entry, and the run goes on. Every
answer is written to the reply cache the moment it arrives, so an interrupted run keeps what it paid
for and a re-run sends only the missing items. It knows nothing of sessions, settings or frontends: it
gets a client, an endpoint, a function that makes each request body, and a progress factory."""

from __future__ import annotations

import contextvars
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from ..api.pacing import Cancelled, Pacer
from ..api.protocol import Completion, Endpoint
from ..errors import AnnotationInterrupted, UsageError, one_line, option
from .cache import ReplyCache, cache_key
from .inflight import InFlight
from .items import Items
from .jsonmode import is_usable
from .result import AnnotationRun, ItemError, settler
from .workwindow import WorkWindow

if TYPE_CHECKING:  # httpx, under the client, is imported on first use
    from ..api.client import ChatClient

MIN_RETRIES = 5


class Completer(Protocol):
    """What a run sends through: a :class:`StreamedCompleter`, or one that validates (``--schema``) or votes."""

    def complete(self, endpoint: Endpoint, body: dict[str, Any], on_retry: Any = None) -> Completion: ...


class StreamedCompleter:
    """One-shot answers asked as streams: the read timeout then applies between pieces, so a slow
    generation is not cut and sent again (and a timeout after the first piece is not retried)."""

    def __init__(self, client: ChatClient):
        self.client = client

    def complete(self, endpoint: Endpoint, body: dict[str, Any], on_retry: Any = None) -> Completion:
        stream = self.client.stream(endpoint, body, on_retry)
        for _ in stream:
            pass
        return stream.completion()


class Progress(Protocol):
    """Shows how a run goes: :meth:`update` from the run's own thread, :meth:`close` at the end."""

    def update(self, done: int, failed: int) -> None: ...

    def set_stage(self, stage: str) -> None: ...

    def close(self) -> None: ...


ProgressFactory = Callable[[int, int], Progress]
"""Makes the progress view of a run from (items in total, items already answered)."""


class SilentProgress:
    """Progress nobody sees (a run without a frontend)."""

    def __init__(self, total: int, already: int = 0):
        self.total = total

    def update(self, done: int, failed: int) -> None:
        pass

    def set_stage(self, stage: str) -> None:
        pass

    def close(self) -> None:
        pass


class ItemBodies:
    """``body_for`` of a run, made safe per item: an item whose request cannot be built (a missing
    image file, a value whose ``str()`` raises) gives ``None`` and its reason in ``failed``, so
    the run reports it as that item's error and answers the others."""

    def __init__(self, body_for: Callable[[int], dict[str, Any]]):
        self.body_for = body_for
        self.failed: dict[int, str] = {}

    def __call__(self, index: int) -> dict[str, Any] | None:
        try:
            return self.body_for(index)
        except Exception as error:
            self.failed[index] = one_line(error)
            return None


class Runner:
    """Sends one request per body over a thread pool, sharing a pacer, writing the cache."""

    def __init__(
        self,
        client: Completer,
        endpoint: Endpoint,
        *,
        workers: int,
        cache: ReplyCache | None,
        rpm: float | None = None,
        progress: ProgressFactory = SilentProgress,
        in_flight: InFlight | None = None,
        usable: Callable[[str], bool] | None = None,
    ):
        if workers < 1:
            raise UsageError(f"{option('workers')} must be at least 1.")
        self.client = client
        self.pacer = Pacer(rpm)
        self.endpoint = replace(endpoint, pacer=self.pacer, max_retries=max(endpoint.max_retries, MIN_RETRIES))
        self.workers = workers
        self.cache = cache
        self.progress = progress
        self.in_flight = in_flight if in_flight is not None else InFlight()
        self.usable = usable  # whether a reply may be cached and served again (default: see is_usable)
        self.sent = 0
        self.joined = 0
        self._count_lock = threading.Lock()

    def run(
        self,
        items: Items,
        body_for: Callable[[int], dict[str, Any]],
        *,
        json: bool = False,
        on_answer: Callable[[Completion], None] | None = None,
    ) -> AnnotationRun:
        """Answer the body of every item (``body_for(index)``, built when it is sent); a
        KeyboardInterrupt stops at once and raises AnnotationInterrupted."""
        total = len(items.values)
        results: list[Any] = [None] * total
        errors: dict[int, str] = {}
        settle = settler(results, errors, json)
        bodies = ItemBodies(body_for)
        todo = self._not_cached(total, bodies, json, settle)
        errors.update(bodies.failed)  # items whose request could not be built: settled, as failed
        cached = total - len(todo) - len(errors)
        progress = self.progress(total, cached)
        executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mistral-annotate")

        def submit(index: int) -> Future[Completion]:
            body = bodies(index)
            if body is None:
                unbuilt: Future[Completion] = Future()
                unbuilt.set_exception(UsageError(bodies.failed[index]))
                return unbuilt
            key = cache_key(self.endpoint.base_url, body) if self.cache is not None else None
            # Each request runs in a copy of the caller's context, so its messages speak to the same audience.
            return executor.submit(contextvars.copy_context().run, self._answer, body, key, json)

        # Bounded: a few requests queued per worker, the next one submitted as one finishes.
        window = WorkWindow(submit, todo, self.workers * 2 + 8)
        interrupted = False
        left_running: list[int] = []
        collected = len(errors)
        last_shown = 0.0
        try:
            while window.fill():
                finished = window.next_done(timeout=0.1)
                if finished is not None:
                    self._take(*finished, settle, errors, on_answer)
                    collected += 1
                if time.monotonic() - last_shown >= 0.1 or not window.in_flight:
                    last_shown = time.monotonic()
                    progress.update(cached + collected - len(errors), len(errors))
        except KeyboardInterrupt:
            interrupted = True
            self.pacer.cancel()
            executor.shutdown(wait=False, cancel_futures=True)
            # Requests already in flight finish in the background and still land in the cache.
            for index, future in window.stop():
                self._take(index, future, settle, errors, on_answer)
            left_running = self._leave_running(window.running(), bodies)
        else:
            executor.shutdown(wait=True)
        finally:
            progress.close()
        run = AnnotationRun(
            results,
            errors=[ItemError(i, items.values[i], errors[i]) for i in sorted(errors)],
            sent=self.sent,
            cached=cached,
            interrupted=interrupted,
            input_index=items.index,
            in_flight=left_running,
            joined=self.joined,
        )
        if interrupted:
            raise AnnotationInterrupted(
                run, remaining=run.remaining, total=len(run), in_flight=len(left_running), kept=self.cache is not None
            )
        return run

    def _not_cached(
        self, total: int, bodies: ItemBodies, json: bool, settle: Callable[[int, Completion], None]
    ) -> Sequence[int]:
        """Settle the items the cache answers (usably); the indices of the others, 4 bytes each
        (without those whose request cannot be built: ``bodies.failed`` says why)."""
        if self.cache is None:
            return range(total)
        todo = array("I")
        for index in range(total):
            body = bodies(index)
            if body is None:
                continue
            hit = self.cache.get_usable(cache_key(self.endpoint.base_url, body), json, self.usable)
            if hit is None:
                todo.append(index)
            else:
                settle(index, hit)
        return todo

    def _leave_running(self, running: list[tuple[int, Future[Completion]]], bodies: ItemBodies) -> list[int]:
        """Note the requests still running at an interrupt, so that a re-run waits for their answers
        (which reach the cache) instead of sending them again; their indices."""
        if self.cache is not None:
            for index, future in running:
                body = bodies(index)
                if body is not None:
                    self.in_flight.add(cache_key(self.endpoint.base_url, body), future)
        return sorted(index for index, _ in running)

    def _answer(self, body: dict[str, Any], key: str | None, json: bool) -> Completion:
        if key is not None and self.cache is not None and self.in_flight.wait(key):
            hit = self.cache.get_usable(key, json, self.usable)  # the interrupted run's request has finished
            if hit is not None:
                with self._count_lock:
                    self.joined += 1
                return hit
        try:
            completion = self.client.complete(self.endpoint, body)
        except Cancelled:
            raise
        except BaseException:
            self._count_sent()
            raise
        self._count_sent()
        if key is not None and self.cache is not None and is_usable(completion.text, json, self.usable):
            self.cache.put(key, completion)
        return completion

    def _count_sent(self) -> None:
        with self._count_lock:
            self.sent += 1

    @staticmethod
    def _take(
        index: int,
        future: Future[Completion],
        settle: Callable[[int, Completion], None],
        errors: dict[int, str],
        on_answer: Callable[[Completion], None] | None,
    ) -> None:
        """Record one finished request: its answer, or why it has none."""
        if future.cancelled():
            return
        try:
            completion = future.result()
        except Cancelled:
            return
        except Exception as error:  # ours, or a bug or an unexpected library error: report, go on
            errors[index] = one_line(error)
            return
        if on_answer is not None:
            on_answer(completion)
        settle(index, completion)
