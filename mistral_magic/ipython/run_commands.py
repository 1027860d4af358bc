"""The ``%mistral`` subcommands about ``--each`` runs: errors, the batch jobs, the reply cache."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from ..errors import MistralMagicError, NotFoundError, UsageError
from ..render.tables import table_bundle
from .subcommands import Commands, shorten, subcommand

if TYPE_CHECKING:  # the session (and httpx under it) is imported on first use, not when the extension loads
    from ..api.batchjobs import BatchJobs


@subcommand("the items of the last --each run that have no answer")
def errors(commands: Commands, opts: argparse.Namespace) -> None:
    from ..annotation.trial import short

    run = commands.session.last_run
    if run is None:
        commands._say("No --each run yet.")
        return
    if not run.errors:
        commands._say(f"The last run has no errors ({run.summary()})")
        return
    rows = [(e.index, short(e.item, 40), e.error) for e in run.errors]
    commands.show(table_bundle(["index", "item", "error"], rows, title=f"{len(run.errors)} of {len(run)} items failed"))


@subcommand(
    "the batch jobs of this cache (--batch), or cancel one of them",
    lambda p: p.add_argument("action", nargs="?", choices=["list", "cancel"], default="list", metavar="cancel"),
    lambda p: p.add_argument("job_id", nargs="?", metavar="ID"),
    lambda p: p.add_argument("--force", action="store_true", help="cancel a job this cache did not send"),
)
def jobs(commands: Commands, opts: argparse.Namespace) -> None:
    from ..annotation.batchstore import GONE, JOB_STATES

    batch = commands.session.batch_jobs(commands.kernel_config.settings())
    if opts.action == "cancel":
        if not opts.job_id:
            raise UsageError("%mistral jobs cancel needs the job's ID (see %mistral jobs).")
        _cancel_job(commands, batch, opts.job_id, opts.force)
        return
    if opts.job_id or opts.force:
        raise UsageError("%mistral jobs lists the jobs; to cancel one: %mistral jobs cancel ID.")
    records = commands.session.job_store.recent()
    if not records:
        commands._say("No batch jobs in this cache yet (%%mistral --each NAME --batch submits one).")
        return
    rows = []
    for record in records:
        status, counts = record.status or JOB_STATES.get(record.state, "unknown"), ""
        if record.job_id is not None and record.status != GONE:
            try:
                job = batch.get(record.job_id)
                status, counts = job.status, f"{job.succeeded} done, {job.failed} failed of {job.total}"
            except MistralMagicError as exc:
                counts = shorten(str(exc), 60)
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created))
        collected = "yes" if record.collected else "no"
        rows.append((record.job_id or "–", status, counts, created, record.model, record.items, collected))
    headers = ["id", "status", "counts", "created", "model", "requests", "collected"]
    commands.show(table_bundle(headers, rows, title=f"Batch jobs of the reply cache {commands.session.cache.path}"))


def _cancel_job(commands: Commands, batch: BatchJobs, job_id: str, force: bool) -> None:
    """Cancel a job of this cache (another only with ``force``); a job the server no longer knows
    is marked ended, so that its cell sends its items again."""
    from ..annotation.batchstore import GONE

    store = commands.session.job_store
    record = store.find(job_id)
    if record is None and not force:
        raise UsageError(
            f"Batch job {job_id} is not one of this cache's jobs (%mistral jobs lists them): nothing was "
            f"cancelled. To cancel it anyway: %mistral jobs cancel {job_id} --force."
        )
    try:
        job = batch.cancel(job_id)
    except NotFoundError as missing:
        if record is None:
            raise
        batch.confirm_gone(missing)
        store.ended(record.run, GONE)
        commands._say(
            f"The server no longer knows batch job {job_id} (expired, deleted, or made with another "
            "workspace's key): it is marked ended here, and running its cell again sends its items again."
        )
        return
    if record is None:
        commands._say(f"Asked the server to cancel batch job {job.id}, not a job of this cache: now {job.status}.")
    else:
        commands._say(
            f"Asked the server to cancel batch job {job.id}: now {job.status}. What it finished stays "
            "collectable: running its cell again collects it and sends the rest."
        )


@subcommand(
    "where the reply cache is and how many answers it holds, or empty it",
    lambda p: p.add_argument("action", nargs="?", choices=["info", "clear"], default="info", metavar="clear"),
)
def cache(commands: Commands, opts: argparse.Namespace) -> None:
    cache = commands.session.cache
    if opts.action == "clear":
        commands._say(f"Emptied the reply cache ({cache.clear()} answers removed).")
        return
    count = len(cache)
    if cache.problem is not None:
        cache.take_warning()  # said here; no second warning under the next cell
        commands._say(
            f"The reply cache {cache.path} cannot be used ({cache.problem}); {count} answers are kept in memory. "
            "%mistral cache clear removes a broken cache file."
        )
    else:
        commands._say(f"The reply cache holds {count} answers in {cache.path}.")
