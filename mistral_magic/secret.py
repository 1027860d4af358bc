"""The API key, held in one object that never formats itself into text."""

from __future__ import annotations

import json
import re
from urllib.parse import quote, quote_plus

MIN_SECRET_LENGTH = 8
"""Shorter values are not masked: a dummy key ("k", "EMPTY", "ollama": local and OpenAI-compatible
servers take any key) or an everyday value ("1", "true", "en"). Masking them would change every
occurrence of those letters in a reply ("link" shown as "lin****")."""

_PERCENT = re.compile(r"%[0-9A-F]{2}")


def can_be_secret(value: str) -> bool:
    """Whether ``value`` is long enough to be a secret worth masking (see :data:`MIN_SECRET_LENGTH`)."""
    return len(value) >= MIN_SECRET_LENGTH


def encoded_forms(value: str) -> tuple[str, ...]:
    """``value`` as text can carry it, longest first: as it is, backslash-escaped in a JSON or Python
    string (an echoed request body, a repr in an error message), and URL-encoded (a query string,
    a connection URL), with upper- or lower-case hex."""
    escaped = json.dumps(value)[1:-1]
    urls = (quote(value, safe=""), quote(value), quote_plus(value))
    forms = (
        value,
        escaped,
        escaped.replace("/", "\\/"),  # some servers escape "/" too
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        value.replace("\\", "\\\\").replace("'", "\\'"),  # in single quotes whatever repr chose
        *urls,
        *(_PERCENT.sub(lambda m: m.group(0).lower(), url) for url in urls),
    )
    return tuple(sorted(dict.fromkeys(forms), key=len, reverse=True))


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
        self._forms = encoded_forms(value) if can_be_secret(value) else ()

    def reveal(self) -> str:
        """The real value; only the HTTP layer should call this."""
        return self._value

    def masked(self) -> str:
        """A mask that shows that a key is set and nothing of it."""
        return "****" if self._value else ""

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the key (also escaped or URL-encoded) replaced by a mask;
        ``text`` as it is for a key too short to be a secret (a dummy key of a local server)."""
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
