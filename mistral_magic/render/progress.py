"""Progress of an annotation run: a widget bar in notebook frontends, a one-line bar elsewhere."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


def duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.5 h``: as precise as a glance needs."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _eta(done: int, total: int, rate: float) -> str:
    if rate <= 0 or done >= total:
        return "–"
    return duration((total - done) / rate)


class ProgressView:
    """Counts finished and failed items and shows rate, elapsed time and ETA, after the run's stage
    when it has one (a batch job's "queued"); call :meth:`update` from the cell's own thread
    (widgets are safest there), :meth:`close` at the end."""

    def __init__(
        self,
        total: int,
        already: int = 0,
        *,
        widget: bool = False,
        clear: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total = total
        self.done = already
        self.failed = 0
        self.stage = ""
        self._already = already
        self._clock = clock
        self._started = clock()
        self._clear = clear
        self._bar: Any = None
        self._label: Any = None
        self._box: Any = None
        self._wrote = False
        if widget:
            import ipywidgets
            from IPython.display import display

            self._bar = ipywidgets.IntProgress(value=already, min=0, max=max(total, 1), description="mistral")
            self._label = ipywidgets.HTML()
            self._box = ipywidgets.HBox([self._bar, self._label])
            display(self._box)
        self.update(self.done, self.failed)

    def line(self) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        rate = (self.done - self._already) / elapsed
        stage = f"{self.stage} · " if self.stage else ""
        failed = f" · failed {self.failed}" if self.failed else ""
        eta = _eta(self.done, self.total, rate)
        return f"{stage}{self.done}/{self.total}{failed} · {rate:.1f}/s · {duration(elapsed)} elapsed · ETA {eta}"

    def set_stage(self, stage: str) -> None:
        """Name what the run is doing (shown before the counts from the next update on)."""
        self.stage = stage

    def update(self, done: int, failed: int) -> None:
        self.done, self.failed = done, failed
        if self._bar is not None:
            self._bar.value = done
            self._bar.bar_style = "warning" if failed else ""
            self._label.value = self.line()
            return
        width = 24
        filled = width * done // max(self.total, 1)
        sys.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.line()}   ")
        sys.stdout.flush()
        self._wrote = True

    def close(self) -> None:
        """Remove the bar; the caller prints the summary that stays."""
        if self._box is not None:
            self._box.close()
            self._bar.close()
            self._label.close()
        if self._wrote:
            sys.stdout.write("\n")
            sys.stdout.flush()
        if self._clear is not None:
            self._clear()
