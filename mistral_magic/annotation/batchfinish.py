"""Finishing a batch run live: the answers a batch job gave that need more (a ``--schema`` reply to
repair, ``--votes`` the job did not give) are completed by a live :class:`.run.Runner`, whose client
starts from each item's held batch answer instead of asking it again.

The batch answers were paid for and their usage recorded when they were collected, so they are held
without usage: only the live requests are counted again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from ..api.protocol import Completion, Endpoint
from .cache import ReplyCache, cache_key
from .inflight import InFlight
from .items import Items
from .runner import Completer, ProgressFactory, Runner

FINISH_WORKERS = 8


class Finish(Protocol):
    """Completes one item from its held batch answer (``held``, one completion per choice), asking
    live what is missing; raises like a :class:`.run.Completer` when it cannot."""

    def __call__(
        self, endpoint: Endpoint, body: dict[str, Any], held: Sequence[Completion], /, on_retry: Any = None
    ) -> Completion: ...


def repair_finish(checked: Callable[..., Completion], live: Completer) -> Finish:
    """``--schema``: the held answer checked, and repaired by live requests (``checked`` is
    :meth:`.validate.SchemaClient.checked`)."""

    def finish(
        endpoint: Endpoint, body: dict[str, Any], held: Sequence[Completion], on_retry: Any = None
    ) -> Completion:
        return checked(held[0], body, lambda repair: live.complete(endpoint, repair, on_retry))

    return finish


class HeldAnswers:
    """A :class:`.run.Completer` for the finishing run: each item's request is answered by ``finish``
    from the batch answer held under its cache key (taken once)."""

    def __init__(self, finish: Finish):
        self.finish = finish
        self._held: dict[str, tuple[Completion, ...]] = {}
        self._lock = threading.Lock()

    def hold(self, key: str, choices: Sequence[Completion]) -> None:
        with self._lock:
            self._held[key] = tuple(replace(choice, usage=None) for choice in choices)

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def keys(self) -> set[str]:
        with self._lock:
            return set(self._held)

    def complete(self, endpoint: Endpoint, body: dict[str, Any], on_retry: Any = None) -> Completion:
        with self._lock:
            held = self._held.pop(cache_key(endpoint.base_url, body))
        return self.finish(endpoint, body, held, on_retry)


def finish_live(
    held: HeldAnswers,
    keys: Sequence[str],
    items: Items,
    body_for: Callable[[int], dict[str, Any]],
    *,
    endpoint: Endpoint,
    cache: ReplyCache,
    usable: Callable[[str], bool] | None,
    json: bool,
    progress: ProgressFactory,
    in_flight: InFlight | None,
    on_answer: Callable[[Completion], None] | None,
) -> dict[str, str]:
    """Finish every held answer (one item per distinct key); their answers go to ``cache``.
    Returns, per cache key, why an answer could not be finished."""
    waiting = held.keys()
    firsts: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key in waiting:
            firsts.setdefault(key, index)
    indices = list(firsts.values())
    subset = Items([items.values[i] for i in indices], None, "list")
    runner = Runner(
        held, endpoint, workers=FINISH_WORKERS, cache=cache, progress=progress, in_flight=in_flight, usable=usable
    )
    run = runner.run(subset, lambda n: body_for(indices[n]), json=json, on_answer=on_answer)
    return {keys[indices[error.index]]: error.error for error in run.errors}
