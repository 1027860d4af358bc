"""Token usage, one type: what one request was billed (:class:`TokenUsage`, read from the API's
``usage`` object) and what a chat used in all (:class:`ChatUsage`). A leaf: the HTTP layer, the
conversation and the provenance records all use it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TokenUsage:
    """The tokens of one request (``cached_tokens``: the part of the prompt served from Mistral's
    prompt cache, from ``prompt_tokens_details.cached_tokens``, when the server says)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        """As the API writes it (for the cache, chat files and the notebook's provenance)."""
        data = {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}
        data["total_tokens"] = self.total_tokens
        if self.cached_tokens:
            data["cached_tokens"] = self.cached_tokens
        return data

    @classmethod
    def of(cls, value: Any) -> TokenUsage | None:
        """The usage in an API ``usage`` object, or one :meth:`to_dict` wrote; ``None`` when there is
        none. Counts that are not whole numbers are ignored: a malformed usage never costs a reply."""
        if not isinstance(value, dict):
            return None
        details = value.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else value.get("cached_tokens")
        return cls(_count(value.get("prompt_tokens")), _count(value.get("completion_tokens")), _count(cached))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def add_usage(a: TokenUsage | None, b: TokenUsage | None) -> TokenUsage | None:
    """Two usages added up (``None`` when neither has any)."""
    if a is None or b is None:
        return a or b
    return a + b


@dataclass
class ChatUsage:
    """Tokens billed to one chat, and its requests. Undo and reset do not refund them."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, usage: TokenUsage | None) -> None:
        self.requests += 1
        if usage is not None:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def sum(cls, usages: Iterable[ChatUsage]) -> ChatUsage:
        """The usage of several chats together."""
        total = cls()
        for usage in usages:
            total.requests += usage.requests
            total.prompt_tokens += usage.prompt_tokens
            total.completion_tokens += usage.completion_tokens
        return total
