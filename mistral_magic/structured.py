"""``--schema`` on a single cell: ask, validate, and ask again with the reason when the reply does
not match (each try is shown and, in a chat, recorded like any turn)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .annotation.run import AnnotationRun, Items
from .annotation.schema import Schema
from .annotation.typed import typed_frame
from .annotation.validate import REPAIR_PROMPT, Validator, rejects_json_schema
from .annotation.votes import vote_frame
from .errors import BadRequestError, SchemaReplyError, UnprocessableError
from .render.base import Renderer
from .session import Session, TurnOptions
from .settings import Settings


def ask_structured(
    session: Session,
    prompt: str,
    settings: Settings,
    options: TurnOptions,
    renderer: Callable[[], Renderer],
) -> Any:
    """The validated answer to ``prompt`` (a model instance for a model class, else a dict), after at
    most ``settings.repair`` repairs; raises :class:`SchemaReplyError` with the reason otherwise."""
    assert options.schema is not None
    validator = Validator(options.schema)
    try:
        completion = session.ask(prompt, settings, options, renderer())
    except (BadRequestError, UnprocessableError) as error:
        if not rejects_json_schema(error):
            raise
        print(
            "The server does not take the json_schema response format; asking for JSON with the schema in the prompt.",
            file=sys.stderr,
        )
        options = replace(options, schema=None, json=True)  # the repairs too
        completion = session.ask(f"{prompt}\n\n{validator.schema.instructions()}", settings, options, renderer())
    attempt = 0
    while True:
        try:
            return validator.check(completion.text)
        except SchemaReplyError as error:
            if attempt == settings.repair:
                tries = f" (after {attempt} repair{'s' if attempt != 1 else ''})" if attempt else ""
                raise SchemaReplyError(f"The reply does not match the schema{tries}: {error}") from None
            attempt += 1
            print(
                f"The reply does not match the schema ({error}); asking again (repair {attempt} of {settings.repair}).",
                file=sys.stderr,
            )
            fix = REPAIR_PROMPT.format(reason=error)
            if options.once:  # no history to lean on: the question and the reply go with the fix
                fix = f"{prompt}\n\nYour answer was:\n{completion.text}\n\n{fix}"
            completion = session.ask(fix, settings, replace(options, new=False, system=None), renderer())


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
