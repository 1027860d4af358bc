"""Replay: a cell answered from the answer saved in the notebook's own outputs.

A lesson is run once with the API and saved; in class, with no key or no network, each cell's
request is looked up by its hash (:func:`.provenance.request_hash`) among the saved answers'
provenance, and the saved answer is streamed again at the recorded pace. A cell that was edited,
or that follows an edited cell in its chat, asks something else: it has no saved answer.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .api.content import split_content
from .api.protocol import Completion
from .errors import ReplayMissError, UsageError, hint
from .provenance import METADATA_KEY, Provenance, request_hash
from .settings import Settings
from .usage import TokenUsage

SESSION_ENV = "JPY_SESSION_NAME"  # Jupyter Server: the notebook's path, in the kernel's environment
VSCODE_NAME = "__vsc_ipynb_file__"  # VS Code: the notebook's path, in the user namespace
UNFINISHED = (None, "interrupted", "error")  # answers that are not replayed
UPDATES_PER_SECOND = 30  # how often a paced replay feeds the view


@dataclass(frozen=True)
class Recording:
    """One saved answer: the completion to show again and its provenance."""

    completion: Completion
    provenance: Provenance


def find_notebook(user_ns: Mapping[str, Any], environ: Mapping[str, str], cwd: Path) -> Path | None:
    """The notebook this kernel runs, as its frontend tells the kernel, if it exists on disk."""
    named = user_ns.get(VSCODE_NAME)
    if isinstance(named, str) and Path(named).is_file():
        return Path(named)
    session = environ.get(SESSION_ENV, "")
    if not session.endswith(".ipynb"):
        return None
    path = Path(session)
    # Jupyter Server gives the path relative to its root; the kernel starts in the notebook's folder.
    for candidate in (path, cwd / path, cwd / path.name):
        if candidate.is_file():
            return candidate
    return None


def _text(value: Any) -> str:
    """A MIME value of a saved notebook: a string, or the list of lines nbformat writes."""
    return "".join(value) if isinstance(value, list) else value if isinstance(value, str) else ""


def recordings(notebook: Any) -> Iterator[tuple[str, Recording]]:
    """Every finished answer saved in a notebook document, by request hash."""
    cells = notebook.get("cells", []) if isinstance(notebook, dict) else []
    for cell in cells if isinstance(cells, list) else []:
        outputs = cell.get("outputs", []) if isinstance(cell, dict) else []
        for output in outputs if isinstance(outputs, list) else []:
            if not isinstance(output, dict) or not isinstance(output.get("metadata"), dict):
                continue
            provenance = Provenance.from_dict(output["metadata"].get(METADATA_KEY))
            if provenance is None or provenance.finish_reason in UNFINISHED:
                continue
            data = output.get("data")
            shown = _text(data.get("text/markdown")) if isinstance(data, dict) else ""
            if len(shown) < provenance.reply_chars:
                continue
            text = shown[: provenance.reply_chars]
            completion = Completion(
                text,
                finish_reason=provenance.finish_reason,
                usage=provenance.usage,
                model=provenance.model_answered,
                content=provenance.content,
            )
            yield provenance.request_hash, Recording(completion, provenance)


class ReplayBook:
    """The saved answers of one notebook file. Read when first asked, and read again when the file
    changed; an answer once read is kept, so a save that cleared outputs mid-lesson loses none."""

    def __init__(self, path: Path):
        self.path = path
        self._answers: dict[str, Recording] = {}
        self._read_at: tuple[float, int] | None = None

    def __len__(self) -> int:
        self.refresh()
        return len(self._answers)

    def refresh(self) -> None:
        """Read the file again if it changed since it was last read."""
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise UsageError(f"Cannot read the notebook {self.path} for replay: {exc.strerror or exc}.") from None
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._read_at:
            return
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"Cannot read the notebook {self.path} for replay: {exc}.") from None
        for key, recording in recordings(document):
            self._answers.setdefault(key, recording)
        self._read_at = stamp

    def find(self, key: str) -> Recording | None:
        """The saved answer to the request with hash ``key``, if the notebook holds one."""
        found = self._answers.get(key)
        if found is None:
            self.refresh()
            found = self._answers.get(key)
        return found


class Replays:
    """The notebooks replay reads, by path: this kernel's own notebook (``locate``, which the
    magics set) unless the ``replay_notebook`` setting names one."""

    def __init__(self) -> None:
        self.locate: Callable[[], Path | None] = lambda: None
        self._books: dict[Path, ReplayBook] = {}

    def book(self, settings: Settings) -> ReplayBook:
        """The saved answers of the notebook replay reads (read when first asked for; :meth:`ReplayBook.find`
        and ``len`` read it again when the file changed)."""
        path = Path(settings.replay_notebook).expanduser() if settings.replay_notebook else self.locate()
        if path is None:
            raise UsageError(
                f"Replay is on, but this kernel was not told which notebook it runs: name it with {hint('replay_notebook')}."
            )
        path = path.resolve()
        book = self._books.get(path)
        if book is None:
            book = ReplayBook(path)
            book.refresh()  # a file that cannot be read is refused now, and not kept
            self._books[path] = book
        return book

    def answer_for(self, body: dict[str, Any], settings: Settings) -> Recording | None:
        """With replay on, the answer saved in the notebook for this request (strict: or an error)."""
        if settings.replay == "off":
            return None
        book = self.book(settings)
        found = book.find(request_hash(body))
        if found is None and settings.replay == "strict":
            raise ReplayMissError(
                f"{book.path.name} holds no saved answer for this cell (it, or an earlier cell of its chat, "
                "changed since the notebook was saved); replay is strict, so nothing was sent."
            )
        return found


def _pieces(text: str) -> list[str]:
    """``text`` in word-sized pieces, as a stream would bring it."""
    return re.findall(r"\s*\S+|\s+", text)


class ReplayStream:
    """A saved answer streamed again, like a live reply: iterating gives the answer's text in pieces
    (thinking goes to ``on_think`` first), spread over the recorded time unless ``fast``."""

    def __init__(
        self,
        recording: Recording,
        on_think: Callable[[str], None],
        *,
        fast: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.recording = recording
        self._on_think = on_think
        self._fast = fast
        self._sleep = sleep
        self._parts: list[str] = []
        self._done = False

    @property
    def text(self) -> str:
        """The answer's text shown so far."""
        return "".join(self._parts)

    @property
    def usage(self) -> TokenUsage | None:
        return None  # a replay costs nothing

    def __iter__(self) -> Iterator[str]:
        completion, provenance = self.recording.completion, self.recording.provenance
        answer, thought = _pieces(completion.text), _pieces(split_content(completion.content)[0])
        first = provenance.first_token_s or 0.0
        streaming = max((provenance.total_s or 0.0) - first, 0.0)
        count = len(answer) + len(thought)
        per_piece = 0.0 if self._fast or not count else streaming / count
        size = max(1, math.ceil(count / max(1, int(streaming * UPDATES_PER_SECOND))))
        if not self._fast and first > 0:
            self._sleep(first)
        for chunk in self._paced(thought, size, per_piece):
            self._on_think(chunk)
        for chunk in self._paced(answer, size, per_piece):
            self._parts.append(chunk)
            yield chunk
        self._done = True

    def _paced(self, pieces: list[str], size: int, per_piece: float) -> Iterator[str]:
        """``pieces`` in chunks of ``size``, each followed by its share of the recorded time."""
        for start in range(0, len(pieces), size):
            chunk = pieces[start : start + size]
            yield "".join(chunk)
            if per_piece:
                self._sleep(per_piece * len(chunk))

    def completion(self) -> Completion:
        """The saved answer, or what was shown of it when interrupted."""
        if self._done:
            return self.recording.completion
        return replace(self.recording.completion, text=self.text, finish_reason=None, usage=None, content=None)
