"""Trial runs of ``--each``: the first N items (``--limit``), a reproducible random sample
(``--sample N``, seeded by ``--seed``, 0 when not given), and what a dry run would send."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .items import Items

CHARS_PER_TOKEN = 4  # a rough rule for English text with Mistral's tokenizers


def trial_positions(total: int, limit: int | None, sample: int | None, seed: int | None) -> list[int] | None:
    """The positions a trial run answers (in input order), or ``None`` for every item; ``limit`` wins
    over ``sample`` (the cell's flags allow one of them)."""
    if limit is not None:
        return list(range(min(limit, total)))
    if sample is not None:
        return sorted(random.Random(seed or 0).sample(range(total), min(sample, total)))
    return None


def subset(items: Items, positions: Sequence[int]) -> Items:
    """The items at ``positions``, as a plain list of rows (their DataFrame fields kept)."""
    values = [items.values[i] for i in positions]
    fields = [items.fields[i] for i in positions] if items.fields is not None else None
    return Items(values, fields, "list", values)


@dataclass(frozen=True)
class DryRun:
    """What a run would send: requests, the first filled prompt, and a prompt-token estimate."""

    requests: int
    first_prompt: str
    prompt_tokens: int


def dry_run(prompts: Sequence[str], system: str | None) -> DryRun:
    """Count without sending: every prompt (plus the system prompt) at ~4 characters a token."""
    chars = sum(len(p) + len(system or "") for p in prompts)
    return DryRun(
        requests=len(prompts),
        first_prompt=prompts[0] if len(prompts) else "",
        prompt_tokens=-(-chars // CHARS_PER_TOKEN),
    )


def short(value: Any, limit: int = 80) -> str:
    """``value`` as one line of at most ``limit`` characters (a value whose ``str()`` raises is named by its type)."""
    try:
        text = " ".join(str(value).split())
    except Exception as error:
        text = f"<{type(value).__name__} object: str() raised {type(error).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"
