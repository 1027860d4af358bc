"""Named conversations, per kernel: each chat holds its system prompt and its turns."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .api.content import sendable, split_content
from .cells import cell_label
from .chatfile import check_fields, write_atomically
from .errors import UsageError, hint
from .images.attachment import Attachment
from .provenance import Provenance
from .usage import ChatUsage, TokenUsage

FORMAT = "mistral-magic/chats"
FORMAT_VERSION = 2  # 2: turns know their cell and carry their provenance (version 1 files still load)


@dataclass
class Turn:
    """One exchange: what the user asked and what came back. ``assistant`` is the answer's text;
    ``content``, when set, the whole assistant content as the API gave it (a reasoning model's
    thinking parts and text), which is what later requests send back."""

    user: str
    assistant: str
    model: str | None = None
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    interrupted: bool = False
    content: list | None = None
    images: list[Attachment] | None = None  # the turn's images (--image), sent again with its question
    cell_id: str | None = None  # the notebook cell that asked (its frontend id), when the frontend said
    execution_count: int | None = None  # the cell's In [n]
    provenance: Provenance | None = None
    run: str | None = field(default=None, compare=False, repr=False)  # which execution of the cell (not saved)

    @property
    def thinking(self) -> str:
        """What a reasoning model thought before this answer ("" otherwise)."""
        return split_content(self.content)[0]

    @property
    def cell(self) -> str:
        """Where the turn came from, as the notebook shows it: ``In [7]`` ("" when not known)."""
        return cell_label(self.execution_count) if self.cell_id or self.execution_count is not None else ""


@dataclass(frozen=True)
class ChatState:
    """A chat's turns, left turns and system prompt at one moment, for undo."""

    turns: list[Turn]
    left: list[Turn]
    system: str | None


@dataclass(frozen=True)
class Replaced:
    """What a re-run of a cell replaced: that cell's earlier turn, and the turns of later cells that
    left the chat with it (their answers were based on the old version)."""

    turn: Turn
    left: list[Turn]


@dataclass
class Chat:
    """A named conversation; its messages are rebuilt from the turns for each request."""

    name: str
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)
    left: list[Turn] = field(default_factory=list)  # turns that left on a re-run, until their cells run again
    undo_point: ChatState | None = field(default=None, repr=False)  # the chat before a re-run or --new

    def earlier_run(self, cell_id: str | None, run: str | None) -> int | None:
        """Where the turns of an earlier execution of cell ``cell_id`` begin (``None``: it has none here)."""
        if cell_id is None:
            return None
        return next((i for i, t in enumerate(self.turns) if t.cell_id == cell_id and t.run != run), None)

    def history_for(self, cell_id: str | None, run: str | None, *, replace: bool) -> list[Turn]:
        """The turns a request of this cell builds on: with ``replace``, those before its earlier turn."""
        point = self.earlier_run(cell_id, run) if replace else None
        return self.turns if point is None else self.turns[:point]

    def record(self, turn: Turn, *, replace: bool, afresh: bool = False, system: str | None = None) -> Replaced | None:
        """Add ``turn``. With ``afresh`` (``--new``) the chat starts over with ``system``; with ``replace``
        a re-run cell takes its earlier turn's place and the turns after it leave (see :class:`Replaced`).
        Either can be undone with :meth:`restore`; a plain turn with :meth:`undo`."""
        point = self.earlier_run(turn.cell_id, turn.run) if replace and not afresh else None
        undoable = afresh or point is not None  # a plain turn is undone by undo(): no copy kept
        before = ChatState(list(self.turns), list(self.left), self.system) if undoable else None
        if turn.cell_id is not None:  # its cell ran again: it is back, no longer among the left
            self.left = [t for t in self.left if t.cell_id != turn.cell_id]
        if afresh:
            self.turns, self.left, self.system = [], [], system
        elif system is not None:
            self.system = system
        replaced = None
        if point is not None:
            removed = self.turns[point:]
            gone = [t for t in removed if t.cell_id != turn.cell_id]
            cells = {t.cell_id for t in gone}
            self.left = [*(t for t in self.left if t.cell_id not in cells), *gone]
            self.turns = self.turns[:point]
            replaced = Replaced(removed[0], gone)
        self.turns.append(turn)
        self.undo_point = before
        return replaced

    def restore(self) -> ChatState | None:
        """Undo a re-run or ``--new``: the chat as it was before (``None`` if the last change was neither)."""
        state, self.undo_point = self.undo_point, None
        if state is not None:
            self.turns, self.left, self.system = list(state.turns), list(state.left), state.system
        return state

    def undo(self) -> Turn | None:
        """Drop the last turn and return it (``None`` if there was none)."""
        self.undo_point = None
        return self.turns.pop() if self.turns else None

    def reset(self, system: str | None = None) -> None:
        """Forget every turn; the system prompt becomes ``system``."""
        self.turns.clear()
        self.left.clear()
        self.undo_point = None
        self.system = system


