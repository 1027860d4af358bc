"""How long to wait before retrying: the server's own hint when it gives one, else backoff."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping


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
