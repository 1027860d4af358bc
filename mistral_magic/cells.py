"""Which notebook cell is running: the frontend's cell id and the cell's ``In [n]``.

JupyterLab and Notebook 7 send a cell id with each execution (the execute request's
``metadata.cellId``); ipykernel hands it to IPython, whose ``pre_run_cell`` event carries it as
``ExecutionInfo.cell_id``. nbclient (so nbval and nbconvert), terminal IPython and
``run_cell`` from code send none: there a cell is not known, and nothing is keyed to it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CellRef:
    """One execution of a notebook cell: the frontend's cell ``id``, a ``run`` token unique to this
    execution, and the cell's execution count (``In [number]``)."""

    id: str
    run: str
    number: int | None = None


def cell_label(number: int | None) -> str:
    """``In [7]``, as the notebook shows the cell (``In [?]`` when the count is unknown)."""
    return f"In [{number}]" if number is not None else "In [?]"


class CellTracker:
    """Listens to ``pre_run_cell`` and tells which cell runs now (``None`` without a cell id)."""

    def __init__(self, shell: Any):
        self._shell = shell
        self._cell_id: str | None = None
        self._run = ""
        self._number: int | None = None

    def _count(self) -> int | None:
        """``In [n]`` of the running cell. IPython's display hook knows it whichever way the version
        counts (9.x since late 2025 counts a cell before running it, earlier ones after)."""
        count = getattr(getattr(self._shell, "displayhook", None), "prompt_count", None)
        return count if isinstance(count, int) else None

    def pre_run_cell(self, info: Any = None) -> None:
        """IPython's ``pre_run_cell`` callback: a new execution begins."""
        cell_id = getattr(info, "cell_id", None)
        self._cell_id = cell_id if isinstance(cell_id, str) and cell_id else None
        self._run = uuid.uuid4().hex
        self._number = self._count()

    def current(self) -> CellRef | None:
        """The cell running now, with its ``In [n]``; ``None`` when the frontend sent no cell id."""
        if self._cell_id is None:
            return None
        return CellRef(self._cell_id, self._run, self._number)
