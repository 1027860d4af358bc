"""Every failure a user can meet, each with a one-line, actionable message.

The hierarchy::

    MistralMagicError
    ├── UsageError                  a bad flag, value or subcommand; nothing was sent
    │   ├── ImageError              an image that cannot be sent
    │   │   └── LocalNoVisionError  an image for the local model, which reads none (the cell says so, sends nothing)
    │   └── InvalidSettingError     a setting out of range (also a traitlets TraitError, so %config refuses it)
    ├── MissingKeyError             no API key for a server that needs one
    ├── ApiError                    the server answered with an HTTP error status (``status``, ``body``)
    │   ├── BadRequestError         400
    │   ├── AuthenticationError     401
    │   ├── PermissionDeniedError   403
    │   ├── NotFoundError           404
    │   ├── UnprocessableError      422
    │   ├── RateLimitError          429, after every retry
    │   └── ServerError             5xx, after every retry
    ├── ConnectionFailedError       DNS failure, refused or reset before any reply
    ├── RequestTimeoutError         no answer (or no next chunk) in time
    ├── RequestFailedError          the request could not be built or sent (a URL httpx cannot use, a bug)
    │   └── RedirectRefusedError    the server redirected to another host (not followed)
    ├── BadResponseError            a 2xx answer that is not a usable chat-completions body
    ├── StreamError                 the reply stream broke after it started (``partial``)
    ├── ReplyInterrupted            a kernel interrupt while a reply streamed (the partial reply is kept)
    ├── ReplayMissError             strict replay: the notebook holds no saved answer for this request
    ├── AnnotationInterrupted       a kernel interrupt stopped ``--each`` / ``annotate()`` (``run``)
    ├── BatchWaitInterrupted        a kernel interrupt during ``--batch``: sending, creating, waiting, reading
    ├── BatchNotReady               ``--no-wait``: the jobs are submitted or still running
    ├── BatchWaitLost               the server stopped answering while ``--batch`` waited (the jobs run on)
    ├── BatchCreationLost           the answer to a batch job's creation never came (the job may exist)
    ├── JsonReplyError              ``--json`` reply that is not JSON
    │   └── SchemaReplyError        a ``--schema`` reply that does not match the schema (after repairs)
    └── LocalServerError            the local model server could not start, or stopped

Exceptions shown in a notebook use IPython's ``_render_traceback_`` hook, so the cell fails ("Run All"
stops) but the user sees one line instead of a wall of frames.

Hints that name a way to fix something depend on who reads them: a notebook user is told about
``%mistral key``, code calling :func:`mistral_magic.annotate` about settings and arguments. They live
in :data:`HINTS`, and :func:`hint` picks the wording for the :func:`audience` of the running code, so
the HTTP layer and the annotation engine never spell a magic command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Generic, Literal, TypeVar

from traitlets import TraitError

Audience = Literal["notebook", "python"]

# name -> (wording for a notebook user of the magics, wording for Python code)
HINTS: dict[str, tuple[str, str]] = {
    "key": (
        "set the MISTRAL_API_KEY environment variable before starting Jupyter, or run %mistral key to type it in "
        "privately (it is never stored in the notebook)",
        "set the MISTRAL_API_KEY environment variable",
    ),
    "key_rejected": (
        "Check MISTRAL_API_KEY, or run %mistral key to enter it again.",
        "Check MISTRAL_API_KEY.",
    ),
    "local": (
        "To try the magic offline with a small local model instead, run %mistral local.",
        "To use a small local model instead, set MISTRAL_BASE_URL=local.",
    ),
    "base_url": ("%mistral config base_url=...", "the base_url setting"),
    "read_timeout": ("%mistral config read_timeout=120", "the read_timeout setting"),
    "item_errors": ("see %mistral errors", "see .errors"),
    "undo": ("%mistral undo restores the chat as it was", "the chat's restore() puts it back as it was"),
    "replay_notebook": ("%mistral replay PATH.ipynb", "the replay_notebook setting"),
    "cache_clear": ("%mistral cache clear removes a broken cache file", "Deleting it lets a new one be made"),
    "chat_file": ("saved by %mistral save", "saved by ChatStore.save"),
    "models": ("%mistral models lists the server's models", "GET /models lists the server's models"),
    "local_restart": ("run %mistral local to start it again", "use base_url=local to start it again"),
    "local_vision": ("The local model (%mistral local) reads no images", "The local model reads no images"),
    "vision_model": ("(e.g. -m mistral-small-latest)", "(e.g. model='mistral-small-latest')"),
    "fresh_chat": ("--new or --once start without them", "a new chat starts without them"),
    "batch_cache": (
        "--batch keeps its results in the reply cache: drop --no-cache",
        "batch=True keeps its results in the reply cache: drop cache=False",
    ),
    "jobs_cancel": ("or cancel with %mistral jobs cancel {job}", "or cancel it through Mistral's Batch API ({job})"),
    "jobs_list": ("%mistral jobs shows how they go", "Mistral's Batch API shows how they go"),
    "json_reply": ("The text is kept in the history; ask again, or drop --json", "Ask again, or drop json=True"),
}

_audience: ContextVar[Audience] = ContextVar("mistral_magic_audience", default="python")


def hint(name: str, **values: str) -> str:
    """The wording of hint ``name`` for the code that is running now (see :func:`audience`), with
    ``values`` filled in."""
    notebook, python = HINTS[name]
    return (notebook if _audience.get() == "notebook" else python).format(**values)


def option(name: str) -> str:
    """How a message names option ``name`` (``"image"``): the cell flag ``--image`` for a notebook
    user, the keyword ``image=`` for Python code."""
    return f"--{name.replace('_', '-')}" if _audience.get() == "notebook" else f"{name}="


@contextmanager
def audience(who: Audience) -> Iterator[None]:
    """Messages created inside this block speak to ``who`` (the magics say ``"notebook"``)."""
    token = _audience.set(who)
    try:
        yield
    finally:
        _audience.reset(token)


def one_line(error: BaseException) -> str:
    """``error`` as one line: its message for ours, ``Type: message`` for any other (a user's
    validator, a library). An exception whose ``str()`` itself fails is named by its type."""
    try:
        message = " ".join(str(error).split())
    except Exception:
        message = "(its message cannot be shown)"
    if isinstance(error, MistralMagicError):
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


class MistralMagicError(Exception):
    """Base class: the message is one line a user can act on."""

    label = "MistralError"

    def _render_traceback_(self) -> list[str]:
        from .textsafe import encodable, strip_controls  # the message may quote the server or the model

        return [f"\x1b[0;31m{self.label}\x1b[0m: {strip_controls(encodable(str(self)))}"]


class UsageError(MistralMagicError):
    """A bad flag, value or subcommand; nothing was sent."""

    label = "UsageError"


class ImageError(UsageError):
    """An image that cannot be sent (kind, format, size, count), or a model that reads none; nothing was sent."""

    label = "ImageError"


class LocalNoVisionError(ImageError):
    """An image for the local model, which reads none: the cell says so and sends nothing."""


class InvalidSettingError(UsageError, TraitError):
    """A setting's value is out of range. A ``TraitError`` too, so traitlets (``%config``) rolls it back."""


