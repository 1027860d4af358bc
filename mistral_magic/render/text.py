"""The plain-text renderer: streams to stdout (terminal IPython, nbconvert, plain shells)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..provenance import Provenance
from ..textsafe import ControlStripper, strip_controls
from .base import Publish, ReplyInfo
from .static import THINKING_SUMMARY, final_bundle, reply_notice

DIM, RESET = "\x1b[2m", "\x1b[0m"  # the thinking is dimmed in a terminal


class TextRenderer:
    """Streams reply text to a text stream as it arrives, then publishes the static display.

    ``publish`` shows the final MIME bundle (``None`` in a terminal, where the streamed text
    already is the record); ``clear`` removes the streamed text first, so a notebook keeps the
    answer once, as rendered markdown. A reasoning model's thinking streams first, under a
    ``Thinking…`` line (dimmed in a terminal), and ends with ``(thought for 12.3 s)``. Thinking that
    arrives once the answer began is held and printed after it, never inside it.
    """

    def __init__(
        self,
        publish: Publish | None = None,
        *,
        clear: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._publish = publish
        self._clear = clear
        self._clock = clock
        self._wrote = False
        self._controls = ControlStripper()  # model text must not act on the terminal
        self._thinking_controls = ControlStripper()
        self._thinking: list[str] = []
        self._started = 0.0
        self._thinking_open = False  # the thinking streams and the answer has not begun
        self._answering = False  # the answer began: more thinking is held until it ends
        self._late_thinking: list[str] = []
        self._dim = False

    @property
    def out(self) -> TextIO:
        """Looked up on each write: IPython swaps ``sys.stdout`` to capture a cell's output."""
        return sys.stdout

    def start(self, info: ReplyInfo) -> None:
        self._wrote = False
        self._controls = ControlStripper()
        self._thinking_controls = ControlStripper()
        self._started = self._clock()
        self._thinking = []
        self._thinking_open = False
        self._answering = False
        self._late_thinking = []

    def notice(self, message: str) -> None:
        self.out.write(f"[{strip_controls(message)}]\n")
        self.out.flush()

    def think(self, text: str) -> None:
        if self._answering:
            self._thinking.append(text)
            self._late_thinking.append(text)
            return
        out = self.out
        if not self._thinking:
            self._thinking_open = True
            self._dim = _is_terminal(out)
            out.write(f"{THINKING_SUMMARY}\n{DIM if self._dim else ''}")
        self._thinking.append(text)
        out.write(self._thinking_controls.feed(text))
        out.flush()
        self._wrote = True

    def _end_thinking(self) -> None:
        """Close the thinking section (once), before the answer or the end of the reply."""
        if not self._thinking_open:
            return
        self._thinking_open = False
        elapsed = self._clock() - self._started  # from the request to the answer's first text
        self.out.write(self._thinking_controls.flush())
        self.out.write(f"{RESET if self._dim else ''}\n(thought for {elapsed:.1f} s)\n\n")

    def feed(self, text: str) -> None:
        self._end_thinking()
        self._answering = True
        self.out.write(self._controls.feed(text))
        self.out.flush()
        self._wrote = True

    def finish(self, text: str, provenance: Provenance) -> None:
        self._end(text, reply_notice(provenance.finish_reason), provenance)

    def fail(
        self, text: str, error: BaseException, *, interrupted: bool = False, provenance: Provenance | None = None
    ) -> None:
        if text or interrupted or self._thinking:
            self._end(text, reply_notice(None, interrupted=interrupted, error=error), provenance, footer=False)
        elif self._wrote:
            self.out.write("\n")

    def _end(self, text: str, notice: str | None, provenance: Provenance | None, *, footer: bool = True) -> None:
        self._end_thinking()
        self.out.write(self._controls.flush())
        if self._late_thinking:  # apart from the answer, after it
            dim = _is_terminal(self.out)
            late = strip_controls("".join(self._late_thinking))
            self.out.write(
                f"\n\n{THINKING_SUMMARY} (during the answer)\n{DIM if dim else ''}{late}{RESET if dim else ''}\n"
            )
            self._late_thinking = []
        if self._publish is None:
            self.out.write(f"\n[{notice}]\n" if notice else "\n")
            self.out.flush()
            return
        if self._wrote:
            self.out.write("\n")
            self.out.flush()
            if self._clear is not None:
                self._clear()
        shown_footer = provenance.footer() if provenance is not None and footer else None
        bundle = final_bundle(text, notice, shown_footer, thinking="".join(self._thinking))
        self._publish(bundle, provenance.metadata() if provenance is not None else None)


def _is_terminal(out: TextIO) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False
