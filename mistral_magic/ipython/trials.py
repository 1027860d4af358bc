"""``--limit``, ``--sample`` and ``--dry-run`` of ``--each``: choose the items, show the first filled
prompt and the answers next to their inputs (the display glue; the choosing is in
:mod:`.annotation.trial`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..annotation.items import Items
from ..annotation.result import AnnotationRun
from ..annotation.schema import Schema
from ..annotation.trial import DryRun, short
from ..annotation.votes import tally
from ..render.trial import prompt_bundle, results_bundle

Show = Callable[[dict[str, str]], None]


def show_dry_run(show: Show, plan: DryRun, items: int, votes: int = 1) -> None:
    show(prompt_bundle("First prompt:", plan.first_prompt))
    each = (
        f" asking {votes} answers each with n ({plan.requests * votes} requests if the server ignores n)"
        if votes > 1
        else ""
    )
    print(
        f"Dry run: {plan.requests} request(s) for {items} item(s){each}, about {plan.prompt_tokens:,} prompt tokens "
        "(~4 characters a token); nothing was sent."
    )


def show_trial(
    show: Show,
    first_prompt: str,
    items: Items,
    positions: Sequence[int],
    index: Any,
    run: AnnotationRun,
    schema: Schema | None,
) -> None:
    """The first filled prompt, then one row per tried item: its position (index label), input and answer."""
    show(prompt_bundle("First prompt:", first_prompt))
    labels = list(index) if index is not None else None
    fields = [f.name for f in schema.fields] if schema is not None else ["answer"]
    failed = {e.index: e.error for e in run.errors}
    rows = []
    for number, (position, answer) in enumerate(zip(positions, run)):
        if number in failed:
            values = [f"(error: {short(failed[number], 60)})"] + [""] * (len(fields) - 1)
        elif schema is not None and isinstance(answer, list):  # votes: the majority and its share
            values = [_majority([vote.get(name) for vote in answer]) for name in fields]
        elif schema is not None and isinstance(answer, dict):
            values = [short(answer.get(name, "")) for name in fields]
        else:
            values = [short(answer if answer is not None else "")]
        label = labels[position] if labels is not None else position
        rows.append([label, short(items.values[number]), *values])
    show(results_bundle(f"Trial: {len(positions)} item(s)", ["index", "input", *fields], rows))


def _majority(values: list[Any]) -> str:
    result = tally(values)
    if result.tied:
        return f"tie: {' | '.join(short(v, 30) for v in result.tied)}"
    return f"{short(result.winner)} ({result.agreement:.0%})"
