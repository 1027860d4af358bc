"""Batches: one prompt template over many items, sent concurrently, cached as answers arrive.

Each item is its own one-shot request (no conversation history). Answers keep input order;
an item that fails (after retries) or whose ``--json`` reply does not parse becomes an error
entry, and the run goes on. Every answer is written to the reply cache the moment it arrives,
so an interrupted run keeps what it paid for and a re-run sends only the missing items.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from .cache import ReplyCache, cache_key
from .errors import MistralMagicError, UsageError
from .interpolate import interpolate
from .jsonmode import parse_json_reply
from .pacing import Cancelled, Pacer
from .progress import ProgressView
from .protocol import Completion, Endpoint

BATCH_MIN_RETRIES = 5
SAMPLING_OPTIONS = ("temperature", "top_p", "max_tokens", "random_seed", "stop", "safe_prompt", "reasoning_effort")


@dataclass(frozen=True)
class ItemError:
    """Why one item has no answer."""

    index: int
    item: Any
    error: str


class AnnotationRun(list):
    """The answers in input order (``None`` where an item has none), with what happened."""

    def __init__(
        self, results: list, *, errors: list[ItemError], sent: int, cached: int, interrupted: bool, index: Any = None
    ):
        super().__init__(results)
        self.errors = errors
        self.sent = sent
        self.cached = cached
        self.interrupted = interrupted
        self.index = index

    @property
    def remaining(self) -> int:
        """Items neither answered nor failed (an interrupted run)."""
        failed = {e.index for e in self.errors}
        return sum(1 for i, r in enumerate(self) if r is None and i not in failed)

    def series(self, name: str | None = None) -> Any:
        """The answers as a pandas Series aligned to the input's index (pandas input)."""
        import pandas

        return pandas.Series(list(self), index=self.index, name=name)

    def summary(self) -> str:
        """One line: how many answered, from the cache, failed, remaining."""
        answered = sum(1 for r in self if r is not None)
        parts = [f"{answered} answered ({self.cached} from the cache)"]
        if self.errors:
            parts.append(f"{len(self.errors)} failed: see %mistral errors")
        if self.interrupted:
            parts.append(f"interrupted with {self.remaining} remaining: run it again to continue")
        return f"{len(self)} items: " + ", ".join(parts) + "."


class AnnotationInterrupted(MistralMagicError):
    """A kernel interrupt stopped the batch; ``run`` holds what finished (also in the cache)."""

    label = "Interrupted"

    def __init__(self, run: AnnotationRun):
        super().__init__(
            f"Stopped with {run.remaining} of {len(run)} items remaining; the finished answers are kept "
            "(and cached): run it again to send only the rest."
        )
        self.run = run


@dataclass(frozen=True)
class Items:
    """What ``--each`` names, as rows to fill the template with."""

    values: list
    fields: list[dict]
    kind: str  # "list", "series" or "frame"
    source: Any = None

    @property
    def index(self) -> Any:
        return self.source.index if self.kind in ("series", "frame") else None


