"""The result of a run: each item's answer in input order, the items that failed and why, and the counts a summary gives."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..api.protocol import Completion
from ..errors import MistralMagicError, hint, one_line
from .jsonmode import EMPTY_REPLY, parse_json_reply


@dataclass(frozen=True)
class ItemError:
    """Why one item has no answer."""

    index: int
    item: Any
    error: str


class AnnotationRun(list[Any]):
    """The answers in input order (``None`` where an item has none), with what happened."""

    def __init__(
        self,
        results: list[Any],
        *,
        errors: list[ItemError],
        sent: int,
        cached: int,
        interrupted: bool,
        input_index: Any = None,
        in_flight: Sequence[int] = (),
        joined: int = 0,
    ):
        super().__init__(results)
        self.notes: list[str] = []  # more counts for the summary line (e.g. repaired replies)
        self.errors = errors
        self.sent = sent
        self.cached = cached
        self.interrupted = interrupted
        self.input_index = input_index  # the pandas index of the input (``index`` is list.index)
        self.in_flight = list(in_flight)  # items whose requests were still running at the interrupt
        self.joined = joined  # items answered by requests an interrupted run left running

    @property
    def remaining(self) -> int:
        """Items neither answered nor failed (an interrupted run)."""
        failed = {e.index for e in self.errors}
        return sum(1 for i, r in enumerate(self) if r is None and i not in failed)

    def series(self, name: str | None = None) -> Any:
        """The answers as a pandas Series aligned to the input's index (pandas input)."""
        import pandas

        return pandas.Series(list(self), index=self.input_index, name=name)

    def summary(self) -> str:
        """One line: how many answered, from the cache, failed, remaining."""
        answered = sum(1 for r in self if r is not None)
        joined = f", {self.joined} answered by the requests of the interrupted run" if self.joined else ""
        parts = [f"{answered} answered ({self.cached} from the cache{joined})", *self.notes]
        if self.errors:
            parts.append(f"{len(self.errors)} failed: {hint('item_errors')}")
        if self.interrupted:
            parts.append(f"interrupted with {self.remaining} remaining: run it again to continue")
        return f"{len(self)} items: " + ", ".join(parts) + "."


def settler(results: list[Any], errors: dict[int, str], json: bool) -> Callable[[int, Completion], None]:
    """Puts an item's answer (parsed, with ``json``) in ``results``, or why it cannot be read in ``errors``."""

    def settle(index: int, completion: Completion) -> None:
        if not completion.text.strip():
            errors[index] = EMPTY_REPLY
            return
        try:
            results[index] = parse_json_reply(completion.text) if json else completion.text
        except MistralMagicError as error:
            errors[index] = one_line(error)

    return settle
