""":func:`agreement`: how far two label columns agree (two prompts, two models, or a model and a
human gold column): counts, percent agreement, Cohen's kappa and a confusion table.

Cohen's kappa is computed here (a dozen lines): the libraries that have it (scikit-learn,
statsmodels) are far heavier than the formula. kappa = (p_o - p_e) / (1 - p_e), with p_o the
observed agreement and p_e the agreement expected by chance from each column's label shares;
when both columns use one and the same label, p_e = 1 and kappa is undefined (NaN).
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import UsageError
from .render.tables import table_bundle


def _missing(value: Any) -> bool:
    """None, NaN, or pandas' NA / NaT."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)


def _categories(column: Any) -> list[Any]:
    dtype: Any = getattr(column, "dtype", None)
    return list(dtype.categories) if getattr(dtype, "name", "") == "category" else []


@dataclass(frozen=True)
class Agreement:
    """The comparison of two label columns; shown as a summary line and a confusion table."""

    name_a: str
    name_b: str
    labels: list[Any]
    confusion: list[list[int]]  # confusion[i][j]: items labelled labels[i] by a and labels[j] by b
    dropped: int = 0  # pairs with a missing label on either side

    @property
    def count(self) -> int:
        return sum(map(sum, self.confusion))

    @property
    def agreed(self) -> int:
        return sum(self.confusion[i][i] for i in range(len(self.labels)))

    @property
    def percent(self) -> float:
        return 100 * self.agreed / self.count if self.count else float("nan")

    @property
    def kappa(self) -> float:
        n = self.count
        if not n:
            return float("nan")
        rows = [sum(r) / n for r in self.confusion]
        cols = [sum(r[j] for r in self.confusion) / n for j in range(len(self.labels))]
        expected = sum(a * b for a, b in zip(rows, cols))
        if expected >= 1:
            return float("nan")
        return (self.agreed / n - expected) / (1 - expected)

    def table(self) -> Any:
        """The confusion table as a pandas DataFrame (rows: ``name_a``, columns: ``name_b``)."""
        import pandas

        labels = [str(label) for label in self.labels]
        return pandas.DataFrame(
            self.confusion,
            index=pandas.Index(labels, name=self.name_a),
            columns=pandas.Index(labels, name=self.name_b),
        )

    def summary(self) -> str:
        dropped = f"; {self.dropped} pair(s) with a missing label left out" if self.dropped else ""
        if not self.count:
            return (
                f"{self.name_a} vs {self.name_b}: no pair has a label on both sides, so nothing is compared{dropped}."
            )
        kappa = "undefined (one label only)" if math.isnan(self.kappa) else f"{self.kappa:.3f}"
        return (
            f"{self.name_a} vs {self.name_b}: {self.agreed} of {self.count} agree ({self.percent:.1f}%), "
            f"Cohen's kappa {kappa}{dropped}."
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        headers = [f"{self.name_a} \\ {self.name_b}", *(str(label) for label in self.labels), "total"]
        rows: list[list[object]] = [[label, *counts, sum(counts)] for label, counts in zip(self.labels, self.confusion)]
        rows.append(["total", *(sum(r[j] for r in self.confusion) for j in range(len(self.labels))), self.count])
        return table_bundle(headers, rows, title=self.summary())

    def __repr__(self) -> str:
        return self.summary()


def _column(values: Any, default: str) -> tuple[str, list[Any], Any]:
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(values, pandas.Series):
        return str(values.name) if values.name is not None else default, values.tolist(), values.index
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise UsageError(f"agreement() compares two lists or pandas Series of labels (got {type(values).__name__}).")
    return default, list(values), None


def _check_single_labels(name: str, values: list[Any]) -> None:
    """Every label must be one value that can be counted (hashable): a list of labels per item cannot."""
    for position, value in enumerate(values):
        try:
            hash(value)
        except TypeError:
            raise UsageError(
                f"agreement(): label {position} of {name} is a {type(value).__name__}, not a single label: compare a "
                "field of single values, or join each item's labels into one string first."
            ) from None


def agreement(a: Any, b: Any, *, names: tuple[str, str] | None = None) -> Agreement:
    """Compare two label columns item by item (two Series are aligned on their index; lists by
    position). Pairs where either label is missing are left out and counted."""
    name_a, values_a, index_a = _column(a, "a")
    name_b, values_b, index_b = _column(b, "b")
    if names is not None:
        name_a, name_b = names
    if name_a == name_b:
        name_a, name_b = f"{name_a} (a)", f"{name_b} (b)"
    if index_a is not None and index_b is not None and not index_a.equals(index_b):
        import pandas

        for name, index in ((name_a, index_a), (name_b, index_b)):
            if index.has_duplicates:
                raise UsageError(
                    f"agreement(): the index of {name} has duplicate labels ({index[index.duplicated()].tolist()[0]!r}), so its "
                    "rows cannot be matched to the other column's: give both one index, or lists "
                    "(e.g. .reset_index(drop=True) on both)."
                )
        joined = pandas.concat([pandas.Series(values_a, index=index_a), pandas.Series(values_b, index=index_b)], axis=1)
        values_a, values_b = joined[0].tolist(), joined[1].tolist()
    if len(values_a) != len(values_b):
        raise UsageError(
            f"agreement(): the columns have {len(values_a)} and {len(values_b)} labels; give two of one length."
        )
    _check_single_labels(name_a, values_a)
    _check_single_labels(name_b, values_b)
    pairs = [(x, y) for x, y in zip(values_a, values_b) if not (_missing(x) or _missing(y))]
    declared = [*_categories(a), *_categories(b)]
    seen = {*declared}
    labels = list(dict.fromkeys(declared))
    labels += sorted({v for pair in pairs for v in pair if v not in seen}, key=str)
    position = {label: i for i, label in enumerate(labels)}
    counts = Counter((position[x], position[y]) for x, y in pairs)
    confusion = [[counts[(i, j)] for j in range(len(labels))] for i in range(len(labels))]
    return Agreement(name_a, name_b, labels, confusion, dropped=len(values_a) - len(pairs))
