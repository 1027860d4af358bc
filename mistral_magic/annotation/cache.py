"""A persistent cache of replies: every answer paid for is kept, so a re-run sends only what is
missing. SQLite in a cache directory; keyed by a hash of the server, model, messages and
parameters (never the key)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..api.protocol import Completion
from ..errors import UsageError, hint
from ..textsafe import encodable
from ..usage import TokenUsage
from .jsonmode import is_usable

CACHE_DIR_ENV = "MISTRAL_MAGIC_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$MISTRAL_MAGIC_CACHE_DIR``, else ``$XDG_CACHE_HOME/mistral-magic``, else ``~/.cache/mistral-magic``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mistral-magic"


def cache_key(base_url: str, body: dict[str, Any]) -> str:
    """A stable hash of what determines a reply: server, model, messages and parameters."""
    relevant = {k: v for k, v in body.items() if k != "stream"}
    blob = json.dumps({"base_url": base_url.rstrip("/"), "body": relevant}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(encodable(blob).encode()).hexdigest()


def _row(key: str, completion: Completion) -> tuple[object, ...]:
    usage = json.dumps(completion.usage.to_dict()) if completion.usage else None
    content = encodable(json.dumps(completion.content, ensure_ascii=False)) if completion.content else None
    model = encodable(completion.model) if completion.model else None
    return (key, encodable(completion.text), completion.finish_reason, usage, model, time.time(), content)


class ReplyCache:
    """Thread-safe; each ``put`` is committed at once, so an interrupted run keeps its answers.

    When the file cannot be used (locked by another process for longer than ``busy_timeout``,
    corrupt, or its folder cannot be created), answers are kept in memory for the rest of the
    session instead, and :meth:`take_warning` gives one line about it, once.
    """

    busy_timeout = 30.0  # seconds a write waits for another process's lock

    def __init__(self, directory: Path | None = None):
        self.directory = directory or default_cache_dir()
        self.path = self.directory / "replies.sqlite3"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._memory: dict[str, Completion] = {}
        self.problem: str | None = None  # why the file cannot be used, once it failed
        self._corrupt = False
        self._warned = False

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=self.busy_timeout)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives a crash of the kernel
                db.execute(
                    "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
                    "finish_reason TEXT, usage TEXT, model TEXT, created REAL NOT NULL, content TEXT)"
                )
                columns = {row[1] for row in db.execute("PRAGMA table_info(replies)")}
                if "content" not in columns:  # a cache written before thinking parts were kept
                    try:
                        db.execute("ALTER TABLE replies ADD COLUMN content TEXT")
                    except sqlite3.OperationalError:  # another kernel added it meanwhile
                        pass
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _on_disk(self, action: Callable[[sqlite3.Connection], Any]) -> tuple[bool, Any]:
        """``(True, result)`` of ``action`` on the database, or ``(False, None)`` when the file
        cannot be used (then or before): the caller falls back to memory. Call with the lock held."""
        if self.problem is not None:
            return False, None
        try:
            return True, action(self._connection())
        except (sqlite3.Error, OSError) as exc:
            self._fail(exc)
            return False, None

    def _fail(self, exc: Exception) -> None:
        self.problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self._corrupt = isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)
        self._close_db()

    def take_warning(self) -> str | None:
        """One line saying the cache file failed and answers are kept in memory; only the first time."""
        if self.problem is None or self._warned:
            return None
        self._warned = True
        return (
            f"Warning: the reply cache {self.path} cannot be used ({self.problem}); answers are kept in memory "
            f"until the kernel restarts. {hint('cache_clear')}."
        )

    def get(self, key: str) -> Completion | None:
        with self._lock:
            _, row = self._on_disk(
                lambda db: db.execute(
                    "SELECT text, finish_reason, usage, model, content FROM replies WHERE key = ?", (key,)
                ).fetchone()
            )
            if row is None:
                return self._memory.get(key)
        text, finish_reason, usage, model, content = row
        return Completion(
            text,
            finish_reason,
            TokenUsage.of(json.loads(usage)) if usage else None,
            model,
            json.loads(content) if content else None,
        )

    def get_usable(self, key: str, json: bool, rule: Callable[[str], bool] | None = None) -> Completion | None:
        """The stored reply for ``key`` if it may be served again (see :func:`.jsonmode.is_usable`), else ``None``."""
        hit = self.get(key)
        return hit if hit is not None and is_usable(hit.text, json, rule) else None

    def put(self, key: str, completion: Completion) -> None:
        self.put_many([(key, completion)])

    def put_many(self, answers: list[tuple[str, Completion]]) -> None:
        """Store several answers in one transaction (a batch job's results)."""
        if not answers:
            return
        rows = [_row(key, completion) for key, completion in answers]

        def insert(db: sqlite3.Connection) -> None:
            sql = (
                "INSERT OR REPLACE INTO replies (key, text, finish_reason, usage, model, created, content) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)"
            )
            if len(rows) == 1:
                db.execute(sql, rows[0])
                return
            db.execute("BEGIN")
            try:
                db.executemany(sql, rows)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

        with self._lock:
            ok, _ = self._on_disk(insert)
            if not ok:
                self._memory.update(answers)

    def __len__(self) -> int:
        with self._lock:
            ok, count = self._on_disk(lambda db: db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])
            return (int(count) if ok else 0) + len(self._memory)

    def clear(self) -> int:
        """Forget every reply; returns how many there were. A corrupt file is removed (and a new
        one made on next use); a cache that cannot be used for another reason is one UsageError."""
        with self._lock:
            count = len(self._memory)
            self._memory.clear()

            def delete_all(db: sqlite3.Connection) -> int:
                rows: int = db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]
                db.execute("DELETE FROM replies")
                return rows

            ok, rows = self._on_disk(delete_all)
            if ok:
                return count + int(rows)
            if not self._corrupt:
                raise UsageError(
                    f"Cannot empty the reply cache {self.path}: {self.problem}; it is not a broken file that "
                    f"could be removed: close the other program using it, or set {CACHE_DIR_ENV} to another folder."
                )
            try:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            except OSError as exc:
                raise UsageError(f"Cannot remove the broken reply cache {self.path}: {exc.strerror or exc}.") from None
            self.problem, self._corrupt, self._warned = None, False, False
            return count

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def close(self) -> None:
        with self._lock:
            self._close_db()
