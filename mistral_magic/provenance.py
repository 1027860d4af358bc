"""Where an answer came from: what was asked, who answered, how, and when.

Every answer's saved output carries its :class:`Provenance` in the output metadata under
:data:`METADATA_KEY`, so it survives save, reload and ``nbconvert``; ``%mistral history`` and the
reply's footer read it, and replay (:mod:`.replay`) finds a cell's saved answer by its
:attr:`Provenance.request_hash`. It never holds the key: the server is named by its host alone.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

from .textsafe import encodable
from .usage import TokenUsage

METADATA_KEY = "mistral_magic"
SOURCES = ("live", "cache", "replay")


def request_hash(body: dict[str, Any]) -> str:
    """A stable hash of what determines an answer: model, messages and options (not ``stream``,
    nor the server, so a lesson recorded against one server replays with another configured)."""
    relevant = {key: value for key, value in body.items() if key != "stream"}
    blob = json.dumps(relevant, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encodable(blob).encode()).hexdigest()


def server_host(base_url: str) -> str:
    """``host[:port]`` of a base URL: no scheme, path, query or user information (never a secret)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def now_iso() -> str:
    """The current time in UTC, ISO 8601, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Stopwatch:
    """Times one answer: from the request to its first token, and to its end."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._started = clock()
        self.first_token_s: float | None = None

    def arrived(self) -> None:
        """Something of the answer arrived (only the first call counts)."""
        if self.first_token_s is None:
            self.first_token_s = round(self._clock() - self._started, 3)

    def total_s(self) -> float:
        return round(self._clock() - self._started, 3)


@dataclass(frozen=True)
class Provenance:
    """One answer's record. ``options`` are the sampling fields sent; ``content`` and ``reply_chars``
    let replay rebuild the answer exactly (``content`` only for an answer with thinking parts)."""

    source: str  # live, cache or replay
    model_asked: str
    model_answered: str | None
    server: str
    request_hash: str
    asked_at: str
    chat: str = "default"
    options: dict[str, Any] | None = None
    seed: int | None = None
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    first_token_s: float | None = None
    total_s: float | None = None
    reply_chars: int = 0
    content: list[dict[str, Any]] | None = None

    def as_source(self, source: str) -> Provenance:
        """The same record, served again from ``source`` (cache or replay)."""
        return replace(self, source=source)

    def to_dict(self) -> dict[str, Any]:
        """As JSON-able data; empty fields are left out."""
        data = {key: value for key, value in asdict(replace(self, usage=None)).items() if value is not None}
        if self.usage is not None:
            data["usage"] = self.usage.to_dict()
        return data

    def metadata(self) -> dict[str, Any]:
        """The output metadata of the answer's display."""
        return {METADATA_KEY: self.to_dict()}

    @classmethod
    def from_dict(cls, data: Any) -> Provenance | None:
        """A record read back from a notebook or a chat file (``None`` if it is not one)."""
        if not isinstance(data, dict):
            return None
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        required = ("source", "model_asked", "request_hash", "asked_at", "server")
        if not all(isinstance(values.get(name), str) for name in required) or values["source"] not in SOURCES:
            return None
        values.setdefault("model_answered", None)
        values["usage"] = TokenUsage.of(values.get("usage"))
        if not isinstance(values.get("reply_chars", 0), int):
            return None
        content = values.get("content")
        if content is not None and not (isinstance(content, list) and all(isinstance(p, dict) for p in content)):
            return None
        return cls(**values)

    def footer(self) -> str:
        """``model · finish reason · tokens · time``, and whether it was cached or replayed. The model
        named is the one that answered; the one asked for follows when it is another."""
        answered = self.model_answered or self.model_asked
        model = answered if answered == self.model_asked else f"{answered} (asked: {self.model_asked})"
        parts = [model, self.finish_reason or ""]
        if self.usage is not None:
            parts.append(f"{self.usage.prompt_tokens} prompt + {self.usage.completion_tokens} completion tokens")
        if self.total_s is not None:
            parts.append(f"{self.total_s:.1f} s")
        if self.source != "live":
            parts.append("from the cache" if self.source == "cache" else "replayed")
        return " · ".join(part for part in parts if part)
