"""Mistral's Batch API (docs/mistral-api.md, "Batch API"): upload a JSONL file, create, get, list and cancel
jobs, and read a results file, over the :class:`ChatClient`'s pool and error mapping.

A results file is read line by line as it downloads, and every line has a defined outcome:

- a 200 ``response`` with a chat completion: a :class:`BatchResult` with its completions;
- a non-200 ``response`` or a top-level ``error``: a :class:`BatchResult` with the error's one line
  (so is a 200 whose body is not a chat completion: the item is to be sent again);
- a ``custom_id`` already read by the same :class:`ResultReader`: skipped, the first line wins
  (counted in ``duplicates``);
- a ``custom_id`` that the run did not send (when ``expected`` is given): skipped (``unknown``);
- a line that is not a JSON object with a string ``custom_id`` and a response or an error: skipped
  (``malformed``, its line number kept); so is a line over ``max_line_bytes`` (``too_long``), read
  past without being kept.

A file is read once through, in bounded pieces (gzip included), up to a decoded size that grows with
the job's requests: past it, the download stops with a one-line error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn
from urllib.parse import quote

from .. import errors
from . import protocol
from .bodylimit import BodyNotDecodable, BodyTooLarge, iter_body
from .client import ChatClient, Form
from .failures import failures_in_one_line, megabytes
from .protocol import Completion, Endpoint
from .retry import Attempts

CHAT_ENDPOINT = "/v1/chat/completions"
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"})
MAX_TIMEOUT_HOURS = 168
KEPT_LINE_NUMBERS = 20
MAX_RESULT_LINE = 32 * 1024 * 1024  # one result: an answer and its choices
FILE_BYTES_BASE = 64 * 1024 * 1024  # a results file decodes to at most this, plus RESULT_BYTES per request
RESULT_BYTES = 1024 * 1024
LIST_PAGE = 100


@dataclass(frozen=True)
class UploadedFile:
    """A file stored by the server (``POST /v1/files``)."""

    id: str
    bytes: int | None
    num_lines: int | None


@dataclass(frozen=True)
class BatchJob:
    """A batch job as the server reports it; ``done`` and ``total`` are its progress counters."""

    id: str
    status: str
    model: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    created_at: int | None = None
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    output_file: str | None = None
    error_file: str | None = None
    errors: tuple[str, ...] = ()

    @property
    def terminal(self) -> bool:
        """The job will not change any more (SUCCESS, FAILED, TIMEOUT_EXCEEDED or CANCELLED)."""
        return self.status in TERMINAL_STATUSES

    @property
    def done(self) -> int:
        return self.succeeded + self.failed


@dataclass(frozen=True)
class BatchResult:
    """One request's result: its completions (one per choice), or ``error``, a one-line reason."""

    custom_id: str
    completions: tuple[Completion, ...] = ()
    error: str | None = None

    @property
    def completion(self) -> Completion:
        """The first choice (only for a result without ``error``)."""
        return self.completions[0]


@dataclass
class ResultTally:
    """What a :class:`ResultReader` skipped, and how many results it gave."""

    results: int = 0
    duplicates: int = 0
    unknown: int = 0
    malformed: int = 0
    malformed_lines: list[int] = field(default_factory=list)  # the first few line numbers (1-based)
    too_long: int = 0  # lines over the size limit (counted in ``malformed`` too)


class ResultReader:
    """Turns the lines of results and error files into :class:`BatchResult`, one per ``custom_id``."""

    def __init__(self, endpoint: Endpoint, expected: Container[str] | None = None):
        self._endpoint = endpoint
        self._expected = expected
        self._seen: set[str] = set()
        self.tally = ResultTally()

    def read(self, lines: Iterable[bytes | None]) -> Iterator[BatchResult]:
        """Results from ``lines`` (``None`` stands for a line too long to keep)."""
        for number, line in enumerate(lines, 1):
            if line is not None and not line.strip():
                continue
            result = None if line is None else self._result(line)
            if result is None:
                self.tally.too_long += line is None
                self.tally.malformed += 1
                if len(self.tally.malformed_lines) < KEPT_LINE_NUMBERS:
                    self.tally.malformed_lines.append(number)
            elif self._expected is not None and result.custom_id not in self._expected:
                self.tally.unknown += 1
            elif result.custom_id in self._seen:
                self.tally.duplicates += 1
            else:
                self._seen.add(result.custom_id)
                self.tally.results += 1
                yield result

    def _result(self, line: bytes) -> BatchResult | None:
        try:  # the key masked, should the server echo it
            item = json.loads(self._endpoint.api_key.redact(line.decode("utf-8", errors="replace")))
        except (ValueError, RecursionError):
            return None
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        if not isinstance(custom_id, str):
            return None
        response, error = item.get("response"), item.get("error")
        if error:
            return BatchResult(custom_id, error=_one_line(protocol.error_message({"error": error})))
        if not isinstance(response, dict) or not isinstance(status := response.get("status_code"), int):
            return None
        body = response.get("body")
        if status != 200:
            return BatchResult(custom_id, error=_one_line(f"HTTP {status}: {protocol.error_message(body)}"))
        try:
            if not isinstance(body, dict):
                raise errors.BadResponseError("the result is not a chat completion")
            return BatchResult(custom_id, tuple(protocol.completions_from(body, self._endpoint)))
        except errors.MistralMagicError as exc:
            return BatchResult(custom_id, error=_one_line(f"unreadable reply: {exc}"))


