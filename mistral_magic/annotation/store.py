"""``--out``: a run's answers stored in the notebook, in input order, aligned to a Series' or
DataFrame's index; with ``--schema``, as typed columns."""

from __future__ import annotations

import sys
from typing import Any

from .items import Items
from .result import AnnotationRun
from .schema import Schema
from .typed import typed_frame
from .votes import vote_frame


def store_results(namespace: dict[str, Any], name: str, items: Items, run: AnnotationRun) -> None:
    """``--out``: a list for list-like input, a Series aligned to the index for a Series, and for
    a DataFrame a new column ``name`` (the variable ``name`` gets that column too)."""
    if items.kind == "list":
        namespace[name] = list(run)
        return
    series = run.series(name)
    if items.kind == "frame":
        items.source[name] = series
    namespace[name] = series


def written_columns(name: str, schema: Schema | None, votes: int = 1) -> list[str]:
    """The columns ``--out NAME`` adds to a DataFrame input: ``NAME``, or with a schema ``NAME_field``
    per field (with votes also ``NAME_field_agreement`` and ``NAME_field_tie``)."""
    if schema is None:
        return [name]
    suffixes = ("", "_agreement", "_tie") if votes > 1 else ("",)
    return [f"{name}_{field.name}{suffix}" for field in schema.fields for suffix in suffixes]


def store_typed(
    namespace: dict[str, Any], name: str, items: Items, run: AnnotationRun, schema: Schema, votes: int = 1
) -> None:
    """``--each --schema --out NAME``: ``NAME`` gets a DataFrame with one typed column per field (aligned
    to a Series' or DataFrame's index), and a DataFrame input gets them as columns ``NAME_field``.
    Without pandas, ``NAME`` gets a list of dicts. With votes, each field also has ``field_agreement``
    and ``field_tie`` columns (see :func:`.annotation.votes.vote_frame`)."""
    answers: list[Any] = list(run)
    if votes > 1:  # each answer is the list of an item's votes
        frame = vote_frame(schema.fields, answers, items.index)
        if items.kind == "frame":
            for column in frame.columns:
                items.source[f"{name}_{column}"] = frame[column]
        namespace[name] = frame
        return
    if schema.model is not None:  # Pydantic's coercions (e.g. "3" for an int) decide the values
        answers = [None if a is None else schema.model.model_validate(a) for a in answers]
    if "pandas" not in sys.modules and items.kind == "list":
        try:
            import pandas  # noqa: F401
        except ImportError:
            namespace[name] = [a.model_dump() if hasattr(a, "model_dump") else a for a in answers]
            return
    frame = typed_frame(schema.fields, answers, items.index)
    if items.kind == "frame":
        for field in schema.fields:
            items.source[f"{name}_{field.name}"] = frame[field.name]
    namespace[name] = frame
