"""The plain-text renderer: streams to stdout (terminal IPython, nbconvert, plain shells)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from ..textsafe import ControlStripper, strip_controls
from .base import ReplyInfo
from .static import final_bundle, reply_footer, reply_notice

PublishFunction = Callable[[dict[str, str]], None]


class TextRenderer:
    """Streams reply text to a text stream as it arrives, then publishes the static display.

    ``publish`` shows the final MIME bundle (``None`` in a terminal, where the streamed text
    already is the record); ``clear`` removes the streamed text first, so a notebook keeps the
    answer once, as rendered markdown.
    """

    def __init__(self, publish: PublishFunction | None = None, *, clear: Callable[[], None] | None = None):
        self._publish = publish
        self._clear = clear
        self._wrote = False
        self._model: str | None = None
        self._controls = ControlStripper()  # model text must not act on the terminal

    @property
    def out(self) -> TextIO:
        """Looked up on each write: IPython swaps ``sys.stdout`` to capture a cell's output."""
        return sys.stdout

    def start(self, info: ReplyInfo) -> None:
        self._wrote = False
        self._model = info.model
        self._controls = ControlStripper()

    def notice(self, message: str) -> None:
        self.out.write(f"[{strip_controls(message)}]\n")
        self.out.flush()

    def feed(self, text: str) -> None:
        self.out.write(self._controls.feed(text))
        self.out.flush()
        self._wrote = True

    def finish(self, text: str, *, finish_reason: str | None, usage: dict[str, Any] | None) -> None:
        self._end(text, reply_notice(finish_reason), reply_footer(self._model, finish_reason, usage))

    def fail(self, text: str, error: BaseException, *, interrupted: bool = False) -> None:
        if text or interrupted:
            self._end(text, reply_notice(None, interrupted=interrupted, error=error), None)
        elif self._wrote:
            self.out.write("\n")

    def _end(self, text: str, notice: str | None, footer: str | None) -> None:
        self.out.write(self._controls.flush())
        if self._publish is None:
            self.out.write(f"\n[{notice}]\n" if notice else "\n")
            self.out.flush()
            return
        if self._wrote:
            self.out.write("\n")
            self.out.flush()
            if self._clear is not None:
                self._clear()
        self._publish(final_bundle(text, notice, footer))
