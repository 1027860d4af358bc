"""``--batch``: an annotation run sent through Mistral's Batch API instead of live requests.

Each item's ``custom_id`` is its cache key, so results go straight into the reply cache and identical
requests are sent once. A run first finds the pending jobs of the job list (:mod:`.batchstore`) that
carry its missing requests, whatever run sent them (an interrupted wait, a restarted kernel, another
kernel on the same cache, the same cell over fewer rows); only the requests no job carries are written
as JSONL to temporary files (one per job: at most ``per_job`` requests and ``max_file_bytes``), each
claimed, uploaded and created as a job (see :mod:`.batchclaims`). It then waits for every job, stores
all of each job's results (their usage recorded once), finishes the answers that need more, and marks
the jobs collected.

A job the server no longer knows (a 404 on the job or on its results, while the job list answers) is
marked ended: its items are reported, and the next run sends them again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any

from ..api.protocol import Completion, Endpoint
from ..errors import (
    AnnotationInterrupted,
    BatchNotReady,
    BatchWaitInterrupted,
    BatchWaitLost,
    NotFoundError,
)
from .batchclaims import Cover, JobClaims
from .batchfiles import MAX_FILE_BYTES, PER_JOB, request_files
from .batchfinish import Finish, HeldAnswers, finish_live
from .batchstatus import TRANSIENT, PollSchedule, ending_of, first_choice, gone, running, stage_of
from .batchstore import GONE, BatchJobStore, JobRecord
from .cache import ReplyCache, cache_key
from .inflight import InFlight
from .items import Items
from .jsonmode import EMPTY_REPLY, is_usable, reply_problem
from .result import AnnotationRun, ItemError, settler
from .runner import ItemBodies, ProgressFactory, SilentProgress

if TYPE_CHECKING:  # httpx, under the client, is imported on first use
    from ..api.batchjobs import BatchJob, BatchJobs, BatchResult

CACHE_WRITE_BATCH = 1000  # results written to the cache in one transaction


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
        poll: PollSchedule | None = None,
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
        self.poll = poll or PollSchedule()
        self.per_job = per_job
        self.max_file_bytes = max_file_bytes
        self.claims = JobClaims(
            jobs,
            store,
            base_url=endpoint.base_url,
            model=model,
            timeout_hours=timeout_hours,
            grace=self.poll.creation_grace,
        )
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
        """Answer every item from the cache, pending jobs, or new jobs; a KeyboardInterrupt raises
        :class:`BatchWaitInterrupted` in one line (jobs keep running). Without ``wait``, jobs that
        are not finished raise :class:`BatchNotReady` at once (they keep running)."""
        total = len(items.values)
        results: list[Any] = [None] * total
        errors: dict[int, str] = {}
        settle = settler(results, errors, json)
        bodies = ItemBodies(body_for)
        try:
            keys = self._keys(total, bodies)
            errors.update(bodies.failed)  # items whose request could not be built
            missing = self._settle_cached(keys, (i for i in range(total) if i not in errors), json, settle)
        except KeyboardInterrupt:  # before anything was sent
            raise BatchWaitInterrupted([], stage="sending") from None
        cached = total - len(missing) - len(bodies.failed)
        cover = self._cover(missing, keys, body_for, wait)
        if not wait and (cover.sent or cover.settling):
            raise BatchNotReady(cover.job_ids, submitted=cover.sent, new=cover.new, settling=cover.settling)
        endings: list[str] = []
        joined = 0
        if cover.claims:
            claims = list(cover.claims.values())
            endings = self._collect_jobs(claims, keys, items, body_for, json, on_answer, cached, wait)
            before = missing
            missing = self._settle_cached(keys, missing, json, settle)
            answered = set(before) - set(missing)
            joined = sum(1 for index in answered if keys[index] in cover.earlier)
        for index in missing:
            errors[index] = self.item_errors.get(keys[index]) or self._no_result(endings)
        run = AnnotationRun(
            results,
            errors=[ItemError(i, items.values[i], errors[i]) for i in sorted(errors)],
            sent=cover.sent,
            cached=cached,
            interrupted=False,
            input_index=items.index,
            joined=joined,
        )
        if cover.sent:
            run.notes.append(f"{cover.sent} sent as a batch")
        return run

    def _cover(
        self, missing: Sequence[int], keys: Sequence[str], body_for: Callable[[int], dict[str, Any]], wait: bool
    ) -> Cover:
        """The jobs answering the ``missing`` items: pending ones that carry their requests, and new
        ones for the rest. Waits (unless ``wait`` is off) for jobs other runs are still creating."""
        first: dict[str, int] = {}
        for index in missing:
            first.setdefault(keys[index], index)
        legacy = self.store.legacy(self._fingerprint(keys))
        if legacy:  # jobs an earlier version sent for exactly these items
            return Cover({claim.run: claim for claim in legacy}, set(first))
        cover = Cover()
        todo = list(first)
        delays = self.poll.delays()
        progress = None
        try:
            while todo:
                found = self.claims.covering(todo)
                cover.claims.update(found.claims)
                cover.earlier |= found.keys
                unsent = self._send([key for key in todo if key not in found.keys and key not in found.settling],
                                    first, keys, body_for, cover)  # fmt: skip
                todo = [key for key in todo if key in found.settling] + unsent
                if unsent or not todo:
                    continue  # another run claimed some of them first: look again at once
                if not wait:
                    cover.settling = len(todo)
                    break
                if progress is None:
                    progress = self.progress(len(todo), 0)
                    progress.set_stage("another run is creating the batch job")
                    progress.update(0, 0)
                time.sleep(next(delays))
        except KeyboardInterrupt:
            raise BatchWaitInterrupted(cover.new, stage="settling") from None
        finally:
            if progress is not None:
                progress.close()
        return cover

    def _send(
        self,
        todo: Sequence[str],
        first: dict[str, int],
        keys: Sequence[str],
        body_for: Callable[[int], dict[str, Any]],
        cover: Cover,
    ) -> list[str]:
        """Claim and submit ``todo`` as jobs (in ``cover``); the requests another run claimed first."""
        done = 0
        try:
            with closing(
                request_files([first[key] for key in todo], keys, body_for, self.per_job, self.max_file_bytes)
            ) as files:
                for path, carried in files:
                    record = self.claims.submit(path, carried, cover.new)
                    if record is None:
                        return list(todo[done:])
                    assert record.job_id is not None
                    cover.claims[record.run] = record
                    cover.new.append(record.job_id)
                    cover.sent += len(carried)
                    done += len(carried)
        except KeyboardInterrupt:  # while writing a file: nothing of it was sent
            raise BatchWaitInterrupted(cover.new, stage="sending") from None
        return []

    def _fingerprint(self, keys: Sequence[str]) -> str:
        """What an earlier version named a run by: a hash of its server, model and every cache key."""
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

    def _collect_jobs(
        self,
        claims: list[JobRecord],
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
        jobs = self._wait(claims, cached, len(keys), wait=wait)
        job_ids = [claim.job_id or claim.run for claim in claims]
        endings = []
        collected = []
        try:
            for claim in claims:
                job = jobs[claim.run]
                if job is None:
                    endings.append(gone(claim.job_id))
                    continue
                ending, kept = self._collect(claim, job, keys, json, on_answer)
                endings.append(ending)
                if kept:
                    collected.append((claim, job))
        except KeyboardInterrupt:
            raise BatchWaitInterrupted(job_ids, stage="reading") from None
        self._finish_held(keys, items, body_for, json, on_answer, job_ids)
        for claim, job in collected:
            self.store.ended(claim.run, job.status)
        return endings

    def _wait(self, claims: list[JobRecord], already: int, total: int, wait: bool = True) -> dict[str, BatchJob | None]:
        """The jobs once they have all ended (None: gone from the server), by run, with progress from
        their counters. Without ``wait``, unfinished jobs raise :class:`BatchNotReady` after one look."""
        job_ids = [claim.job_id or claim.run for claim in claims]
        if not wait:
            looked = {claim.run: self._look(claim) for claim in claims}
            unfinished = [job.id for job in looked.values() if job is not None and not job.terminal]
            if unfinished:
                raise BatchNotReady(unfinished)
            return looked
        progress = self.progress(total, already)
        known: dict[str, BatchJob | None] = {}
        failed_looks = 0
        try:
            delays = self.poll.delays()
            while True:
                pause = next(delays)
                try:
                    for claim in claims:
                        if claim.run not in known or running(known[claim.run]):
                            known[claim.run] = self._look(claim)
                    failed_looks = 0
                except TRANSIENT as error:  # the jobs run on without us: look again later
                    failed_looks += 1
                    if failed_looks > self.poll.patience:
                        raise BatchWaitLost(job_ids, str(error)) from None
                    asked = getattr(error, "retry_after", None)
                    pause = max(pause, min(asked or 0.0, self.poll.longest_asked))
                states = [job for job in known.values() if job is not None]
                progress.set_stage(stage_of(states))
                answered = sum(job.succeeded for job in states)
                progress.update(min(total, already + answered), sum(job.failed for job in states))
                if len(known) == len(claims) and not any(running(job) for job in known.values()):
                    return known
                time.sleep(pause)
        except KeyboardInterrupt:
            raise BatchWaitInterrupted(job_ids) from None
        finally:
            progress.close()

    def _look(self, claim: JobRecord) -> BatchJob | None:
        """The claim's job as the server reports it; None, and the claim ended, when the server no
        longer knows it while its job list answers (else the 404 means a wrong base URL: raised)."""
        assert claim.job_id is not None
        try:
            return self.jobs.get(claim.job_id)
        except NotFoundError as missing:
            self.jobs.confirm_gone(missing)
            self.store.ended(claim.run, GONE)
            return None

    def _collect(
        self,
        claim: JobRecord,
        job: BatchJob,
        keys: Sequence[str],
        json: bool,
        on_answer: Callable[[Completion], None] | None,
    ) -> tuple[str, bool]:
        """Store all the job's usable answers in the cache, hold those to finish live (or note why they
        fail), and record the usage of each result once; how the job ended, and whether its results
        were all there (else the claim is ended now, as gone)."""
        run = claim.run
        expected = self.store.keys_of(run) or set(keys)  # the requests it carries (an older job: the run's)
        counted = self.store.counted(run)
        reader, results = self.jobs.results(job, expected)
        answers: list[tuple[str, Completion]] = []
        fresh: list[BatchResult] = []  # results whose usage is not recorded yet

        def write() -> None:
            self.cache.put_many(answers)
            self.store.count(run, [result.custom_id for result in fresh])
            if on_answer is not None:
                for result in fresh:
                    on_answer(result.completion)
            answers.clear()
            fresh.clear()

        try:
            for result in results:
                if result.error is not None:
                    self.item_errors[result.custom_id] = result.error
                    continue
                if result.custom_id not in counted:
                    fresh.append(result)
                answer = self.answer_of(result.completions)
                if answer is not None and is_usable(answer.text, json, self.usable):
                    answers.append((result.custom_id, answer))
                elif self.held is not None:
                    self._hold(result.custom_id, result.completions, json)
                else:
                    problem = reply_problem(answer.text, json) if answer is not None else None
                    self.item_errors[result.custom_id] = problem or EMPTY_REPLY
                if len(answers) + len(fresh) >= CACHE_WRITE_BATCH:  # an interrupt loses nothing read before
                    write()
        except NotFoundError:  # the job is known, its results file is not: what was read is kept
            self.store.ended(run, GONE)
            return gone(job.id, results=True), False
        finally:
            write()
        return ending_of(job, reader.tally), True

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
            raise BatchWaitInterrupted(job_ids, stage="finishing") from None
        self.item_errors.update(failures)

    @staticmethod
    def _no_result(endings: list[str]) -> str:
        why = "; ".join(endings) if endings else "no batch job answered it"
        return f"No result: {why}. Run the cell again to send the missing items."
