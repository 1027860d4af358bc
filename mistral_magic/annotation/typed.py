"""Typed results of a ``--schema`` run: one pandas column per field with a real dtype.

Integers are nullable ``Int64``, numbers ``float64``, booleans nullable ``boolean``, enums
``Categorical`` with every declared category (so ``value_counts()`` shows the zeros); strings,
lists and other values stay objects. An item without an answer is missing in every column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .schema import Field


def _value(answer: Any, name: str) -> Any:
    if answer is None:
        return None
    if isinstance(answer, dict):
        return answer.get(name)
    return getattr(answer, name, None)  # a Pydantic instance


def typed_column(field: Field, answers: Sequence[Any], index: Any = None, name: str | None = None) -> Any:
    """The column of ``field`` over ``answers`` (dicts or model instances; ``None`` for no answer)."""
    import pandas

    values = [_value(a, field.name) for a in answers]
    name = name or field.name
    if field.kind == "int":
        return pandas.Series(values, index=index, name=name, dtype="Int64")
    if field.kind == "float":
        return pandas.Series(
            [float("nan") if v is None else v for v in values], index=index, name=name, dtype="float64"
        )
    if field.kind == "bool":
        return pandas.Series(values, index=index, name=name, dtype="boolean")
    if field.kind == "enum":
        kind = pandas.CategoricalDtype(categories=list(field.choices))
        return pandas.Series(values, index=index, name=name, dtype=kind)
    return pandas.Series(values, index=index, name=name, dtype="object")


def typed_frame(fields: Sequence[Field], answers: Sequence[Any], index: Any = None, prefix: str = "") -> Any:
    """A DataFrame with one typed column per field, named ``{prefix}{field}``."""
    import pandas

    columns = {f"{prefix}{f.name}": typed_column(f, answers, index, f"{prefix}{f.name}") for f in fields}
    return pandas.DataFrame(columns, index=index if index is not None else pandas.RangeIndex(len(answers)))