def user_content(text: str, images: Sequence[Attachment] | None) -> str | list[dict]:
    """A user message's content: the text, or with images a text part then one ``image_url`` part each."""
    if not images:
        return text
    return [{"type": "text", "text": text}, *(image.part() for image in images)]


def build_messages(
    system: str | None,
    turns: list[Turn],
    prompt: str,
    max_turns: int = 0,
    *,
    thinking: bool = True,
    images: Sequence[Attachment] | None = None,
) -> list[dict]:
    """The messages of a request: system prompt, past turns (the last ``max_turns`` when that is
    > 0), then ``prompt``. The system prompt is never dropped. A reasoning model's turn goes back
    whole, thinking parts included, unless ``thinking`` is false (the answer's text alone, for a
    server that knows no thinking parts). Each turn's images are sent again with its question."""
    messages: list[dict] = [{"role": "system", "content": system}] if system else []
    for turn in turns[-max_turns:] if max_turns > 0 else turns:
        messages.append({"role": "user", "content": user_content(turn.user, turn.images)})
        content = turn.content if thinking and turn.content and sendable(turn.content) else turn.assistant
        messages.append({"role": "assistant", "content": content})
    messages.append({"role": "user", "content": user_content(prompt, images)})
    return messages


class ChatStore:
    """Every chat of this kernel, by name, and the token usage of each."""

    def __init__(self) -> None:
        self.chats: dict[str, Chat] = {}
        self.usage: dict[str, ChatUsage] = {}

    def get(self, name: str) -> Chat:
        """The chat called ``name``, created empty on first use."""
        chat = self.chats.get(name)
        if chat is None:
            chat = self.chats[name] = Chat(name)
        return chat

    def record_usage(self, name: str, usage: TokenUsage | None) -> None:
        self.usage.setdefault(name, ChatUsage()).add(usage)

    def reset_all(self) -> None:
        self.chats.clear()

    def save(self, path: str | os.PathLike, names: list[str] | None = None) -> Path:
        """Write chats as JSON, atomically (see :func:`chatfile.write_atomically`)."""
        chosen = [self.chats[n] for n in (names or list(self.chats)) if n in self.chats]
        document = {"format": FORMAT, "version": FORMAT_VERSION, "chats": [_chat_to_dict(c) for c in chosen]}
        return write_atomically(path, json.dumps(document, ensure_ascii=False, indent=1))

    def load(self, path: str | os.PathLike) -> list[str]:
        """Read chats saved by :meth:`save`, replacing chats of the same names; returns the names."""
        source = Path(path).expanduser()
        try:
            document = json.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"No such file: {source}.") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"Cannot read {source}: {exc}.") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise UsageError(f"{source} is not a chat file {hint('chat_file')}.")
        version = document.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
            raise UsageError(f"{source} has chat-file version {version!r}; this version reads {FORMAT_VERSION}.")
        items = document.get("chats", [])
        if not isinstance(items, list):
            raise UsageError(f"{source} is malformed: 'chats' is not a list.")
        try:
            loaded = [_chat_from_dict(item, number) for number, item in enumerate(items, 1)]
        except UsageError as exc:
            raise UsageError(f"{source} is malformed, nothing was loaded: {exc}") from None
        for chat in loaded:  # only once every chat is valid: a bad file changes nothing
            self.chats[chat.name] = chat
        return [chat.name for chat in loaded]


