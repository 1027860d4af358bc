"""Failures of the request path as one-line errors: unexpected exceptions, timeouts, lost connections."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from .. import errors
from ..errors import hint
from .protocol import Endpoint


def request_failed(endpoint: Endpoint, what: str) -> errors.MistralMagicError:
    return errors.RequestFailedError(f"The request to {endpoint.base_url} failed: {what}")


@contextmanager
def failures_in_one_line(
    endpoint: Endpoint, fail: Callable[[Endpoint, str], errors.MistralMagicError] = request_failed
) -> Iterator[None]:
    """Any exception of the request path that is not one of ours (a URL httpx cannot use, a body that
    cannot be encoded, a bug) becomes one line, by default a :class:`errors.RequestFailedError`, its
    frames dropped."""
    try:
        yield
    except errors.MistralMagicError:
        raise
    except Exception as exc:
        failure = fail(endpoint, endpoint.api_key.redact(f"{type(exc).__name__}: {exc}".splitlines()[0]))
        exc.__traceback__ = None  # its frames (httpx's included) stay out of reach of %debug and %tb
        raise failure from None


def timeout_error(endpoint: Endpoint, exc: httpx.TimeoutException) -> errors.RequestTimeoutError:
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return errors.RequestTimeoutError(
            f"Could not connect to {endpoint.base_url} within {endpoint.connect_timeout:g} s; "
            "check the base URL and your network (setting connect_timeout)."
        )
    return errors.RequestTimeoutError(
        f"No answer from {endpoint.base_url} for {endpoint.read_timeout:g} s; try again, or raise "
        f"the limit with {hint('read_timeout')}."
    )


def connection_error(endpoint: Endpoint, exc: httpx.TransportError) -> errors.ConnectionFailedError:
    text = str(exc).lower()
    if "name or service" in text or "nodename" in text or "name resolution" in text or "getaddrinfo" in text:
        why = "the host name could not be resolved"
    elif "refused" in text:
        why = "the connection was refused"
    else:
        why = "the connection failed"
    return errors.ConnectionFailedError(
        f"Cannot reach {endpoint.base_url}: {why}. Check the base URL (MISTRAL_BASE_URL or "
        f"{hint('base_url')}) and your network."
    )


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:g} MB"
