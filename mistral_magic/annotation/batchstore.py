"""The batch jobs a reply cache knows of, in its SQLite file, so that a re-run (after an interrupt, a
kernel restart, days later, or in another kernel sharing the cache) finds the job answering an item
instead of sending the item again.

A job starts as a *claim*: a row named by a fresh ``run`` (the ``mistral_magic_run`` metadata of its
job) and the cache keys of the requests it carries, written in one transaction that fails when a
pending claim covers one of them already. The claim is written before its file is uploaded; the job
id follows once the server answers its creation. ``state`` is where it is:

- ``submitting``: a run is uploading and creating it (see :mod:`.submitlock`);
- ``unknown``: its creation was sent but the answer never came (lost, interrupted): the job may exist;
- ``running``: the job is known and its results are not collected yet;
- ``ended``: collected, or the server no longer knows the job (``status`` says which).

A claim that cannot have a job (its upload failed, its creation was refused) is removed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from .submitlock import SubmitLock, submitting

SUBMITTING, UNKNOWN, RUNNING, ENDED = "submitting", "unknown", "running", "ended"
GONE = "GONE"  # the status of an ended job the server no longer knows
JOB_STATES = {SUBMITTING: "being created", UNKNOWN: "creation answer lost", RUNNING: "running", ENDED: "ended"}
CHUNK = 500  # keys per query (SQLite takes a bounded number of parameters)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS batch_claims (run TEXT PRIMARY KEY, job_id TEXT UNIQUE, base_url TEXT NOT NULL, "
    "model TEXT NOT NULL, items INTEGER NOT NULL, created REAL NOT NULL, state TEXT NOT NULL, status TEXT, "
    "creating REAL, fingerprint TEXT)",
    "CREATE TABLE IF NOT EXISTS batch_claim_keys (run TEXT NOT NULL, key TEXT NOT NULL, "
    "counted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run, key))",
    "CREATE INDEX IF NOT EXISTS batch_claim_keys_by_key ON batch_claim_keys (key)",
)
# The job list of earlier versions (one row per job, a run matched by a hash over all its items):
# its rows become claims without keys, still found by that hash (``fingerprint``).
LEGACY = (
    "INSERT OR IGNORE INTO batch_claims (run, job_id, base_url, model, items, created, state, status, fingerprint) "
    f"SELECT job_id, job_id, base_url, model, items, created, CASE collected WHEN 0 THEN '{RUNNING}' "
    f"ELSE '{ENDED}' END, status, fingerprint FROM batch_jobs"
)
COLUMNS = "c.run, c.job_id, c.base_url, c.model, c.items, c.created, c.state, c.status, c.creating"


@dataclass(frozen=True)
class JobRecord:
    """One claim: a job of this cache, or one being created."""

    run: str
    job_id: str | None
    base_url: str
    model: str
    items: int
    created: float
    state: str
    status: str | None
    creating: float | None  # when its creation request went out

    @property
    def collected(self) -> bool:
        return self.state == ENDED


class BatchJobStore:
    """Thread-safe; each write is committed at once (WAL, like the reply cache in the same file)."""

    busy_timeout = 30.0

    def __init__(self, path: Path):
        self.path = path
        self.locks = path.parent / "batch-submitting"  # the lock files of runs submitting a job
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @contextmanager
    def _connection(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """The open database, inside one transaction when ``write``; its errors in one line."""
        with self._lock:
            try:
                db = self._open()
                if not write:
                    yield db
                    return
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                raise _unusable(self.path, exc) from None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=self.busy_timeout)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in SCHEMA:
                    db.execute(statement)
                if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batch_jobs'").fetchall():
                    db.execute(LEGACY)
                    db.execute("DROP TABLE batch_jobs")
            except BaseException:
                db.execute("ROLLBACK")
                db.close()
                raise
            db.execute("COMMIT")
            self._db = db
        return self._db

    def _rows(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._connection() as db:
            return db.execute(sql, parameters).fetchall()

    # -- claims ---------------------------------------------------------------------------------

    def hold(self, run: str) -> SubmitLock:
        """The lock a run holds while it submits claim ``run``: take it before :meth:`claim`."""
        try:
            return SubmitLock(self.locks, run)
        except OSError as exc:
            raise _unusable(self.locks, exc) from None

    def being_submitted(self, run: str) -> bool:
        """A live run is still uploading or creating the job of claim ``run``."""
        return submitting(self.locks, run)

    def claim(self, run: str, keys: Sequence[str], base_url: str, model: str) -> bool:
        """Claim ``keys`` (distinct) for a new job, in one transaction; False, with nothing written,
        when a pending claim covers one of them already (another run got there first)."""
        with self._connection(write=True) as db:
            if _covered(db, keys):
                return False
            db.execute(
                "INSERT INTO batch_claims (run, base_url, model, items, created, state) VALUES (?, ?, ?, ?, ?, ?)",
                (run, base_url, model, len(keys), time.time(), SUBMITTING),
            )
            db.executemany("INSERT INTO batch_claim_keys (run, key) VALUES (?, ?)", ((run, key) for key in keys))
            return True

    def covering(self, keys: Iterable[str]) -> tuple[dict[str, JobRecord], dict[str, str]]:
        """The pending claims covering any of ``keys``, by run, and the run covering each such key."""
        claims: dict[str, JobRecord] = {}
        runs: dict[str, str] = {}
        with self._connection() as db:
            for key, *row in _covered(db, list(keys)):
                runs[str(key)] = str(row[0])
                claims.setdefault(str(row[0]), _record(row))
        return claims, runs

    def legacy(self, fingerprint: str) -> list[JobRecord]:
        """The pending jobs an earlier version registered for the run with this ``fingerprint``."""
        rows = self._rows(
            f"SELECT {COLUMNS} FROM batch_claims c WHERE fingerprint = ? AND state = ? ORDER BY created",
            (fingerprint, RUNNING),
        )
        return [_record(row) for row in rows]

    def creating(self, run: str) -> None:
        """The creation request of claim ``run`` goes out now: from here on, its job may exist."""
        self._rows("UPDATE batch_claims SET creating = ? WHERE run = ?", (time.time(), run))

    def created(self, run: str, job_id: str) -> None:
        """Claim ``run`` has its job (unless another run recorded it already)."""
        self._rows(
            "UPDATE batch_claims SET job_id = ?, state = ? WHERE run = ? AND job_id IS NULL", (job_id, RUNNING, run)
        )

    def unknown(self, run: str) -> None:
        """The answer to claim ``run``'s job creation never came."""
        self._rows("UPDATE batch_claims SET state = ? WHERE run = ? AND job_id IS NULL", (UNKNOWN, run))

    def release(self, run: str) -> None:
        """Claim ``run`` has no job: its keys are free to be sent again."""
        with self._connection(write=True) as db:
            if db.execute("DELETE FROM batch_claims WHERE run = ? AND job_id IS NULL", (run,)).rowcount:
                db.execute("DELETE FROM batch_claim_keys WHERE run = ?", (run,))

    def ended(self, run: str, status: str) -> None:
        """Claim ``run``'s job is done with: collected, or gone from the server."""
        with self._connection(write=True) as db:
            db.execute("UPDATE batch_claims SET state = ?, status = ? WHERE run = ?", (ENDED, status, run))
            db.execute("DELETE FROM batch_claim_keys WHERE run = ?", (run,))

    def keys_of(self, run: str) -> set[str]:
        """The cache keys claim ``run`` carries (empty for a job of an earlier version)."""
        return {str(key) for (key,) in self._rows("SELECT key FROM batch_claim_keys WHERE run = ?", (run,))}

    def counted(self, run: str) -> set[str]:
        """The keys of claim ``run`` whose results' usage was recorded already."""
        rows = self._rows("SELECT key FROM batch_claim_keys WHERE run = ? AND counted = 1", (run,))
        return {str(key) for (key,) in rows}

    def count(self, run: str, keys: Sequence[str]) -> None:
        """Note that the usage of these results of claim ``run`` is recorded."""
        if keys:
            with self._connection(write=True) as db:
                db.executemany(
                    "UPDATE batch_claim_keys SET counted = 1 WHERE run = ? AND key = ?", ((run, key) for key in keys)
                )

    def get(self, run: str) -> JobRecord | None:
        rows = self._rows(f"SELECT {COLUMNS} FROM batch_claims c WHERE run = ?", (run,))
        return _record(rows[0]) if rows else None

    def find(self, job_id: str) -> JobRecord | None:
        rows = self._rows(f"SELECT {COLUMNS} FROM batch_claims c WHERE job_id = ?", (job_id,))
        return _record(rows[0]) if rows else None

    def recent(self, limit: int = 50) -> list[JobRecord]:
        rows = self._rows(f"SELECT {COLUMNS} FROM batch_claims c ORDER BY created DESC LIMIT ?", (limit,))
        return [_record(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _unusable(where: Path, exc: Exception) -> UsageError:
    return UsageError(
        f"The batch job list in {where} cannot be used ({exc}); set MISTRAL_MAGIC_CACHE_DIR to a folder this "
        "kernel can write."
    )


def _covered(db: sqlite3.Connection, keys: Sequence[str]) -> list[tuple[object, ...]]:
    """(key, claim columns...) for every key of ``keys`` a pending claim carries."""
    rows: list[tuple[object, ...]] = []
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        rows += db.execute(
            f"SELECT k.key, {COLUMNS} FROM batch_claim_keys k JOIN batch_claims c ON c.run = k.run "
            f"WHERE c.state != ? AND k.key IN ({', '.join('?' * len(chunk))})",
            (ENDED, *chunk),
        ).fetchall()
    return rows


def _record(row: Sequence[object]) -> JobRecord:
    run, job_id, base_url, model, items, created, state, status, creating = row
    return JobRecord(
        str(run),
        None if job_id is None else str(job_id),
        str(base_url),
        str(model),
        int(items),  # type: ignore[call-overload]
        float(created),  # type: ignore[arg-type]
        str(state),
        None if status is None else str(status),
        None if creating is None else float(creating),  # type: ignore[arg-type]
    )
