"""Which batch jobs answer a run's requests: the pending claims of the job list (:mod:`.batchstore`)
that carry them, each worked out to a job id; and new claims, each submitted as one job.

A claim without a job id is settled here: while its run is submitting it (its lock held), it is
waited for; a claim whose creation request never went out is released; otherwise the server's
jobs are listed for the one whose ``mistral_magic_run`` metadata names the claim. Found, it is
the claim's job; not found ``grace`` seconds after its creation was sent (the server may still be
creating it), the claim is released and its requests are sent again.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import ApiError, BatchCreationLost, BatchWaitInterrupted, MistralMagicError, UsageError
from .batchstore import SUBMITTING, BatchJobStore, JobRecord

if TYPE_CHECKING:  # httpx, under the client, is imported on first use
    from ..api.batchjobs import BatchJobs

RUN_KEY = "mistral_magic_run"  # the job metadata naming its claim
LOOKBACK = 3600.0  # seconds looked back past a claim's time when listing jobs: the server's clock may differ


@dataclass
class Covered:
    """The pending jobs answering some of a run's requests."""

    claims: dict[str, JobRecord]  # by run: each has its job id
    keys: set[str]  # the requests they answer
    settling: set[str]  # requests whose job another run is creating, or whose creation is being looked up


class JobClaims:
    """The claims of one server and model."""

    def __init__(
        self, jobs: BatchJobs, store: BatchJobStore, *, base_url: str, model: str, timeout_hours: int, grace: float
    ):
        self.jobs = jobs
        self.store = store
        self.base_url = base_url
        self.model = model
        self.timeout_hours = timeout_hours
        self.grace = grace

    def covering(self, keys: Sequence[str]) -> Covered:
        """The jobs answering ``keys``, claims without a job settled as far as they can be now."""
        while True:
            claims, runs = self.store.covering(keys)
            unsettled = [claim for claim in claims.values() if claim.job_id is None]
            if not any([self._settle(claim) for claim in unsettled]):
                break  # nothing changed: what is left waits for its run, or for the server
        waiting = {claim.run for claim in unsettled}
        return Covered(
            {run: claim for run, claim in claims.items() if run not in waiting},
            {key for key, run in runs.items() if run not in waiting},
            {key for key, run in runs.items() if run in waiting},
        )

    def _settle(self, claim: JobRecord) -> bool:
        """Work out the job of a claim that has none; whether the claim changed."""
        if claim.state == SUBMITTING and self.store.being_submitted(claim.run):
            return False
        left = self.store.get(claim.run)  # as its run left it (read again: that run may just have ended)
        if left is None or left.job_id is not None:
            return True
        if left.creating is None:  # its run ended before sending the creation: no job exists
            self.store.release(left.run)
            return True
        job = self.jobs.find({RUN_KEY: left.run}, since=left.created - LOOKBACK)
        if job is not None:
            self.store.created(left.run, job.id)
            return True
        if time.time() - left.creating < self.grace:
            return False
        self.store.release(left.run)
        return True

    def submit(self, path: str, keys: Sequence[str], made: list[str]) -> JobRecord | None:
        """Claim ``keys`` and submit the file at ``path`` (removed here) as their job; None when
        another run claimed one of them first. ``made``: the jobs this run created before (for
        the messages)."""
        run = uuid.uuid4().hex
        try:
            with self.store.hold(run):
                if not self.store.claim(run, keys, self.base_url, self.model):
                    return None
                try:
                    uploaded = self.jobs.upload(path, filename="mistral-magic-batch.jsonl")
                except BaseException:
                    self.store.release(run)
                    raise
                self._create(run, uploaded.id, len(keys), made)
        except KeyboardInterrupt:
            raise BatchWaitInterrupted(made, stage="sending") from None
        finally:
            os.unlink(path)
        record = self.store.get(run)
        assert record is not None
        return record

    def _create(self, run: str, file_id: str, count: int, made: list[str]) -> None:
        """Create and record the job of claim ``run``: sent once; only a refusal (4xx) means there is none."""
        self.store.creating(run)
        metadata = {RUN_KEY: run, "requests": str(count)}
        try:
            job = self.jobs.create([file_id], self.model, metadata, self.timeout_hours)
        except (ApiError, UsageError) as refused:
            if isinstance(refused, UsageError) or refused.status < 500:  # refused: no job was created
                self.store.release(run)
                raise
            self.store.unknown(run)
            raise BatchCreationLost(str(refused), made) from None
        except MistralMagicError as lost:
            self.store.unknown(run)
            raise BatchCreationLost(str(lost), made) from None
        except KeyboardInterrupt:
            self.store.unknown(run)
            raise BatchWaitInterrupted(made, stage="creating") from None
        self.store.created(run, job.id)


@dataclass
class Cover:
    """The jobs answering a run's missing requests."""

    claims: dict[str, JobRecord] = field(default_factory=dict)  # by run
    earlier: set[str] = field(default_factory=set)  # the requests answered by jobs of earlier runs
    new: list[str] = field(default_factory=list)  # the jobs this run created
    sent: int = 0  # the requests in them
    settling: int = 0  # requests in jobs other runs are still creating (without waiting only)

    @property
    def job_ids(self) -> list[str]:
        return [claim.job_id for claim in self.claims.values() if claim.job_id is not None]
