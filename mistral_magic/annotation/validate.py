"""Checking a reply against a ``--schema`` and asking again with the reason ("repair").

Every reply is checked by ``jsonschema`` against the strict schema that was sent (a ``pattern`` by
:mod:`.pattern`, in time linear in the reply, not by Python's backtracking ``re``); with a Pydantic
model class, Pydantic then builds the instance (and runs the class's own validators). A reply that is not JSON, misses a field, carries an extra one
or holds a value outside an enum raises :class:`SchemaReplyError` with a short reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any

from ..api.protocol import Completion, Endpoint, json_object_format
from ..errors import BadRequestError, SchemaReplyError, UnprocessableError, one_line
from ..usage import add_usage
from .jsonmode import read_json
from .pattern import linear_pattern
from .schema import Schema

if TYPE_CHECKING:
    from jsonschema import ValidationError

    from .runner import Completer

REPAIR_PROMPT = (
    "Your answer does not match the required JSON Schema: {reason}. "
    "Answer again with only a JSON object that matches the schema."
)
MAX_REASON_CHARS = 300  # a reason quotes at most this much (of a huge enum, a long value), in a repair or an error
ENUM_SHOWN = 5  # the allowed values a reason names when the enum is too long to quote whole


@cache
def _checker_class() -> Any:
    """``jsonschema``'s Draft 2020-12 validator with the ``pattern`` keyword searched by :mod:`.pattern`
    (imported when a schema is used)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from jsonschema.validators import extend

    def pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
        if validator.is_type(instance, "string") and not linear_pattern(pattern).search(instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")  # jsonschema's own message

    return extend(Draft202012Validator, {"pattern": pattern})  # type: ignore[no-untyped-call]


class Validator:
    """Checks replies against one schema; :meth:`check` gives the validated value."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self._checker = _checker_class()(schema.json_schema)

    def check(self, text: str) -> Any:
        """The validated answer in ``text``: a model instance for a model class, else a dict. The JSON
        must match the strict schema that was sent (no extra field even where Pydantic would ignore one)."""
        try:
            data = read_json(text)
        except ValueError as reason:
            preview = " ".join(text.split())[:60]
            raise SchemaReplyError(f"the reply is {reason}: {preview!r}") from None
        error = next(iter(sorted(self._checker.iter_errors(data), key=lambda e: list(e.absolute_path))), None)
        if error is not None:
            raise SchemaReplyError(_reason(error))
        return self._check_model(data) if self.schema.model is not None else data

    def usable(self, text: str) -> bool:
        try:
            self.check(text)
        except SchemaReplyError:
            return False
        return True

    def _check_model(self, data: Any) -> Any:
        from pydantic import ValidationError

        try:
            return self.schema.model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            message = _bounded(" ".join(str(first.get("msg")).split()))
            raise SchemaReplyError(f"{where}: {message}" if where else message) from None
        except Exception as exc:  # the class's own code raised something else: this answer is not accepted
            raise SchemaReplyError(f"the validation raised {_bounded(one_line(exc))}") from None


def _reason(error: ValidationError) -> str:
    """jsonschema's complaint, where it is and bounded: a long value it quotes is cut in its middle,
    so the rule it broke stays readable; an enum too long to quote is named by its size and first
    values, and any message is cut at :data:`MAX_REASON_CHARS`."""
    message = error.message
    quoted = repr(error.instance)
    if len(quoted) > 60 and quoted in message:
        message = message.replace(quoted, f"{quoted[:40]}…{quoted[-12:]}", 1)
    choices = error.validator_value if error.validator == "enum" else None
    if isinstance(choices, list) and len(message) > MAX_REASON_CHARS:
        first = ", ".join(_bounded(repr(choice), 40) for choice in choices[:ENUM_SHOWN])
        message = f"{_bounded(repr(error.instance), 60)} is not one of the {len(choices)} allowed values ({first}, ...)"
    where = ".".join(str(p) for p in error.absolute_path)
    return _bounded(f"{where}: {message}" if where else message)


def _bounded(text: str, limit: int = MAX_REASON_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def repair_messages(body: dict[str, Any], reply: str, reason: str) -> dict[str, Any]:
    """``body`` followed by the invalid reply and a message that names what was wrong."""
    messages = [
        *body["messages"],
        {"role": "assistant", "content": reply},
        {"role": "user", "content": REPAIR_PROMPT.format(reason=reason)},
    ]
    return {**body, "messages": messages}


def fallback_body(body: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """For a server that rejects the ``json_schema`` response format: ``json_object`` and the schema
    in words, appended to the last user message."""
    messages = [dict(m) for m in body["messages"]]
    last = messages[-1]
    if isinstance(last.get("content"), str):
        last["content"] = f"{last['content']}\n\n{schema.instructions()}"
    return {**body, "messages": messages, "response_format": json_object_format()}


def rejects_json_schema(error: Exception) -> bool:
    """Whether a 400/422 says the server does not take the ``json_schema`` response format."""
    if not isinstance(error, (BadRequestError, UnprocessableError)):
        return False
    text = str(error).lower()
    return "response_format" in text or "json_schema" in text


class SchemaClient:
    """A client for annotation runs that validates each answer, asks again with the reason up to
    ``repairs`` times, and falls back to ``json_object`` once a server rejects ``json_schema``.

    The answer it returns is a valid reply (its text is the JSON); otherwise it raises
    :class:`SchemaReplyError` with the last reason."""

    def __init__(self, client: Completer, validator: Validator, repairs: int):
        self.client = client
        self.validator = validator
        self.repairs = repairs
        self.repaired = 0
        self.fallback = False
        self._lock = threading.Lock()

    def complete(self, endpoint: Endpoint, body: dict[str, Any], on_retry: Any = None) -> Completion:
        sent = fallback_body(body, self.validator.schema) if self.fallback else body
        try:
            completion = self.client.complete(endpoint, sent, on_retry)
        except (BadRequestError, UnprocessableError) as error:
            if self.fallback or not rejects_json_schema(error):
                raise
            with self._lock:
                self.fallback = True
            sent = fallback_body(body, self.validator.schema)
            completion = self.client.complete(endpoint, sent, on_retry)
        return self.checked(completion, sent, lambda repair: self.client.complete(endpoint, repair, on_retry))

    def checked(
        self, completion: Completion, body: dict[str, Any], send: Callable[[dict[str, Any]], Completion]
    ) -> Completion:
        """``completion`` when valid, else the first valid repair (with the usage of every request
        summed, so ``%mistral usage`` counts the repairs); raises with the last reason."""
        usage = completion.usage

        def ask_again(last: Completion, reason: str, attempt: int) -> Completion:
            nonlocal usage
            repaired = send(repair_messages(body, last.text, reason))
            usage = add_usage(usage, repaired.usage)
            return repaired

        _, valid, repairs = until_valid(self.validator, completion, self.repairs, ask_again)
        if repairs:
            with self._lock:
                self.repaired += 1
        return replace(valid, usage=usage)


def until_valid(
    validator: Validator,
    completion: Completion,
    repairs: int,
    ask_again: Callable[[Completion, str, int], Completion],
) -> tuple[Any, Completion, int]:
    """The repair loop, for a single cell and for every item of a run: the validated value of
    ``completion``, else ``ask_again(last, reason, attempt)`` up to ``repairs`` times. Returns the
    value, the valid completion and how many repairs it took; raises :class:`SchemaReplyError`
    with the last reason."""
    attempt = 0
    while True:
        try:
            return validator.check(completion.text), completion, attempt
        except SchemaReplyError as error:
            if attempt == repairs:
                tries = f" (after {attempt} repair{'s' if attempt != 1 else ''})" if attempt else ""
                raise SchemaReplyError(f"The reply does not match the schema{tries}: {error}") from None
            attempt += 1
            completion = ask_again(completion, str(error), attempt)
