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
from pathlib import Path
from typing import Any

from ..api.protocol import Completion

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
    return hashlib.sha256(blob.encode()).hexdigest()


class ReplyCache:
    """Thread-safe; each ``put`` is committed at once, so an interrupted run keeps its answers."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory or default_cache_dir()
        self.path = self.directory / "replies.sqlite3"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
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
            self._db = db
        return self._db

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = (
                self._connection()
                .execute("SELECT text, finish_reason, usage, model, content FROM replies WHERE key = ?", (key,))
                .fetchone()
            )
        if row is None:
            return None
        text, finish_reason, usage, model, content = row
        return Completion(
            text, finish_reason, json.loads(usage) if usage else None, model, json.loads(content) if content else None
        )

    def put(self, key: str, completion: Completion) -> None:
        usage = json.dumps(completion.usage) if completion.usage else None
        content = json.dumps(completion.content, ensure_ascii=False) if completion.content else None
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO replies (key, text, finish_reason, usage, model, created, content) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, completion.text, completion.finish_reason, usage, completion.model, time.time(), content),
            )

    def __len__(self) -> int:
        with self._lock:
            count: int = self._connection().execute("SELECT COUNT(*) FROM replies").fetchone()[0]
        return count

    def clear(self) -> int:
        """Forget every reply; returns how many there were."""
        with self._lock:
            db = self._connection()
            count: int = db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]
            db.execute("DELETE FROM replies")
        return count

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
