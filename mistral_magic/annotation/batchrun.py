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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.protocol import Completion, Endpoint
from ..errors import BatchNotReady, BatchWaitInterrupted
from ..textsafe import encodable_data
from .batchstore import BatchJobStore
from .cache import ReplyCache, cache_key
from .jsonmode import is_usable
from .run import AnnotationRun, ItemError, Items, ProgressFactory, SilentProgress, settler

if TYPE_CHECKING:  # httpx, under the client, is imported on first use
    from ..api.batchjobs import BatchJob, BatchJobs

PER_JOB = 100_000
MAX_FILE_BYTES = 500_000_000  # under Mistral's 512 MB per file
CACHE_WRITE_BATCH = 1000  # results written to the cache in one transaction


@dataclass(frozen=True)
class PollSchedule:
    """Polite polling: ``first`` seconds, then each wait ``growth`` times longer, up to ``longest``."""

    first: float = 1.0
    growth: float = 1.5
    longest: float = 30.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * self.growth, self.longest)


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
        poll: PollSchedule = PollSchedule(),
        per_job: int = PER_JOB,
        max_file_bytes: int = MAX_FILE_BYTES,
    ):
        self.jobs = jobs
        self.endpoint = endpoint
        self.cache = cache
        self.store = store
        self.model = model
        self.progress = progress
        self.usable = usable
        self.poll = poll
        self.per_job = per_job
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
        keys = self._keys(total, body_for)
        results: list[Any] = [None] * total
        errors: dict[int, str] = {}
        settle = settler(results, errors, json)
        missing = self._settle_cached(keys, range(total), json, settle)
        cached = total - len(missing)
        fingerprint = self._fingerprint(keys)
        attached = [record.job_id for record in self.store.pending(fingerprint)]
        endings: list[str] = []
        sent = joined = 0
        if attached:
            endings = self._wait_and_collect(attached, set(keys), cached, total, json, on_answer, wait=wait)
            before = len(missing)
            missing = self._settle_cached(keys, missing, json, settle)
            joined = before - len(missing)
        elif missing:
            job_ids, sent = self._submit(missing, keys, body_for, fingerprint)
            if not wait:
                raise BatchNotReady(job_ids, submitted=sent)
            endings = self._wait_and_collect(job_ids, set(keys), cached, total, json, on_answer)
            missing = self._settle_cached(keys, missing, json, settle)
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

    def _keys(self, total: int, body_for: Callable[[int], dict[str, Any]]) -> list[str]:
        return [cache_key(self.endpoint.base_url, body_for(index)) for index in range(total)]

    def _settle_cached(
        self, keys: Sequence[str], indices: Iterable[int], json: bool, settle: Callable[[int, Completion], None]
    ) -> list[int]:
        """Settle the items the cache answers usably; the others' indices."""
        missing = []
        for index in indices:
            hit = self.cache.get(keys[index])
            if hit is None or not is_usable(hit.text, json, self.usable):
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
            job = self.jobs.create([uploaded.id], self.model, metadata)
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

    def _wait_and_collect(
        self,
        job_ids: list[str],
        expected: set[str],
        already: int,
        total: int,
        json: bool,
        on_answer: Callable[[Completion], None] | None,
        wait: bool = True,
    ) -> list[str]:
        """Wait for the jobs (progress from their counters), then store their results; how each ended.
        Without ``wait``, unfinished jobs raise :class:`BatchNotReady` after one look."""
        if not wait:
            unfinished = [job_id for job_id in job_ids if not self.jobs.get(job_id).terminal]
            if unfinished:
                raise BatchNotReady(unfinished)
        progress = self.progress(total, already)
        finished: dict[str, BatchJob] = {}
        try:
            delays = self.poll.delays()
            while True:
                states = [finished.get(job_id) or self.jobs.get(job_id) for job_id in job_ids]
                finished.update((job.id, job) for job in states if job.terminal)
                progress.update(already + sum(job.succeeded for job in states), sum(job.failed for job in states))
                if len(finished) == len(job_ids):
                    break
                time.sleep(next(delays))
        except KeyboardInterrupt:
            raise BatchWaitInterrupted(job_ids) from None
        finally:
            progress.close()
        endings = []
        for job_id in job_ids:
            job = finished[job_id]
            self._collect(job, expected, json, on_answer)
            self.store.collected(job.id, job.status)
            endings.append(f"batch job {job.id} ended {job.status}" + (f" ({job.errors[0]})" if job.errors else ""))
        return endings

    def _collect(
        self, job: BatchJob, expected: set[str], json: bool, on_answer: Callable[[Completion], None] | None
    ) -> None:
        _, results = self.jobs.results(job, expected)
        answers: list[tuple[str, Completion]] = []
        for result in results:
            if result.error is not None:
                self.item_errors[result.custom_id] = result.error
                continue
            completion = result.completion
            if on_answer is not None:
                on_answer(completion)
            if is_usable(completion.text, json, self.usable):
                answers.append((result.custom_id, completion))
            else:
                self.item_errors[result.custom_id] = "the reply is not valid JSON" if json else "the reply is empty"
            if len(answers) >= CACHE_WRITE_BATCH:  # an interrupt loses at most one batch: a re-run collects again
                self.cache.put_many(answers)
                answers = []
        self.cache.put_many(answers)

    @staticmethod
    def _no_result(endings: list[str]) -> str:
        why = "; ".join(endings) if endings else "no batch job answered it"
        return f"No result: {why}. Run the cell again to send the missing items."