class BatchJobs:
    """The files and batch-jobs endpoints of one server (``endpoint``), on ``client``'s connections."""

    def __init__(
        self,
        client: ChatClient,
        endpoint: Endpoint,
        *,
        max_line_bytes: int = MAX_RESULT_LINE,
        file_bytes_base: int = FILE_BYTES_BASE,
    ):
        self._client = client
        self._endpoint = replace(endpoint, base_url=versioned(endpoint.base_url))
        self.max_line_bytes = max_line_bytes
        self.file_bytes_base = file_bytes_base

    def upload(self, path: str | os.PathLike[str], filename: str | None = None) -> UploadedFile:
        """Upload a JSONL file of requests (``purpose=batch``), streamed from disk."""
        name = filename or os.path.basename(os.fspath(path))
        with open(path, "rb") as handle:
            form = Form(fields={"purpose": "batch"}, files={"file": (name, handle)})
            payload = self._client.json_request(self._endpoint, "POST", "files", None, form=form)
        with failures_in_one_line(self._endpoint):
            file_id = payload.get("id")
            if not isinstance(file_id, str) or not file_id:
                self._unexpected("file", payload)
            return UploadedFile(file_id, _int_or_none(payload.get("bytes")), _int_or_none(payload.get("num_lines")))

    def create(
        self, input_files: list[str], model: str, metadata: Mapping[str, str], timeout_hours: int = 24
    ) -> BatchJob:
        """Create a job on uploaded files. Sent once, never retried: a retry after a lost answer
        could start a second, paid job."""
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise errors.UsageError("Batch job metadata takes text keys and values only.")
        if not 1 <= timeout_hours <= MAX_TIMEOUT_HOURS:
            raise errors.UsageError(f"A batch job's timeout is 1 to {MAX_TIMEOUT_HOURS} hours, not {timeout_hours}.")
        body = {
            "input_files": list(input_files),
            "endpoint": CHAT_ENDPOINT,
            "model": model,
            "metadata": dict(metadata),
            "timeout_hours": timeout_hours,
        }
        return self._job(self._client.json_request(self._endpoint, "POST", "batch/jobs", body, retry=False))

    def get(self, job_id: str) -> BatchJob:
        return self._job(self._client.json_request(self._endpoint, "GET", _job_path(job_id), None))

    def cancel(self, job_id: str) -> BatchJob:
        """Ask the server to cancel a job (it goes through CANCELLATION_REQUESTED)."""
        return self._job(self._client.json_request(self._endpoint, "POST", _job_path(job_id) + "/cancel", None))

    def list(self, status: str | None = None, page: int = 0, page_size: int = 100) -> tuple[list[BatchJob], int]:
        """One page of the workspace's jobs, newest first, and how many there are in all."""
        query = f"page={page}&page_size={page_size}" + (f"&status={quote(status, safe='')}" if status else "")
        payload = self._client.json_request(self._endpoint, "GET", f"batch/jobs?{query}", None)
        with failures_in_one_line(self._endpoint):
            data = payload.get("data")
            if not isinstance(data, list):
                self._unexpected("job list", payload)
            total = _int_or_none(payload.get("total"))
        return [self._job(item) for item in data], total if total is not None else len(data)

    def confirm_gone(self, missing: errors.NotFoundError) -> None:
        """Make sure a 404 on a job or a file means the server does not know it: its job list
        answers. Else the 404 says the base URL is wrong, and ``missing`` is raised."""
        try:
            self.list(page_size=1)
        except errors.NotFoundError:
            raise missing from None

    def find(self, metadata: Mapping[str, str], since: float, page_size: int = LIST_PAGE) -> BatchJob | None:
        """The newest job whose metadata holds every item of ``metadata``: the job list is read newest
        first, page after page, until a page of jobs all created before ``since`` (Unix time)."""
        page = 0
        while True:
            jobs, total = self.list(page=page, page_size=page_size)
            for job in jobs:
                if all(job.metadata.get(key) == value for key, value in metadata.items()):
                    return job
            older = all(job.created_at is not None and job.created_at < since for job in jobs)
            page += 1
            if not jobs or older or page * page_size >= total:
                return None

    def lines(self, file_id: str, max_bytes: int | None = None) -> Iterator[bytes | None]:
        """The lines of a stored file (a job's results or errors) as they download, ``None`` for a
        line over ``max_line_bytes``; at most ``max_bytes`` decoded. Closing the iterator closes the
        connection."""
        endpoint = self._endpoint
        limit = self.file_bytes_base if max_bytes is None else max_bytes
        with failures_in_one_line(endpoint):
            url = protocol.endpoint(endpoint.base_url, f"files/{quote(file_id, safe='')}/content")
            response = self._client.send_with_retries(endpoint, "GET", url, None, Attempts(endpoint, None))
        try:
            with failures_in_one_line(endpoint, _download_failed):
                try:
                    yield from split_lines(iter_body(response, limit), self.max_line_bytes)
                except BodyTooLarge:
                    raise errors.BadResponseError(
                        f"The file {file_id} from {endpoint.base_url} decodes to over {megabytes(limit)} "
                        "(more than its job's results can be): reading stopped."
                    ) from None
                except BodyNotDecodable as exc:
                    raise errors.BadResponseError(f"The file {file_id} from {endpoint.base_url}: {exc}.") from None
        finally:
            response.close()

    def results(
        self, job: BatchJob, expected: Container[str] | None = None
    ) -> tuple[ResultReader, Iterator[BatchResult]]:
        """A job's results, output file then error file, read as they download (see the module's
        rules); the reader's ``tally`` counts what was skipped."""
        reader = ResultReader(self._endpoint, expected)
        limit = self.file_bytes_base + RESULT_BYTES * max(job.total, 1)

        def every_line() -> Iterator[bytes | None]:
            for file_id in (job.output_file, job.error_file):
                if file_id:
                    yield from self.lines(file_id, limit)

        return reader, reader.read(every_line())

    def _job(self, payload: Any) -> BatchJob:
        with failures_in_one_line(self._endpoint):
            if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
                self._unexpected("batch job", payload)
            status = payload.get("status")
            metadata = payload.get("metadata")
            reported = payload.get("errors")
            return BatchJob(
                id=payload["id"],
                status=status if isinstance(status, str) else "UNKNOWN",
                model=protocol.str_or_none(payload.get("model")),
                metadata={k: v for k, v in metadata.items() if isinstance(v, str)}
                if isinstance(metadata, dict)
                else {},
                created_at=_int_or_none(payload.get("created_at")),
                total=_int_or_none(payload.get("total_requests")) or 0,
                succeeded=_int_or_none(payload.get("succeeded_requests")) or 0,
                failed=_int_or_none(payload.get("failed_requests")) or 0,
                output_file=protocol.str_or_none(payload.get("output_file")),
                error_file=protocol.str_or_none(payload.get("error_file")),
                errors=tuple(
                    _one_line(protocol.error_message(item)) for item in (reported if isinstance(reported, list) else [])
                ),
            )

    def _unexpected(self, what: str, payload: Any) -> NoReturn:
        shown = json.dumps(payload)[:80]
        raise errors.BadResponseError(
            f"The server at {self._endpoint.base_url} sent a {what} of an unexpected shape: {shown}"
        )


