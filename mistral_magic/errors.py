"""The exception hierarchy: every failure a user can meet, each with a one-line, actionable message.

Exceptions shown in a notebook use IPython's ``_render_traceback_`` hook, so the cell fails
("Run All" stops) but the user sees one line instead of a wall of frames.
"""

from __future__ import annotations

from typing import Any


class MistralMagicError(Exception):
    """Base class: the message is one line a user can act on."""

    label = "MistralError"

    def _render_traceback_(self) -> list[str]:
        from .render.controls import strip_controls  # the message may quote the server or the model
        from .textsafe import encodable

        return [f"\x1b[0;31m{self.label}\x1b[0m: {strip_controls(encodable(str(self)))}"]


class UsageError(MistralMagicError):
    """A bad flag, value or subcommand; nothing was sent."""

    label = "UsageError"


class MissingKeyError(MistralMagicError):
    """No API key is configured."""

    label = "MissingKey"


class ApiError(MistralMagicError):
    """The server answered with an HTTP error status."""

    def __init__(self, message: str, *, status: int, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"MistralError {self.status}"


class BadRequestError(ApiError):
    """400: the server's own message says what is wrong (unknown model, prompt too long)."""


class AuthenticationError(ApiError):
    """401: the key was rejected."""


class PermissionDeniedError(ApiError):
    """403: the key may not use this model or feature."""


class NotFoundError(ApiError):
    """404: most likely a wrong base URL."""


class UnprocessableError(ApiError):
    """422: a request field was rejected."""


class RateLimitError(ApiError):
    """429 that persisted through every retry."""


class ServerError(ApiError):
    """5xx that persisted through every retry."""


class ConnectionFailedError(MistralMagicError):
    """DNS failure, connection refused or reset before any reply."""

    label = "ConnectionError"


class RequestTimeoutError(MistralMagicError):
    """No answer (or no next chunk) within the configured timeout."""

    label = "Timeout"


class StreamError(MistralMagicError):
    """The reply stream broke after it started; ``partial`` holds the text that arrived."""

    label = "StreamError"

    def __init__(self, message: str, *, partial: str = ""):
        super().__init__(message)
        self.partial = partial


class ReplyInterrupted(MistralMagicError):
    """The user interrupted the kernel while a reply streamed; the partial reply is kept."""

    label = "Interrupted"


class LocalServerError(MistralMagicError):
    """The local model server (``%mistral local``) could not be started, or stopped working."""

    label = "LocalServer"


class JsonReplyError(MistralMagicError):
    """``--json`` was asked for but the reply is not valid JSON (the text is still kept)."""

    label = "JsonError"