def _chat_to_dict(chat: Chat) -> dict:
    """A chat as JSON (its turns, not the left ones or the undo point); a turn's empty optional
    fields are left out, so a turn without them is written as before they existed."""
    return {"name": chat.name, "system": chat.system, "turns": [_turn_to_dict(turn) for turn in chat.turns]}


def _turn_to_dict(turn: Turn) -> dict:
    item = asdict(replace(turn, images=None, provenance=None, usage=None))
    del item["run"]  # meaningful only in the kernel that ran the cell
    item["usage"] = turn.usage.to_dict() if turn.usage is not None else None
    item["images"] = [image.to_dict() for image in turn.images] if turn.images else None
    item["provenance"] = turn.provenance.to_dict() if turn.provenance is not None else None
    for name in ("content", "images", "cell_id", "execution_count", "provenance"):
        if item[name] is None:
            del item[name]
    return item


def _chat_from_dict(item: Any, number: int) -> Chat:
    fields = check_fields(Chat, item, f"chat {number}")
    if "left" in fields or "undo_point" in fields:
        raise UsageError(f"chat {number} has an unknown field {'left' if 'left' in fields else 'undo_point'!r}.")
    where = f"chat {fields['name']!r}"
    turns = []
    for index, data in enumerate(fields.get("turns", []), 1):
        turn = _turn_from_dict(data, f"turn {index} of {where}")
        if turn.content is not None and not all(isinstance(part, dict) for part in turn.content):
            raise UsageError(f"turn {index} of {where}: 'content' must be a list of parts (objects).")
        if turn.images is not None:
            turn.images = [_checked_image(image, f"turn {index} of {where}") for image in turn.images]
        turns.append(turn)
    return Chat(name=fields["name"], system=fields.get("system"), turns=turns)


def _turn_from_dict(data: Any, where: str) -> Turn:
    """A saved turn; its provenance, when there is one, must be a record :class:`Provenance` reads."""
    saved = data.get("provenance") if isinstance(data, dict) else None
    usage = data.get("usage") if isinstance(data, dict) else None
    if isinstance(data, dict):
        data = {key: value for key, value in data.items() if key not in ("provenance", "usage")}
    if usage is not None and not isinstance(usage, dict):
        raise UsageError(f"{where}: 'usage' is {type(usage).__name__}, not an object.")
    fields = check_fields(Turn, data, where)
    if "run" in fields:
        raise UsageError(f"{where} has an unknown field 'run'.")
    provenance = Provenance.from_dict(saved) if saved is not None else None
    if saved is not None and provenance is None:
        raise UsageError(f"{where}: 'provenance' is not a provenance record.")
    return Turn(**fields, provenance=provenance, usage=TokenUsage.of(usage))


def _checked_image(item: Any, where: str) -> Attachment:
    """An image of a loaded turn, decoded and checked against its sha256."""
    if not isinstance(item, dict):
        raise UsageError(f"{where}: an image is {type(item).__name__}, not an object.")
    try:
        return Attachment.from_dict(item)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def rerun_notice(replaced: Replaced, chat: str) -> str:
    """One line: which turns left the chat when a cell ran again, and how to bring them back."""
    cells = ", ".join(dict.fromkeys(turn.cell or "a turn without a cell" for turn in replaced.left))
    earlier = replaced.turn.cell or "a turn without a cell"
    return (
        f"{cells} left chat '{chat}': they built on this cell's earlier run ({earlier}). "
        f"Run them again to bring them back; {hint('undo')}."
    )
