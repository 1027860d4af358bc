"""The figure ``--image last`` sends: matplotlib-inline closes a cell's figures when the cell ends, so a
``post_execute`` hook keeps the most recent one (registered when the extension loads: this module is light)."""

from __future__ import annotations

import sys
from typing import Any

from ..errors import ImageError, option

_recent_figure: list[Any] = []  # the figure on screen at the end of the last cell (inline closes it)


def remember_figures() -> None:
    """A ``post_execute`` hook, run before matplotlib-inline closes the cell's figures: keep the
    most recent one for ``--image last``."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and pyplot.get_fignums():
        _recent_figure[:] = [pyplot.gcf()]


def most_recent_figure() -> Any:
    """The figure still open, else the one on screen at the end of the last cell that drew one."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and pyplot.get_fignums():
        return pyplot.gcf()
    if _recent_figure:
        return _recent_figure[0]
    raise ImageError(f"{option('image')} last: no matplotlib figure has been drawn in this kernel yet.")
