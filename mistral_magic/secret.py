"""The API key, held in one object that never formats itself into text."""

from __future__ import annotations


class Secret:
    """A string that refuses to show itself: repr, str and format all mask it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The real value; only the HTTP layer should call this."""
        return self._value

    def masked(self) -> str:
        """A mask that shows that a key is set and nothing of it."""
        return "****" if self._value else ""

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced by a mask."""
        return text.replace(self._value, "****") if self._value else text

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
