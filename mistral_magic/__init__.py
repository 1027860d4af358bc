"""mistral-magic: a streaming ``%%mistral`` cell magic for Jupyter and IPython.

``%load_ext mistral_magic`` registers the magics; nothing heavy is imported until first use (so the
entry points below import their modules when called). The exceptions of :mod:`.errors` are exported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AnnotationInterrupted,
    ApiError,
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    BatchCreationLost,
    BatchNotReady,
    BatchWaitInterrupted,
    BatchWaitLost,
    ConnectionFailedError,
    ImageError,
    InvalidSettingError,
    JsonReplyError,
    LocalNoVisionError,
    LocalServerError,
    MissingKeyError,
    MistralMagicError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RedirectRefusedError,
    ReplayMissError,
    ReplyInterrupted,
    RequestFailedError,
    RequestTimeoutError,
    SchemaReplyError,
    ServerError,
    StreamError,
    UnprocessableError,
    UsageError,
)

if TYPE_CHECKING:
    from .annotation.result import AnnotationRun
    from .interrater import Agreement
    from .render.columns import SideBySide

__version__ = "0.1.0"
__all__ = [
    "AnnotationInterrupted",
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "BadResponseError",
    "BatchCreationLost",
    "BatchNotReady",
    "BatchWaitInterrupted",
    "BatchWaitLost",
    "ConnectionFailedError",
    "ImageError",
    "InvalidSettingError",
    "JsonReplyError",
    "LocalNoVisionError",
    "LocalServerError",
    "MissingKeyError",
    "MistralMagicError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RedirectRefusedError",
    "ReplayMissError",
    "ReplyInterrupted",
    "RequestFailedError",
    "RequestTimeoutError",
    "SchemaReplyError",
    "ServerError",
    "StreamError",
    "UnprocessableError",
    "UsageError",
    "__version__",
    "agreement",
    "annotate",
    "load_ipython_extension",
    "side_by_side",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%mistral`` / ``%mistral`` in this shell (``%load_ext mistral_magic``)."""
    from .ipython.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Close the HTTP client and remove the magics (``%unload_ext mistral_magic``)."""
    from .ipython.extension import unload

    unload(ipython)


def side_by_side(**answers: str) -> SideBySide:
    """Display answers next to each other, e.g. ``side_by_side(tutor=a, critic=b)``."""
    from .render.columns import side_by_side as build

    return build(**answers)


def annotate(items: Any, template: str, **options: Any) -> AnnotationRun:
    """Label many items with one prompt template, concurrently and resumably; see
    :func:`mistral_magic.script.annotate`."""
    from .script import annotate as run

    return run(items, template, **options)


def agreement(a: Any, b: Any, **options: Any) -> Agreement:
    """Compare two label columns: counts, percent agreement, Cohen's kappa and a confusion table
    (shown as a table in a notebook); see :func:`mistral_magic.interrater.agreement`."""
    from .interrater import agreement as compare

    return compare(a, b, **options)
