"""The renderer interface: the client feeds text and never knows what shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..provenance import Provenance


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

    def finish(self, text: str, provenance: Provenance) -> None:
        """The reply ended normally; replace the live view by the static display, which carries the
        reply's ``provenance`` (its footer, and the output's metadata)."""

    def fail(
        self, text: str, error: BaseException, *, interrupted: bool = False, provenance: Provenance | None = None
    ) -> None:
        """The reply failed or was interrupted; ``text`` is what arrived and must stay visible (with its
        ``provenance`` when an interrupted reply is kept)."""


class Publish(Protocol):
    """Shows a finished MIME bundle in the cell's output, with the output's metadata."""

    def __call__(self, bundle: dict[str, str], metadata: dict[str, Any] | None = None) -> None: ...
