"""The renderer interface: the client feeds text and never knows what shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ReplyInfo:
    """What a renderer may show about the request being answered."""

    model: str
    chat: str


class Renderer(Protocol):
    """Shows one reply: ``start``, then ``think`` and ``feed`` per delta, then ``finish`` or ``fail``."""

    def start(self, info: ReplyInfo) -> None:
        """The request is about to be sent."""

    def notice(self, message: str) -> None:
        """A transient status, such as a retry after a rate limit."""

    def think(self, text: str) -> None:
        """More thinking arrived (reasoning models); it comes before the answer's first text and
        is shown apart from the answer."""

    def feed(self, text: str) -> None:
        """More reply text arrived."""

    def finish(self, text: str, *, finish_reason: str | None, usage: dict[str, Any] | None) -> None:
        """The reply ended normally; replace the live view by the static display."""

    def fail(self, text: str, error: BaseException, *, interrupted: bool = False) -> None:
        """The reply failed or was interrupted; ``text`` is what arrived and must stay visible."""
