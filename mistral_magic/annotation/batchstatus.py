"""How batch jobs go: when to look again, and in words what a progress bar and a summary say of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..api.protocol import Completion
from ..errors import ConnectionFailedError, RateLimitError, RequestTimeoutError, ServerError

if TYPE_CHECKING:  # httpx, under the client, is imported on first use
    from ..api.batchjobs import BatchJob, ResultTally

TRANSIENT = (RateLimitError, ServerError, ConnectionFailedError, RequestTimeoutError)  # a look to try again


@dataclass(frozen=True)
class PollSchedule:
    """Polite polling: ``first`` seconds, then each wait ``growth`` times longer, up to ``longest``.
    A look that fails (a 429 or 5xx after the client's retries; a lost connection) is skipped, and the
    next one waits at least what the server's ``Retry-After`` asked; ``patience`` failed looks in a row
    stop the wait, the jobs still running. A job whose creation answer was lost and that the job list
    does not show is taken as never created ``creation_grace`` seconds after its creation was sent."""

    first: float = 1.0
    growth: float = 1.5
    longest: float = 30.0
    patience: int = 5  # looks in a row that fail (after the client's own retries) before giving up waiting
    longest_asked: float = 600.0  # the longest Retry-After a failed look is allowed to make us wait
    creation_grace: float = 120.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * self.growth, self.longest)


def first_choice(choices: Sequence[Completion]) -> Completion | None:
    """A result's answer: its first choice."""
    return choices[0] if choices else None


def stage_of(jobs: Sequence[BatchJob]) -> str:
    """The jobs' statuses in a few words: ``batch running``, ``batch jobs: 2 running, 1 queued``."""
    statuses = [job.status.lower().replace("_", " ") for job in jobs]
    if len(statuses) == 1:
        return f"batch {statuses[0]}"
    return "batch jobs: " + ", ".join(f"{count} {status}" for status, count in Counter(statuses).items())


def running(job: BatchJob | None) -> bool:
    """Whether a job is known and not finished."""
    return job is not None and not job.terminal


def ending_of(job: BatchJob, tally: ResultTally) -> str:
    """How a finished job ended, with the result lines that could not be read."""
    ending = f"batch job {job.id} ended {job.status}" + (f" ({job.errors[0]})" if job.errors else "")
    if tally.too_long:
        ending += f", {tally.too_long} of its result lines too long to read"
    if tally.malformed > tally.too_long:
        ending += f", {tally.malformed - tally.too_long} of its result lines unreadable"
    return ending


def gone(job_id: str | None, results: bool = False) -> str:
    """Why a job's items have no result when the server no longer knows it (or its results)."""
    what = f"the results of batch job {job_id}" if results else f"batch job {job_id}"
    return f"the server no longer knows {what} (expired, deleted, or made with another workspace's key)"
