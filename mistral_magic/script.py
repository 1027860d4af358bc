""":func:`annotate` for Python code: the engine of ``--each`` without a magic line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .annotation.items import as_items, fill_template
from .annotation.result import AnnotationRun
from .annotation.schema import resolve as resolve_schema
from .config import MistralConfig
from .images.sources import ItemImages
from .ipython.extension import loaded_session
from .render.select import progress_factory
from .session import Session, TurnOptions
from .settings import SAMPLING_NAMES

_standalone: Session | None = None


def annotate(
    items: Any,
    template: str,
    *,
    model: str | None = None,
    system: str | None = None,
    json: bool = False,
    workers: int = 8,
    cache: bool = True,
    rpm: float | None = None,
    images: Sequence[str] | None = None,
    schema: Any = None,
    repair: int | None = None,
    votes: int = 1,
    batch: bool = False,
    wait: bool = True,
    **sampling: Any,
) -> AnnotationRun:
    """Fill ``template`` once per item (``{item}``; ``{column}`` for DataFrame rows) and ask each
    as its own request, concurrently. Returns the answers in input order; ``.errors`` lists the
    items without one. Uses the settings of the loaded ``%mistral`` extension, else the
    environment. ``sampling`` takes the sampling options (``temperature``, ``stop``...). A
    KeyboardInterrupt raises :class:`~mistral_magic.errors.AnnotationInterrupted` with the partial run.
    ``images`` are ``--image`` values for each item (e.g. ``["{path}"]``, or ``["{photo}"]`` for a
    column of PIL images).
    ``schema`` (a concise spec, a JSON Schema dict or a Pydantic model class) asks for JSON that
    matches it: each answer is the validated dict, re-asked with the reason up to ``repair`` times.
    ``votes`` (with ``schema``) asks that many answers per item: each answer is then the list of them.
    ``batch`` sends the requests through Mistral's Batch API (as ``--batch``): calling again with the
    same items collects the same jobs. ``wait=False`` (with ``batch``) raises
    :class:`~mistral_magic.errors.BatchNotReady` while the jobs are submitted or still running.
    """
    unknown = set(sampling) - set(SAMPLING_NAMES)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}; sampling options are {', '.join(SAMPLING_NAMES)}")
    if isinstance(sampling.get("stop"), str):
        sampling["stop"] = (sampling["stop"],)
    elif sampling.get("stop") is not None:
        sampling["stop"] = tuple(sampling["stop"])
    session = loaded_session() or _standalone_session()
    settings = session.local.resolve(session.config.settings().with_overrides(model=model, repair=repair, **sampling))
    rows = as_items(items)
    shell = _running_shell()
    return session.ask_each(
        rows,
        fill_template(template, rows, mask=session.config.key_mask()),
        settings,
        TurnOptions(
            system=system, json=json, schema=resolve_schema(schema) if schema is not None else None, votes=votes
        ),
        workers=workers,
        cache=cache,
        rpm=rpm,
        progress=progress_factory(shell, settings.display),
        usage_label="annotate",
        images_for=ItemImages(images, rows, (shell.user_ns if shell is not None else {})) if images else None,
        batch=batch,
        wait=wait,
    )


def _standalone_session() -> Session:
    global _standalone
    if _standalone is None:
        _standalone = Session(MistralConfig())
    return _standalone


def _running_shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()
