"""The items of a run: what `--each` / annotate() take (a list, a Series, a DataFrame) and the prompts a template makes of them."""

from __future__ import annotations

import sys
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ..errors import UsageError
from ..interpolate import interpolate


@dataclass(frozen=True)
class Items:
    """What ``--each`` names, as rows to fill the template with."""

    values: list[Any]
    fields: list[dict[str, Any]] | None  # a DataFrame's rows as {column} fields; None for other input
    kind: str  # "list", "series" or "frame"
    source: Any = None

    @property
    def index(self) -> Any:
        return self.source.index if self.kind in ("series", "frame") else None


def as_items(obj: Any, name: str = "items", written: Sequence[str] = ()) -> Items:
    """Rows of a list, tuple or other iterable, a pandas Series, or a DataFrame (whose columns
    become ``{column}`` fields and whose rows are ``{item}`` as dicts). ``{item}`` leaves out the
    ``written`` columns (those the run adds to the frame): a re-run asks the same questions, and the
    model never sees earlier answers."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(obj, pandas.DataFrame):
        rows = obj.to_dict("records")  # one pass; iterrows would build a Series per row (and upcast ints)
        answers = [column for column in written if column in obj.columns]
        if not answers:
            return Items(rows, rows, "frame", obj)
        return Items([{k: v for k, v in row.items() if k not in answers} for row in rows], rows, "frame", obj)
    if pandas is not None and isinstance(obj, pandas.Series):
        return Items(obj.tolist(), None, "series", obj)
    if isinstance(obj, (str, bytes)) or isinstance(obj, Mapping) or not isinstance(obj, Iterable):
        raise UsageError(f"{name} must be a list, tuple, pandas Series or DataFrame (got {type(obj).__name__}).")
    if iter(obj) is obj:  # a generator or other iterator: reading it here would leave it empty for a re-run
        variable = name.split()[-1]
        raise UsageError(
            f"{name} is an iterator ({type(obj).__name__}), which can be read only once: "
            f"make it a list first, e.g. {variable} = list({variable})."
        )
    return Items(list(obj), None, "list", obj)


class TemplatePrompts(Sequence[str]):
    """The prompt of each item, filled when it is asked for: a large run keeps no list of prompts."""

    def __init__(
        self,
        template: str,
        items: Items,
        namespace: Mapping[str, Any] | None = None,
        mask: Callable[[str], str] | None = None,
    ):
        self.template = template
        self.items = items
        self.namespace = cast("MutableMapping[str, Any]", namespace or {})  # ChainMap only reads it
        self.mask = mask

    def __len__(self) -> int:
        return len(self.items.values)

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        fields = self.items.fields[index] if self.items.fields is not None else {}
        scope = ChainMap(fields, {"item": self.items.values[index]}, self.namespace)
        return interpolate(self.template, scope, mask=self.mask)


def fill_template(
    template: str,
    items: Items,
    namespace: Mapping[str, Any] | None = None,
    mask: Callable[[str], str] | None = None,
) -> Sequence[str]:
    """The prompt for each item: ``{item}`` and the row's ``{column}`` fields, then notebook
    variables, each value passed through ``mask``; other braces stay as written. Each is filled
    when it is read."""
    return TemplatePrompts(template, items, namespace, mask)