class MissingKeyError(MistralMagicError):
    """No API key is configured."""

    label = "MissingKey"


class ApiError(MistralMagicError):
    """The server answered with an HTTP error status."""

    def __init__(self, message: str, *, status: int, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after: float | None = None  # seconds the server asked to wait (Retry-After), if it did
        self.label = f"MistralError {status}"


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


class RequestFailedError(MistralMagicError):
    """An unexpected failure on the request path (a URL httpx cannot use, text that cannot be
    encoded, a bug), in one line."""

    label = "RequestFailed"


class RedirectRefusedError(RequestFailedError):
    """The server redirected the request to another host; following would send the conversation there."""

    label = "Redirect"


class BadResponseError(MistralMagicError):
    """A successful status with a body that is not a chat-completions answer (not JSON, an error
    object, or cut off while it was read)."""

    label = "BadResponse"


class StreamError(MistralMagicError):
    """The reply stream broke after it started; ``partial`` holds the text that arrived."""

    label = "StreamError"

    def __init__(self, message: str, *, partial: str = ""):
        super().__init__(message)
        self.partial = partial


class ReplyInterrupted(MistralMagicError):
    """The user interrupted the kernel while a reply streamed; the partial reply is kept."""

    label = "Interrupted"


class ReplayMissError(MistralMagicError):
    """Strict replay: the notebook holds no saved answer for this request; nothing was sent."""

    label = "ReplayMiss"


RunT = TypeVar("RunT")


class AnnotationInterrupted(MistralMagicError, Generic[RunT]):
    """A kernel interrupt stopped the annotation; ``run`` holds what finished (also in the cache)."""

    label = "Interrupted"

    def __init__(self, run: RunT, *, remaining: int, total: int, in_flight: int = 0, kept: bool = True):
        message = (
            f"Stopped with {remaining} of {total} items remaining; the finished answers are kept "
            "(and cached): run it again to send only the rest."
        )
        if in_flight:
            were = "1 item was" if in_flight == 1 else f"{in_flight} items were"
            if kept:
                after = (
                    "their answers are cached as they arrive, and a re-run waits for them instead of sending them again"
                )
            else:
                after = "with the cache off, a re-run sends them again"
            message += (
                f" {were} in flight when interrupted: the server may still be generating (and billing) them; {after}."
            )
        super().__init__(message)
        self.run = run


def _jobs(job_ids: list[str]) -> str:
    named = ", ".join(job_ids)
    return f"batch job {named}" if len(job_ids) == 1 else f"batch jobs {named}"


class BatchWaitInterrupted(MistralMagicError):
    """A kernel interrupt during a ``--batch`` run: while it ``stage`` was ``"waiting"`` for the jobs
    (they keep running on the server), ``"finishing"`` their answers live, ``"reading"`` their
    results (a re-run reads them again, not paid again), ``"sending"`` requests (what was not
    created is not sent), ``"creating"`` a job (it may exist: a re-run looks for it before sending
    again) or ``"settling"`` (waiting for another run to create the job answering these items)."""

    label = "Interrupted"

    def __init__(self, job_ids: list[str], *, stage: str = "waiting"):
        jobs = _jobs(job_ids)
        keep = f" The {jobs} {'keeps' if len(job_ids) == 1 else 'keep'} running on the server." if job_ids else ""
        messages = {
            "waiting": f"Stopped waiting.{keep} Run the cell again to collect the results (nothing is sent twice)"
            + (f", {hint('jobs_cancel', job=job_ids[0])}." if job_ids else "."),
            "finishing": f"Stopped while finishing the answers of {jobs} with live requests: run the cell again "
            "to finish (the batch results are read again, not paid again).",
            "reading": f"Stopped while reading the results of {jobs}: what was read is kept; run the cell again "
            "to read the rest (they are not paid again).",
            "sending": f"Stopped while sending the batch requests: no job was created for the rest.{keep} "
            "Run the cell again to collect what was sent and send the rest.",
            "creating": f"Stopped while creating a batch job: the server may have created it.{keep} Run the cell "
            "again: it looks for that job on the server before sending anything again.",
            "settling": "Stopped waiting for another run to create the batch job answering these items: run the "
            "cell again to collect it.",
        }
        super().__init__(messages[stage])
        self.job_ids = job_ids
        self.stage = stage


class BatchNotReady(MistralMagicError):
    """``--no-wait``: the run's batch jobs are submitted (or still running, or being created by
    another run); a later run collects them."""

    label = "Batch"

    def __init__(self, job_ids: list[str], *, submitted: int = 0, new: list[str] | None = None, settling: int = 0):
        running = [job_id for job_id in job_ids if job_id not in (new or [])]
        parts = [f"Submitted {submitted} requests as {_jobs(new or [])}"] if submitted else []
        if running:
            parts.append(f"the {_jobs(running)} {'is' if len(running) == 1 else 'are'} still running")
        if settling:
            parts.append(f"{settling} requests are in a batch job another run is creating")
        state = "; ".join(parts) or "Nothing is running"
        super().__init__(
            f"{state[0].upper()}{state[1:]}: run the cell again to collect the results ({hint('jobs_list')})."
        )
        self.job_ids = job_ids


class BatchWaitLost(MistralMagicError):
    """The server stopped answering while a run waited for its batch jobs; they keep running there."""

    label = "BatchWaitLost"

    def __init__(self, job_ids: list[str], reason: str):
        named = ", ".join(job_ids)
        jobs = f"The batch job {named} keeps" if len(job_ids) == 1 else f"The batch jobs {named} keep"
        super().__init__(
            f"Stopped waiting: the server did not answer ({reason.rstrip('.')}). {jobs} running on the server: "
            "run the cell again to collect the results (nothing is sent twice)."
        )
        self.job_ids = job_ids


class BatchCreationLost(MistralMagicError):
    """The answer to a batch job's creation never came (a lost connection, a timeout, a 5xx): the
    job may exist. A re-run looks for it on the server (by the metadata naming its run) first."""

    label = "BatchCreationLost"

    def __init__(self, reason: str, job_ids: list[str]):
        keep = (
            f" The {_jobs(job_ids)} created before {'keeps' if len(job_ids) == 1 else 'keep'} running."
            if job_ids
            else ""
        )
        super().__init__(
            f"The answer to a batch job's creation was lost ({reason.rstrip('.')}): the job may exist.{keep} "
            "Run the cell again: it looks for that job on the server before sending anything again."
        )
        self.job_ids = job_ids


class JsonReplyError(MistralMagicError):
    """``--json`` was asked for but the reply is not valid JSON (the text is still kept)."""

    label = "JsonError"


class SchemaReplyError(JsonReplyError):
    """A ``--schema`` reply that is not JSON or does not match the schema, after every repair."""

    label = "SchemaError"


class LocalServerError(MistralMagicError):
    """The local model server (``%mistral local``) could not be started, or stopped working."""

    label = "LocalServer"
