"""The API key, held in one object that never formats itself into text."""

from __future__ import annotations

import json


def key_problem(value: str) -> str | None:
    """Why ``value`` cannot be an API key (whitespace, a control or non-ASCII character), or None.

    Such a key is a paste accident (a zero-width space, a newline); sent, it would fail deep in the
    HTTP layer. The message never quotes the key.
    """
    for position, char in enumerate(value, 1):
        if not ("!" <= char <= "~"):
            return (
                f"character {position} of {len(value)} is whitespace, a control or a non-ASCII character "
                "(a key is printable ASCII without whitespace)"
            )
    return None


class Secret:
    """A string that refuses to show itself: repr, str and format all mask it."""

    __slots__ = ("_forms", "_value")

    def __init__(self, value: str):
        self._value = value
        escaped = json.dumps(value)[1:-1]  # as a JSON string would carry it (an echoed request body)
        self._forms = tuple(dict.fromkeys((value, escaped, escaped.replace("/", "\\/")))) if value else ()

    def reveal(self) -> str:
        """The real value; only the HTTP layer should call this."""
        return self._value

    def masked(self) -> str:
        """A mask that shows that a key is set and nothing of it."""
        return "****" if self._value else ""

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the key (also JSON-escaped) replaced by a mask."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, "****")
        return text

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({self.masked()!r})"

    __str__ = masked

    def __format__(self, spec: str) -> str:
        return self.masked()

    def __reduce__(self):
        raise TypeError("the API key cannot be pickled or saved")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))
