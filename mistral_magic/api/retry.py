"""Retries: the attempts of one request, and how long to wait (the server's own hint when it gives one, else backoff)."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping

from .protocol import Endpoint


def server_hint(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds asked for by ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    after = headers.get("retry-after")
    if not after:
        return None
    try:
        return max(0.0, float(after))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(after)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: ``base * 2**attempt``, capped, minus up to 25%."""
    return min(base * 2.0**attempt, cap) * (1 - 0.25 * random.random())


def retry_delay(attempt: int, headers: Mapping[str, str], *, base: float, cap: float) -> float:
    """The wait before retry number ``attempt + 1``; a server hint wins but never exceeds ``cap``."""
    hint = server_hint(headers)
    if hint is not None:
        return min(hint, cap)
    return backoff_delay(attempt, base, cap)


RetryCallback = Callable[[int, int, float, str], None]
"""Called before each retry with (attempt number, attempts allowed, delay in s, reason)."""


class Attempts:
    """The attempts of one request: the one place that decides whether to retry, how long to
    wait, tells ``on_retry`` and waits (or pauses every worker sharing the pacer, after a 429)."""

    def __init__(self, endpoint: Endpoint, on_retry: RetryCallback | None):
        self.endpoint = endpoint
        self.on_retry = on_retry
        self.allowed = endpoint.max_retries + 1
        self.done = 0  # attempts that failed so far

    def retry_or_raise(self, error: Exception, reason: str, headers: Mapping[str, str] | None = None) -> None:
        """Wait before the next attempt, or raise ``error`` when none is left."""
        if self.done + 1 >= self.allowed:
            raise error
        endpoint = self.endpoint
        delay = retry_delay(self.done, headers or {}, base=endpoint.retry_base_delay, cap=endpoint.retry_max_wait)
        if self.on_retry is not None:
            self.on_retry(self.done + 2, self.allowed, delay, reason)
        if endpoint.pacer is not None and reason == "HTTP 429":
            endpoint.pacer.back_off(delay)  # a rate limit pauses every worker, not only this one
        else:
            time.sleep(delay)
        self.done += 1