def versioned(base_url: str) -> str:
    """Where the ``/v1/files`` and ``/v1/batch/jobs`` endpoints are: the base URL, with ``/v1`` added
    when it lacks it (chat completions take the base as given, with or without ``/v1``)."""
    base = base_url.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


def _job_path(job_id: str) -> str:
    return "batch/jobs/" + quote(job_id, safe="")


def split_lines(pieces: Iterable[bytes], max_line: int) -> Iterator[bytes | None]:
    """The lines of a byte stream (without their ``\\n``), in time linear in its size however long a
    line is; a line longer than ``max_line`` is read past and given as ``None``."""
    held: list[bytes] = []  # the start of the current line
    size = 0
    too_long = False
    for piece in pieces:
        *ends, rest = piece.split(b"\n")
        for end in ends:
            if too_long or size + len(end) > max_line:
                yield None
            else:
                yield b"".join([*held, end]) if held else end
            held, size, too_long = [], 0, False
        if too_long or size + len(rest) > max_line:
            held, size, too_long = [], 0, True
        elif rest:
            held.append(rest)
            size += len(rest)
    if too_long:
        yield None
    elif held:
        yield b"".join(held)


def _download_failed(endpoint: Endpoint, what: str) -> errors.MistralMagicError:
    return errors.BadResponseError(f"The download from {endpoint.base_url} broke off: {what}. Run the cell again.")


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
