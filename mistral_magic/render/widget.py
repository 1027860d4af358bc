"""The live widget view: rendered markdown that grows as the reply streams.

Finished markdown blocks are rendered once (sanitized by nh3) and sent once; the block still
growing is sent as text, only what was added since the last update, and shown as text until it
is finished. Updates go out at most ``max_rate`` times a second (the first text at once; the last
update is never lost). A reasoning model's thinking streams as text into a "Thinking…" section
above the answer, which collapses when the answer begins. When the reply ends, the view is closed
and replaced by the static display, so the saved notebook never says "Loading widget".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from ..provenance import Provenance
from .base import Publish, ReplyInfo
from .blocks import BlockSplitter, has_link_definitions
from .html import render_markdown
from .static import final_bundle, reply_notice

_HERE = Path(__file__).parent


@cache
def live_view_class() -> type:
    """The anywidget class of the live view (imported on first use: loading stays cheap)."""
    import anywidget

    class LiveView(anywidget.AnyWidget):
        """Appends sanitized HTML blocks and text; the front end is ``live.js``."""

        _esm = (_HERE / "live.js").read_text(encoding="utf-8")
        _css = (_HERE / "live.css").read_text(encoding="utf-8")

    return LiveView


class WidgetRenderer:
    """Streams a reply into the live view; see the module docstring."""

    def __init__(
        self,
        show: Callable[[Any], None],
        publish: Publish,
        clear: Callable[[], None],
        *,
        max_rate: float = 12.0,
        status_rate: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._show = show
        self._publish = publish
        self._clear = clear
        self._interval = 1.0 / max_rate
        self._status_interval = 1.0 / status_rate
        self._clock = clock
        self._splitter = BlockSplitter()
        self._pending: list[str] = []
        self._pending_thinking: list[str] = []
        self._thinking: list[str] = []
        self._thinking_ended: float | None = None  # when the answer began (thinking after it is shown collapsed)
        self._sent_thought = False
        self._text_parts: list[str] = []
        self._block_html: list[str] = []
        self._sent_tail = ""
        self._sent_code = False
        self._deltas = 0
        self._updates = 0
        self._last_update = float("-inf")
        self._last_status = float("-inf")
        self._started = 0.0
        self._info: ReplyInfo | None = None
        self._view: Any = None

    @property
    def text(self) -> str:
        """Everything fed so far."""
        return "".join(self._text_parts) + "".join(self._pending)

    @property
    def updates(self) -> int:
        """How many updates were sent to the view (for the benchmark)."""
        return self._updates

    def start(self, info: ReplyInfo) -> None:
        self._info = info
        self._started = self._clock()
        self._view = live_view_class()()
        self._show(self._view)
        self._send({"status": self._status("waiting for the first token…")})

    def notice(self, message: str) -> None:
        self._send({"status": self._status(message)})

    @property
    def thinking(self) -> str:
        """All thinking fed so far."""
        return "".join(self._thinking)

    def think(self, text: str) -> None:
        self._thinking.append(text)
        self._pending_thinking.append(text)
        self._deltas += 1
        if self._clock() - self._last_update >= self._interval:
            self._flush()

    def feed(self, text: str) -> None:
        if self._thinking_ended is None:  # the answer begins: thinking, even if it comes later, is done
            self._thinking_ended = self._clock()
        self._pending.append(text)
        self._deltas += 1
        if self._clock() - self._last_update >= self._interval:
            self._flush()

    def _flush(self, final: bool = False) -> None:
        message: dict[str, Any] = {}
        if final and self._thinking and self._thinking_ended is None:
            self._thinking_ended = self._clock()  # a reply that ends while still thinking
        if self._pending_thinking:
            message["think"] = "".join(self._pending_thinking)
            self._pending_thinking.clear()
        if self._thinking and self._thinking_ended is not None and not self._sent_thought:
            message["thought"] = self._sent_thought = True  # collapsed: the answer began
        if self._pending:
            chunk = "".join(self._pending)
            self._pending.clear()
            self._text_parts.append(chunk)
            finished = [render_markdown(block) for block in self._splitter.feed(chunk)]
            if finished:
                self._block_html.extend(finished)
                message["blocks"] = finished
            tail = self._splitter.tail
            if not finished and tail.startswith(self._sent_tail):
                if len(tail) > len(self._sent_tail):
                    message["append"] = tail[len(self._sent_tail) :]
            elif tail != self._sent_tail or finished:
                message["tail"] = tail
            self._sent_tail = tail
            code = self._splitter.in_fence is not None
            if code != self._sent_code:
                message["code"] = self._sent_code = code
        now = self._clock()
        self._last_update = now
        if final or now - self._last_status >= self._status_interval:
            self._last_status = now
            message["status"] = self._status(self._progress())
        if message.keys() - {"status"}:
            self._updates += 1
        self._send(message)

    def _send(self, message: dict[str, Any]) -> None:
        if message and self._view is not None:
            self._view.send(message)

    def _progress(self) -> str:
        now = self._clock()
        elapsed = max(now - self._started, 1e-9)
        progress = f"{self._deltas} tokens · {self._deltas / elapsed:.0f} tokens/s · {elapsed:.1f} s"
        if not self._thinking:  # thinking time counts from the request to the answer's first text
            return progress
        if self._thinking_ended is None:
            return f"thinking for {now - self._started:.1f} s · {progress}"
        return f"thought for {self._thinking_ended - self._started:.1f} s · {progress}"

    def _status(self, detail: str) -> str:
        info = self._info
        return f"{info.model} · chat {info.chat} · {detail}" if info else detail

    def final_html(self, text: str) -> str | None:
        """The one-shot rendering of ``text`` assembled from the blocks already rendered, or
        ``None`` when that is not certain to be equal (other text, or link definitions)."""
        if text != self.text or has_link_definitions(text):
            return None
        tail = self._splitter.tail
        parts = [*self._block_html, render_markdown(tail)] if tail.strip() else self._block_html
        return "".join(parts)

    def finish(self, text: str, provenance: Provenance) -> None:
        self._flush(final=True)
        html = self.final_html(text)
        notice = reply_notice(provenance.finish_reason)
        bundle = final_bundle(text, notice, provenance.footer(), html=html, thinking=self.thinking)
        self._end(bundle, provenance)

    def fail(
        self, text: str, error: BaseException, *, interrupted: bool = False, provenance: Provenance | None = None
    ) -> None:
        self._flush(final=True)
        notice = reply_notice(None, interrupted=interrupted, error=error)
        shown = text or interrupted or self._thinking
        bundle = final_bundle(text, notice, html=self.final_html(text), thinking=self.thinking) if shown else None
        self._end(bundle, provenance)

    def _end(self, bundle: dict[str, Any] | None, provenance: Provenance | None = None) -> None:
        """Replace the live view by the static display and close the widget."""
        self._clear()
        if bundle is not None:
            self._publish(bundle, provenance.metadata() if provenance is not None else None)
        if self._view is not None:
            self._view.layout.close()
            self._view.close()
            self._view = None
