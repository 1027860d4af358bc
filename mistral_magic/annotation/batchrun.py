"""``--batch``: an annotation run sent through Mistral's Batch API instead of live requests.

The run's fingerprint is a hash of its server, model and the cache key of every item. A run first
collects the jobs its fingerprint left uncollected (an interrupted wait, a restarted kernel), and
submits only when there were none: the items the reply cache cannot answer are written as JSONL to
temporary files (one per job: at most ``per_job`` requests and ``max_file_bytes``), uploaded, and
their jobs created and written to the job list *before* any wait. Each item's ``custom_id`` is its
cache key, so results go straight into the reply cache and identical requests are sent once.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.protocol import Completion, Endpoint
from ..errors import (
    AnnotationInterrupted,
    BatchNotReady,
    BatchWaitInterrupted,
    BatchWaitLost,
    ConnectionFailedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)
from ..textsafe import encodable_data
from .batchfinish import Finish, HeldAnswers, finish_live
from .batchstore import BatchJobStore
from .cache import ReplyCache, cache_key
from .inflight import InFlight
from .jsonmode import EMPTY_REPLY, is_usable, reply_problem
from .run import AnnotationRun, ItemBodies, ItemError, Items, ProgressFactory, SilentProgress, settler

if TYPE_CHECKING:  # httpx, under the client, is imported on first use
    from ..api.batchjobs import BatchJob, BatchJobs

PER_JOB = 100_000
MAX_FILE_BYTES = 500_000_000  # under Mistral's 512 MB per file
CACHE_WRITE_BATCH = 1000  # results written to the cache in one transaction
TRANSIENT = (RateLimitError, ServerError, ConnectionFailedError, RequestTimeoutError)  # a look to try again


@dataclass(frozen=True)
class PollSchedule:
    """Polite polling: ``first`` seconds, then each wait ``growth`` times longer, up to ``longest``.
    A look that fails (a 429 or 5xx after the client's retries; a lost connection) is skipped, and the
    next one waits at least what the server's ``Retry-After`` asked; ``patience`` failed looks in a row
    stop the wait, the jobs still running."""

    first: float = 1.0
    growth: float = 1.5
    longest: float = 30.0
    patience: int = 5  # looks in a row that fail (after the client's own retries) before giving up waiting
    longest_asked: float = 600.0  # the longest Retry-After a failed look is allowed to make us wait

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * self.growth, self.longest)


def first_choice(choices: Sequence[Completion]) -> Completion | None:
    """A result's answer: its first choice."""
    return choices[0] if choices else None


class BatchRunner:
    """Runs one template over many items as batch jobs; results land in ``cache``."""

    def __init__(
        self,
        jobs: BatchJobs,
        endpoint: Endpoint,
        cache: ReplyCache,
        store: BatchJobStore,
        *,
        model: str,
        progress: ProgressFactory = SilentProgress,
        usable: Callable[[str], bool] | None = None,
        answer_of: Callable[[Sequence[Completion]], Completion | None] = first_choice,
        finish: Finish | None = None,
        in_flight: InFlight | None = None,
        poll: PollSchedule = PollSchedule(),
        per_job: int = PER_JOB,
        timeout_hours: int = 24,
        max_file_bytes: int = MAX_FILE_BYTES,
    ):
        self.jobs = jobs
        self.endpoint = endpoint
        self.cache = cache
        self.store = store
        self.model = model
        self.progress = progress
        self.usable = usable
        self.answer_of = answer_of  # a result's choices as the answer to cache (--votes: one vote list)
        self.held = HeldAnswers(finish) if finish is not None else None  # answers to finish live
        self.in_flight = in_flight  # live requests an interrupted run left running (see Runner)
        self.poll = poll
        self.per_job = per_job
        self.timeout_hours = timeout_hours
        self.max_file_bytes = max_file_bytes
        self.item_errors: dict[str, str] = {}  # cache key -> why its request has no usable answer

    def run(
        self,
        items: Items,
        body_for: Callable[[int], dict[str, Any]],
        *,
        json: bool = False,
        on_answer: Callable[[Completion], None] | None = None,
        wait: bool = True,
    ) -> AnnotationRun:
        """Answer every item from the cache, collected jobs, or new jobs; a KeyboardInterrupt while
        waiting leaves the jobs running and raises :class:`BatchWaitInterrupted`. Without ``wait``,
        jobs that are not finished raise :class:`BatchNotReady` at once (they keep running)."""
        total = len(items.values)
        bodies = ItemBodies(body_for)
        keys = self._keys(total, bodies)
        results: list[Any] = [None] * total
        errors: dict[int, str] = dict(bodies.failed)  # items whose request could not be built
        settle = settler(results, errors, json)
        missing = self._settle_cached(keys, (i for i in range(total) if i not in errors), json, settle)
        cached = total - len(missing) - len(bodies.failed)
        fingerprint = self._fingerprint(keys)
        job_ids = [record.job_id for record in self.store.pending(fingerprint)]
        attached = bool(job_ids)
        endings: list[str] = []
        sent = joined = 0
        if not job_ids and missing:
            job_ids, sent = self._submit(missing, keys, body_for, fingerprint)
            if not wait:
                raise BatchNotReady(job_ids, submitted=sent)
        if job_ids:
            endings = self._collect_jobs(job_ids, keys, items, body_for, json, on_answer, cached, wait)
            before = len(missing)
            missing = self._settle_cached(keys, missing, json, settle)
            joined = before - len(missing) if attached else 0
        for index in missing:
            errors[index] = self.item_errors.get(keys[index]) or self._no_result(endings)
        run = AnnotationRun(
            results,
            errors=[ItemError(i, items.values[i], errors[i]) for i in sorted(errors)],
            sent=sent,
            cached=cached,
            interrupted=False,
            input_index=items.index,
            joined=joined,
        )
        if sent:
            run.notes.append(f"{sent} sent as a batch")
        return run

    def _fingerprint(self, keys: Sequence[str]) -> str:
        digest = hashlib.sha256(f"{self.endpoint.base_url.rstrip('/')}\n{self.model}\n".encode())
        for key in keys:
            digest.update(key.encode())
        return digest.hexdigest()

    def _keys(self, total: int, bodies: ItemBodies) -> list[str]:
        """Each item's cache key ("" for an item whose request cannot be built)."""
        return [
            cache_key(self.endpoint.base_url, body) if (body := bodies(i)) is not None else "" for i in range(total)
        ]

    def _settle_cached(
        self, keys: Sequence[str], indices: Iterable[int], json: bool, settle: Callable[[int, Completion], None]
    ) -> list[int]:
        """Settle the items the cache answers usably; the others' indices."""
        missing = []
        for index in indices:
            hit = self.cache.get_usable(keys[index], json, self.usable)
            if hit is None:
                missing.append(index)
            else:
                settle(index, hit)
        return missing

    def _submit(
        self, todo: Sequence[int], keys: Sequence[str], body_for: Callable[[int], dict[str, Any]], fingerprint: str
    ) -> tuple[list[str], int]:
        """Write, upload and create the jobs for ``todo`` (each distinct request once); each job is
        in the job list before this returns. Returns the job ids and how many requests they hold."""
        job_ids: list[str] = []
        sent = 0
        for path, count in self._request_files(todo, keys, body_for):
            try:
                uploaded = self.jobs.upload(path, filename="mistral-magic-batch.jsonl")
            finally:
                os.unlink(path)
            metadata = {"mistral_magic_run": fingerprint[:32], "requests": str(count)}
            job = self.jobs.create([uploaded.id], self.model, metadata, self.timeout_hours)
            self.store.register(job.id, fingerprint, self.endpoint.base_url, self.model, count)
            job_ids.append(job.id)
            sent += count
        return job_ids, sent

    def _request_files(
        self, todo: Sequence[int], keys: Sequence[str], body_for: Callable[[int], dict[str, Any]]
    ) -> Iterator[tuple[str, int]]:
        """JSONL files of ``{"custom_id", "body"}`` lines, written line by line: (path, lines)."""
        written: set[str] = set()
        handle = None
        count = size = 0
        try:
            for index in todo:
                key = keys[index]
                if key in written:
                    continue
                written.add(key)
                body = {k: v for k, v in body_for(index).items() if k not in ("model", "stream")}
                line = (
                    json.dumps(encodable_data({"custom_id": key, "body": body}), ensure_ascii=False) + "\n"
                ).encode()
                if handle is not None and (count >= self.per_job or size + len(line) > self.max_file_bytes):
                    handle.close()
                    done, handle = handle, None  # the caller removes a file once given
                    yield done.name, count
                if handle is None:
                    handle = tempfile.NamedTemporaryFile("wb", suffix=".jsonl", prefix="mistral-batch-", delete=False)
                    count = size = 0
                handle.write(line)
                count += 1
                size += len(line)
            if handle is not None:
                handle.close()
                done, handle = handle, None
                yield done.name, count
        finally:
            if handle is not None:  # an error while writing: no half file left behind
                handle.close()
                os.unlink(handle.name)

    def _collect_jobs(
        self,
        job_ids: list[str],
        keys: Sequence[str],
        items: Items,
        body_for: Callable[[int], dict[str, Any]],
        json: bool,
        on_answer: Callable[[Completion], None] | None,
        cached: int,
        wait: bool,
    ) -> list[str]:
        """Wait for the jobs, store their answers, finish the held ones live, then mark the jobs
        collected (an interrupt before that collects them again); how each job ended."""
        jobs = self._wait(job_ids, cached, len(keys), wait=wait)
        expected = set(keys)
        for job in jobs:
            self._collect(job, expected, json, on_answer)
        self._finish_held(keys, items, body_for, json, on_answer, job_ids)
        for job in jobs:
            self.store.collected(job.id, job.status)
        return [_ending(job) for job in jobs]

    def _wait(self, job_ids: list[str], already: int, total: int, wait: bool = True) -> list[BatchJob]:
        """The jobs once they have all ended, with progress from their counters. Without ``wait``,
        unfinished jobs raise :class:`BatchNotReady` after one look."""
        if not wait:
            unfinished = [job_id for job_id in job_ids if not self.jobs.get(job_id).terminal]
            if unfinished:
                raise BatchNotReady(unfinished)
        progress = self.progress(total, already)
        known: dict[str, BatchJob] = {}
        failed_looks = 0
        try:
            delays = self.poll.delays()
            while True:
                pause = next(delays)
                try:
                    for job_id in job_ids:
                        if job_id not in known or not known[job_id].terminal:
                            known[job_id] = self.jobs.get(job_id)
                    failed_looks = 0
                except TRANSIENT as error:  # the jobs run on without us: look again later
                    failed_looks += 1
                    if failed_looks > self.poll.patience:
                        raise BatchWaitLost(job_ids, str(error)) from None
                    asked = getattr(error, "retry_after", None)
                    pause = max(pause, min(asked or 0.0, self.poll.longest_asked))
                states = list(known.values())
                progress.set_stage(stage_of(states))
                progress.update(already + sum(job.succeeded for job in states), sum(job.failed for job in states))
                if len(states) == len(job_ids) and all(job.terminal for job in states):
                    return [known[job_id] for job_id in job_ids]
                time.sleep(pause)
        except KeyboardInterrupt:
            raise BatchWaitInterrupted(job_ids) from None
        finally:
            progress.close()

    def _collect(
        self, job: BatchJob, expected: set[str], json: bool, on_answer: Callable[[Completion], None] | None
    ) -> None:
        """Store the job's usable answers in the cache; hold those to finish live (or note why they fail)."""
        _, results = self.jobs.results(job, expected)
        answers: list[tuple[str, Completion]] = []
        for result in results:
            if result.error is not None:
                self.item_errors[result.custom_id] = result.error
                continue
            if on_answer is not None:
                on_answer(result.completion)
            answer = self.answer_of(result.completions)
            if answer is not None and is_usable(answer.text, json, self.usable):
                answers.append((result.custom_id, answer))
            elif self.held is not None:
                self._hold(result.custom_id, result.completions, json)
            else:
                problem = reply_problem(answer.text, json) if answer is not None else None
                self.item_errors[result.custom_id] = problem or EMPTY_REPLY
            if len(answers) >= CACHE_WRITE_BATCH:  # an interrupt loses at most one batch: a re-run collects again
                self.cache.put_many(answers)
                answers = []
        self.cache.put_many(answers)

    def _hold(self, key: str, choices: Sequence[Completion], json: bool) -> None:
        """Hold an answer to finish live, unless an earlier run already finished it."""
        assert self.held is not None
        if self.cache.get_usable(key, json, self.usable) is None:
            self.held.hold(key, choices)

    def _finish_held(
        self,
        keys: Sequence[str],
        items: Items,
        body_for: Callable[[int], dict[str, Any]],
        json: bool,
        on_answer: Callable[[Completion], None] | None,
        job_ids: list[str],
    ) -> None:
        """Finish the held answers with live requests (their answers go to the cache)."""
        if not self.held:
            return
        try:
            failures = finish_live(
                self.held,
                keys,
                items,
                body_for,
                endpoint=self.endpoint,
                cache=self.cache,
                usable=self.usable,
                json=json,
                progress=self.progress,
                in_flight=self.in_flight,
                on_answer=on_answer,
            )
        except AnnotationInterrupted:
            raise BatchWaitInterrupted(job_ids, finishing=True) from None
        self.item_errors.update(failures)

    @staticmethod
    def _no_result(endings: list[str]) -> str:
        why = "; ".join(endings) if endings else "no batch job answered it"
        return f"No result: {why}. Run the cell again to send the missing items."


def stage_of(jobs: Sequence[BatchJob]) -> str:
    """The jobs' statuses in a few words: ``batch running``, ``batch jobs: 2 running, 1 queued``."""
    statuses = [job.status.lower().replace("_", " ") for job in jobs]
    if len(statuses) == 1:
        return f"batch {statuses[0]}"
    return "batch jobs: " + ", ".join(f"{count} {status}" for status, count in Counter(statuses).items())


def _ending(job: BatchJob) -> str:
    return f"batch job {job.id} ended {job.status}" + (f" ({job.errors[0]})" if job.errors else "")
