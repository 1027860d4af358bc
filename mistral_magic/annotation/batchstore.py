"""The batch jobs a reply cache knows of: a ``batch_jobs`` table in the cache's SQLite file, so a
re-run (after an interrupt, a kernel restart or days later) finds its job instead of submitting
another one. A job is written before anyone waits for it."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS batch_jobs (job_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
    "base_url TEXT NOT NULL, model TEXT NOT NULL, items INTEGER NOT NULL, created REAL NOT NULL, "
    "collected INTEGER NOT NULL DEFAULT 0, status TEXT)"
)


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    fingerprint: str
    base_url: str
    model: str
    items: int
    created: float
    collected: bool
    status: str | None


class BatchJobStore:
    """Thread-safe; each write is committed at once (WAL, like the reply cache in the same file)."""

    busy_timeout = 30.0

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _run(self, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                if self._db is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    db = sqlite3.connect(
                        self.path, check_same_thread=False, isolation_level=None, timeout=self.busy_timeout
                    )
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute(SCHEMA)
                    self._db = db
                return self._db.execute(sql, parameters).fetchall()
            except (sqlite3.Error, OSError) as exc:
                raise UsageError(
                    f"The batch job list in {self.path} cannot be used ({exc}); set MISTRAL_MAGIC_CACHE_DIR "
                    "to a folder this kernel can write."
                ) from None

    def register(self, job_id: str, fingerprint: str, base_url: str, model: str, items: int) -> None:
        self._run(
            "INSERT INTO batch_jobs (job_id, fingerprint, base_url, model, items, created) VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, fingerprint, base_url, model, items, time.time()),
        )

    def pending(self, fingerprint: str) -> list[JobRecord]:
        """The run's jobs whose results were not collected yet, oldest first."""
        rows = self._run(
            "SELECT * FROM batch_jobs WHERE fingerprint = ? AND collected = 0 ORDER BY created", (fingerprint,)
        )
        return [_record(row) for row in rows]

    def collected(self, job_id: str, status: str) -> None:
        self._run("UPDATE batch_jobs SET collected = 1, status = ? WHERE job_id = ?", (status, job_id))

    def recent(self, limit: int = 50) -> list[JobRecord]:
        return [_record(row) for row in self._run("SELECT * FROM batch_jobs ORDER BY created DESC LIMIT ?", (limit,))]

    def find(self, job_id: str) -> JobRecord | None:
        rows = self._run("SELECT * FROM batch_jobs WHERE job_id = ?", (job_id,))
        return _record(rows[0]) if rows else None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _record(row: tuple[object, ...]) -> JobRecord:
    job_id, fingerprint, base_url, model, items, created, collected, status = row
    return JobRecord(
        str(job_id),
        str(fingerprint),
        str(base_url),
        str(model),
        int(items),  # type: ignore[call-overload]
        float(created),  # type: ignore[arg-type]
        bool(collected),
        None if status is None else str(status),
    )