def as_items(obj: Any, name: str = "items") -> Items:
    """Rows of a list, tuple or other iterable, a pandas Series, or a DataFrame (whose columns
    become ``{column}`` fields and whose rows are ``{item}`` as dicts)."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(obj, pandas.DataFrame):
        rows = [row.to_dict() for _, row in obj.iterrows()]
        return Items(rows, rows, "frame", obj)
    if pandas is not None and isinstance(obj, pandas.Series):
        return Items(obj.tolist(), [{} for _ in range(len(obj))], "series", obj)
    if isinstance(obj, (str, bytes)) or isinstance(obj, Mapping) or not isinstance(obj, Iterable):
        raise UsageError(f"{name} must be a list, tuple, pandas Series or DataFrame (got {type(obj).__name__}).")
    values = list(obj)
    return Items(values, [{} for _ in values], "list", obj)


def fill_template(template: str, items: Items, namespace: Mapping[str, Any] | None = None) -> list[str]:
    """The prompt for each item: ``{item}`` and the row's ``{column}`` fields, then notebook
    variables; other braces stay as written."""
    base = namespace or {}
    return [
        interpolate(template, ChainMap(fields, {"item": value}, base))
        for value, fields in zip(items.values, items.fields)
    ]


class BatchRunner:
    """Sends one request per body over a thread pool, sharing a pacer, writing the cache."""

    def __init__(
        self,
        client: Any,
        endpoint: Endpoint,
        *,
        workers: int,
        cache: ReplyCache | None,
        rpm: float | None = None,
        progress: Callable[..., ProgressView] = ProgressView,
    ):
        if workers < 1:
            raise UsageError("--workers must be at least 1.")
        self.client = client
        self.pacer = Pacer(rpm)
        self.endpoint = replace(endpoint, pacer=self.pacer, max_retries=max(endpoint.max_retries, BATCH_MIN_RETRIES))
        self.workers = workers
        self.cache = cache
        self.progress = progress
        self.sent = 0
        self._count_lock = threading.Lock()

    def run(
        self,
        items: Items,
        bodies: list[dict],
        *,
        json: bool = False,
        on_answer: Callable[[Completion], None] | None = None,
    ) -> AnnotationRun:
        """Answer every body; a KeyboardInterrupt stops at once and raises AnnotationInterrupted."""
        total = len(bodies)
        results: list[Any] = [None] * total
        errors: dict[int, str] = {}
        keys = [cache_key(self.endpoint.base_url, body) for body in bodies] if self.cache is not None else None

        def settle(index: int, completion: Completion) -> None:
            try:
                results[index] = parse_json_reply(completion.text) if json else completion.text
            except MistralMagicError as error:
                errors[index] = str(error)

        todo = []
        for index in range(total):
            hit = self.cache.get(keys[index]) if keys else None
            if hit is None:
                todo.append(index)
            else:
                settle(index, hit)
        cached = total - len(todo)
        progress = self.progress(total, cached)
        executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mistral-batch")
        futures: dict[Future, int] = {
            executor.submit(self._answer, bodies[i], keys[i] if keys else None): i for i in todo
        }
        pending = set(futures)
        interrupted = False
        last_shown = 0.0
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                self._collect(finished, futures, settle, errors, on_answer)
                if time.monotonic() - last_shown >= 0.1 or not pending:
                    last_shown = time.monotonic()
                    progress.update(total - len(pending) - len(errors), len(errors))
        except KeyboardInterrupt:
            interrupted = True
            self.pacer.cancel()
            executor.shutdown(wait=False, cancel_futures=True)
            # Requests already in flight finish in the background and still land in the cache.
            self._collect({f for f in pending if f.done()}, futures, settle, errors, on_answer)
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
            index=items.index,
        )
        if interrupted:
            raise AnnotationInterrupted(run)
        return run

    def _answer(self, body: dict, key: str | None) -> Completion:
        try:
            completion = self.client.complete(self.endpoint, body)
        except Cancelled:
            raise
        except BaseException:
            self._count_sent()
            raise
        self._count_sent()
        if key is not None:
            self.cache.put(key, completion)
        return completion

    def _count_sent(self) -> None:
        with self._count_lock:
            self.sent += 1

    @staticmethod
    def _collect(finished, futures, settle, errors, on_answer) -> None:
        for future in finished:
            if future.cancelled():
                continue
            index = futures[future]
            try:
                completion = future.result()
            except Cancelled:
                continue
            except MistralMagicError as error:
                errors[index] = str(error)
                continue
            except Exception as error:  # a bug or an unexpected library error: report, go on
                errors[index] = f"{type(error).__name__}: {error}"
                continue
            if on_answer is not None:
                on_answer(completion)
            settle(index, completion)


def store_results(namespace: dict, name: str, items: Items, run: AnnotationRun) -> None:
    """``--out``: a list for list-like input, a Series aligned to the index for a Series, and for
    a DataFrame a new column ``name`` (the variable ``name`` gets that column too)."""
    if items.kind == "list":
        namespace[name] = list(run)
        return
    series = run.series(name)
    if items.kind == "frame":
        items.source[name] = series
    namespace[name] = series


def run_batch(
    session: Any,
    items: Items,
    prompts: list[str],
    settings: Any,
    options: Any,
    *,
    workers: int = 8,
    cache: bool = True,
    rpm: float | None = None,
    usage_label: str = "batch",
) -> AnnotationRun:
    """Ask every prompt as a one-shot request with the session's settings; see :class:`BatchRunner`."""
    from .render.select import batch_progress

    settings = session.resolve_local(replace(settings, stream=False))
    options = replace(options, once=True)
    bodies = [session.build_request(prompt, settings, options) for prompt in prompts]
    runner = BatchRunner(
        session.client,
        session.endpoint(settings),
        workers=workers,
        cache=session.cache if cache else None,
        rpm=rpm,
        progress=batch_progress(),
    )

    def on_answer(completion: Completion) -> None:
        session.store.record_usage(usage_label, completion.usage)

    try:
        run = runner.run(items, bodies, json=options.json, on_answer=on_answer)
    except AnnotationInterrupted as stopped:
        session.last_run = stopped.run
        raise
    session.last_run = run
    return run


def annotate(
    items: Any,
    template: str,
    *,
    model: str | None = None,
    system: str | None = None,
    json: bool = False,
    workers: int = 8,
    cache: bool = True,
    rpm: float | None = None,
    **sampling: Any,
) -> AnnotationRun:
    """Fill ``template`` once per item (``{item}``; ``{column}`` for DataFrame rows) and ask each
    as its own request, concurrently. Returns the answers in input order; ``.errors`` lists the
    items without one. Uses the settings of the loaded ``%mistral`` extension, else the
    environment. A KeyboardInterrupt raises :class:`AnnotationInterrupted` with the partial run.
    """
    from .session import Session, TurnOptions
    from .settings import MistralConfig

    unknown = set(sampling) - set(SAMPLING_OPTIONS)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}; sampling options are {', '.join(SAMPLING_OPTIONS)}")
    session = _extension_session() or _standalone_session(Session, MistralConfig)
    stop = sampling.pop("stop", None)
    stop = (stop,) if isinstance(stop, str) else tuple(stop or ())
    settings = session.config.settings().with_overrides(model=model, **sampling)
    rows = as_items(items)
    options = TurnOptions(system=system, json=json, stop=stop)
    return run_batch(
        session,
        rows,
        fill_template(template, rows),
        settings,
        options,
        workers=workers,
        cache=cache,
        rpm=rpm,
        usage_label="annotate",
    )


_standalone: Any = None


def _extension_session() -> Any:
    """The session of the ``%mistral`` extension loaded in the running IPython, if any."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    from . import _loaded

    magics = _loaded.get(id(shell)) if shell is not None else None
    return magics.session if magics is not None else None


def _standalone_session(session_class: Any, config_class: Any) -> Any:
    global _standalone
    if _standalone is None:
        _standalone = session_class(config_class())
    return _standalone
