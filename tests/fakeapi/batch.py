"""Mistral's files and batch-jobs endpoints (docs/mistral-api.md, "Batch API"), faked in memory.

Jobs move QUEUED -> RUNNING -> a terminal status over scripted, fast time (``queued_seconds`` then
``running_seconds``), their counters growing as they run. Each request of a job is answered when the
job is created, exactly as a live chat completion would be (checked, then the script queue and rules):
a :class:`Reply` (or ``n`` of them) is a 200 line of the output file, an :class:`ErrorReply` a line of
the error file. The output file comes in shuffled order. ``outcomes`` scripts how the next jobs end:
``SUCCESS``, ``FAILED`` (nothing kept), ``TIMEOUT_EXCEEDED`` (the first half of the results kept) or
``CANCELLED``; a cancel request keeps what was done by then. ``creation_errors`` answers the next job
creations with errors (a 429), ``poll_errors`` the next looks at a job. ``lost_creations`` creates the
next jobs but drops the connection instead of answering. ``gates`` holds answers until an event is
set: ``"upload"`` (the file is stored), ``"create"`` (the job is created) and ``"download"`` (after the
first piece of a file). :meth:`expire` forgets a job, as Mistral does once it has expired (a 404 from
then on). A file stored with an ``encoding`` is served as it is, with that ``Content-Encoding``.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from .batchshapes import detail, job_field_errors, parse_multipart, request_line_errors, unprocessable
from .shapes import ErrorReply, Reply, completion_object, default_error_body, dumps

FILES_PATH = "/v1/files"
JOBS_PATH = "/v1/batch/jobs"
TERMINAL = ("SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED")
MAX_INLINE_REQUESTS = 10_000
DOWNLOAD_PIECE = 1 << 16


@dataclass
class Answer:
    """What the HTTP handler sends: a JSON object, or raw bytes served in chunks."""

    status: int
    payload: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    lost: bool = False  # drop the connection instead of answering
    gate: threading.Event | None = None  # the pieces after the first wait for it

    def pieces(self) -> Iterator[bytes]:
        raw = self.raw or b""
        for start in range(0, len(raw), DOWNLOAD_PIECE):
            if start and self.gate is not None:
                self.gate.wait()
            yield raw[start : start + DOWNLOAD_PIECE]


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int
    num_lines: int | None = None
    sample_type: str = "batch_request"
    source: str = "upload"
    encoding: str | None = None  # the content is stored encoded (gzip): served with Content-Encoding

    def entry(self) -> dict:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "sample_type": self.sample_type,
            "source": self.source,
            "num_lines": self.num_lines,
        }


@dataclass
class Job:
    id: str
    request: dict
    lines: list[tuple[dict, bool]]  # (output line, succeeded), in input order
    outcome: str
    created: float
    inline: bool
    cancelled_at: float | None = None
    output_file: str | None = None
    error_file: str | None = None
    finished: bool = False
    started_at: int | None = None
    completed_at: int | None = None


def _unprocessable(details: list[dict]) -> Answer:
    return Answer(422, unprocessable(details))


def _error_answer(error: ErrorReply) -> Answer:
    payload = error.body if error.body is not None else default_error_body(error.status, None)
    return Answer(error.status, payload, headers=dict(error.headers))


class FakeBatch:
    """The files and batch-jobs state of one fake server; ``answer`` gives a chat request what answers it
    live (its scripted reply, a list of replies for ``n`` choices, or the error a refused request gets)."""

    def __init__(self, answer: Callable[[Any], Any]) -> None:
        self._answer = answer
        self._lock = threading.Lock()
        self.files: dict[str, StoredFile] = {}
        self.jobs: dict[str, Job] = {}
        self.queued_seconds = 0.05
        self.running_seconds = 0.2
        self.outcomes: deque[str] = deque()  # how the next jobs end (default SUCCESS)
        self.failed_message = "Internal error while processing the batch"
        self.creation_errors: deque[ErrorReply] = deque()  # answers to the next job creations
        self.poll_errors: deque[ErrorReply] = deque()  # answers to the next looks at one job
        self.lost_creations = 0  # the next job creations whose answer is lost (the job exists)
        self.gates: dict[str, threading.Event] = {}  # "upload", "create", "download": answers wait for them
        self.error_line_style = "response"  # or "error": a top-level {"code","message"} with no response
        self.max_file_bytes = 512 * 1024 * 1024
        self.shuffle = random.Random(13)

    def handles(self, route: str) -> bool:
        return route == FILES_PATH or route.startswith((FILES_PATH + "/", JOBS_PATH))

    def handle(self, method: str, path: str, content_type: str, body: bytes) -> Answer:
        route, _, query = path.partition("?")
        parts = route.strip("/").split("/")  # v1 files ID content | v1 batch jobs ID cancel
        params = parse_qs(query)
        if route == FILES_PATH and method == "POST":
            return self.upload(content_type, body)
        if len(parts) == 4 and parts[1] == "files" and parts[3] == "content" and method == "GET":
            return self.download(parts[2])
        if route == JOBS_PATH and method == "POST":
            return self.create(body)
        if route == JOBS_PATH and method == "GET":
            return self.list_jobs(params)
        if len(parts) == 4 and parts[1:3] == ["batch", "jobs"] and method == "GET":
            return self.get(parts[3], params.get("inline") == ["true"])
        if len(parts) == 5 and parts[1:3] == ["batch", "jobs"] and parts[4] == "cancel" and method == "POST":
            return self.cancel(parts[3])
        return Answer(404, {"detail": "Not Found"})

    # -- files ---------------------------------------------------------------------------------

    def upload(self, content_type: str, body: bytes) -> Answer:
        if not content_type.lower().startswith("multipart/form-data"):
            return _unprocessable([detail("missing", ["body", "file"], "Field required", None)])
        fields = parse_multipart(content_type, body)
        details = [
            detail("missing", ["body", name], "Field required", None) for name in ("file",) if name not in fields
        ]
        purpose = fields.get("purpose", (None, b"fine-tune"))[1].decode("utf-8", "replace")
        if purpose not in ("batch", "fine-tune", "ocr"):
            details.append(
                detail("enum", ["body", "purpose"], "Input should be 'fine-tune', 'batch' or 'ocr'", purpose)
            )
        if details:
            return _unprocessable(details)
        filename, content = fields["file"]
        if len(content) > self.max_file_bytes:
            return Answer(413, {"object": "error", "message": "File too large", "type": "invalid_request_error"})
        lines = content.splitlines()
        if purpose == "batch":
            seen: set[str] = set()
            for number, line in enumerate((line for line in lines if line.strip()), 1):
                details = request_line_errors(number, line)
                custom_id = None if details else json.loads(line)["custom_id"]
                if custom_id in seen:
                    loc = ["file", f"line {number}", "custom_id"]
                    details = [detail("value_error", loc, "Duplicate custom_id", custom_id)]
                if details:
                    return _unprocessable(details)
                seen.add(str(custom_id))
        stored = StoredFile(str(uuid.uuid4()), filename or "upload.jsonl", purpose, content, int(time.time()))
        stored.num_lines = sum(1 for line in lines if line.strip())
        with self._lock:
            self.files[stored.id] = stored
        self._pass("upload")
        return Answer(200, stored.entry())

    def _pass(self, gate: str) -> None:
        """Wait at ``gate`` while the test holds it closed."""
        event = self.gates.get(gate)
        if event is not None:
            event.wait()

    def download(self, file_id: str) -> Answer:
        with self._lock:
            for job in self.jobs.values():
                self._advance(job, time.monotonic())
            stored = self.files.get(file_id)
        if stored is None:
            return Answer(404, {"detail": "File not found"})
        headers = {"Content-Type": "application/octet-stream"}
        if stored.encoding:
            headers["Content-Encoding"] = stored.encoding
        return Answer(200, raw=stored.content, headers=headers, gate=self.gates.get("download"))

    # -- jobs ----------------------------------------------------------------------------------

    def create(self, body: bytes) -> Answer:
        if self.creation_errors:
            return _error_answer(self.creation_errors.popleft())
        try:
            data = json.loads(body)
        except ValueError:
            return _unprocessable([detail("json_invalid", ["body", 0], "JSON decode error", {})])
        if not isinstance(data, dict):
            return _unprocessable([detail("dict_type", ["body"], "Input should be a valid dictionary", data)])
        details, requests = self._job_errors(data)
        if details:
            return _unprocessable(details)
        lines = [self._run_one(item["custom_id"], {"model": data["model"], **item["body"]}) for item in requests]
        job = Job(
            str(uuid.uuid4()),
            {"timeout_hours": 24, "metadata": None, **data},
            lines,
            self.outcomes.popleft() if self.outcomes else "SUCCESS",
            time.monotonic(),
            inline="requests" in data,
        )
        job.request["created_at"] = int(time.time())
        with self._lock:
            self.jobs[job.id] = job
            answer = Answer(200, self._job_object(job, time.monotonic()))
            if self.lost_creations:
                self.lost_creations -= 1
                answer.lost = True
        self._pass("create")
        return answer

    def expire(self, job_id: str) -> None:
        """Forget a job, as the server does once it has expired: a 404 for it from then on."""
        with self._lock:
            del self.jobs[job_id]

    def _job_errors(self, data: dict) -> tuple[list[dict], list[dict]]:
        details = job_field_errors(data)
        more, requests = self._input_errors(data)
        return details + more, requests

    def _input_errors(self, data: dict) -> tuple[list[dict], list[dict]]:
        """More details on ``input_files`` / ``requests`` (exactly one of them), and the requests they hold."""
        if ("input_files" in data) == ("requests" in data):
            return [detail("value_error", ["body"], "Give either input_files or requests", data)], []
        if "requests" in data:
            inline = data["requests"]
            if not isinstance(inline, list) or not 0 < len(inline) <= MAX_INLINE_REQUESTS:
                return [
                    detail(
                        "too_long",
                        ["body", "requests"],
                        "1 to 10000 requests",
                        len(inline) if isinstance(inline, list) else inline,
                    )
                ], []
            errors = [e for n, item in enumerate(inline, 1) for e in request_line_errors(n, dumps(item).encode())]
            return errors, inline
        files = data["input_files"]
        if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
            return [
                detail("list_type", ["body", "input_files"], "Input should be a non-empty list of file ids", files)
            ], []
        requests: list[dict] = []
        with self._lock:
            for file_id in files:
                stored = self.files.get(file_id)
                if stored is None or stored.purpose != "batch":
                    return [
                        detail("value_error", ["body", "input_files"], f"No batch file with id {file_id}", file_id)
                    ], []
                requests += [json.loads(line) for line in stored.content.splitlines() if line.strip()]
        return [], requests

    def _run_one(self, custom_id: str, request_json: dict) -> tuple[dict, bool]:
        """One request of a job answered by the script: (its output or error line, succeeded)."""
        reply = self._answer(request_json)
        head = {"id": "batch-" + uuid.uuid4().hex[:12], "custom_id": custom_id}
        if isinstance(reply, list):  # n choices
            response = {"status_code": 200, "body": completion_object(reply[0], request_json, reply)}
            return {**head, "response": response, "error": None}, True
        if isinstance(reply, Reply):
            response = {"status_code": 200, "body": completion_object(reply, request_json)}
            return {**head, "response": response, "error": None}, True
        status = reply.status if isinstance(reply, ErrorReply) else 500
        body = reply.body if isinstance(reply, ErrorReply) and isinstance(reply.body, dict) else None
        body = body or default_error_body(status, request_json)
        if self.error_line_style == "error":
            message = body.get("message") if isinstance(body.get("message"), str) else dumps(body)
            return {**head, "response": None, "error": {"code": str(status), "message": message}}, False
        return {**head, "response": {"status_code": status, "body": body}, "error": None}, False

    def get(self, job_id: str, inline: bool) -> Answer:
        if self.poll_errors:
            return _error_answer(self.poll_errors.popleft())
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return Answer(404, {"detail": "Batch job not found"})
            obj = self._job_object(job, time.monotonic())
            if inline and job.inline and job.finished:
                obj["outputs"] = [line for line, _ in self._kept(job)]
            return Answer(200, obj)

    def list_jobs(self, params: dict[str, list[str]]) -> Answer:
        try:
            page = int(params.get("page", ["0"])[0])
            page_size = int(params.get("page_size", ["100"])[0])
        except ValueError:
            return _unprocessable([detail("int_parsing", ["query", "page"], "Input should be a valid integer", params)])
        if page < 0 or page_size < 1:
            return _unprocessable([detail("greater_than_equal", ["query", "page"], "Input should be >= 0", params)])
        now = time.monotonic()
        with self._lock:
            objects = [self._job_object(job, now) for job in self.jobs.values()]
        wanted = params.get("status")
        objects = [o for o in objects if not wanted or o["status"] in wanted]
        objects.sort(key=lambda o: o["created_at"], reverse=True)
        data = objects[page * page_size : (page + 1) * page_size]
        return Answer(200, {"data": data, "object": "list", "total": len(objects)})

    def progress(self, job_id: str) -> tuple[str, int]:
        """A job's status and how many of its requests are done, as a poll would see them now."""
        with self._lock:
            view = self._job_object(self.jobs[job_id], time.monotonic())
        return view["status"], view["completed_requests"]

    def cancel(self, job_id: str) -> Answer:
        now = time.monotonic()
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return Answer(404, {"detail": "Batch job not found"})
            self._advance(job, now)
            if job.finished:
                return Answer(
                    400, {"object": "error", "message": "Job is already finished", "type": "invalid_request_error"}
                )
            job.cancelled_at = now
            return Answer(200, self._job_object(job, now))

    # -- time ----------------------------------------------------------------------------------

    def _processed(self, job: Job, now: float) -> int:
        """How many requests the job has gone through by ``now`` (stopped at a cancel request)."""
        moment = min(now, job.cancelled_at) if job.cancelled_at is not None else now
        running = moment - job.created - self.queued_seconds
        if running <= 0:
            return 0
        fraction = 1.0 if self.running_seconds <= 0 else min(1.0, running / self.running_seconds)
        return int(len(job.lines) * fraction)

    def _status(self, job: Job, now: float) -> str:
        if job.started_at is None and now - job.created >= self.queued_seconds:
            job.started_at = job.request["created_at"] + int(self.queued_seconds)
        if job.finished:
            return "CANCELLED" if job.cancelled_at is not None else job.outcome
        if job.cancelled_at is not None:
            return "CANCELLATION_REQUESTED"
        return "QUEUED" if now - job.created < self.queued_seconds else "RUNNING"

    def _kept(self, job: Job) -> list[tuple[dict, bool]]:
        """The results a finished job hands back."""
        if job.cancelled_at is not None:
            return job.lines[: self._processed(job, job.cancelled_at)]
        return {"FAILED": job.lines[:0], "TIMEOUT_EXCEEDED": job.lines[: len(job.lines) // 2]}.get(
            job.outcome, job.lines
        )

    def _advance(self, job: Job, now: float) -> None:
        """Finish the job once its time is up (a cancel request takes ``queued_seconds``), writing its files."""
        if job.finished:
            return
        ends = (job.cancelled_at + self.queued_seconds) if job.cancelled_at is not None else (
            job.created + self.queued_seconds + self.running_seconds)  # fmt: skip
        if now < ends:
            return
        job.finished = True
        job.completed_at = int(time.time())
        kept = list(self._kept(job))
        self.shuffle.shuffle(kept)
        for ok, attribute in ((True, "output_file"), (False, "error_file")):
            chosen = [line for line, succeeded in kept if succeeded == ok]
            if chosen and not job.inline:
                content = "".join(dumps(line) + "\n" for line in chosen).encode()
                stored = StoredFile(
                    str(uuid.uuid4()), f"{job.id}_{attribute}.jsonl", "batch", content, int(time.time())
                )
                stored.sample_type, stored.source, stored.num_lines = (
                    "batch_result" if ok else "batch_error",
                    "mistral",
                    len(chosen),
                )
                self.files[stored.id] = stored
                setattr(job, attribute, stored.id)

    def _job_object(self, job: Job, now: float) -> dict:
        self._advance(job, now)
        status = self._status(job, now)
        done = job.lines[: self._processed(job, now)] if not job.finished else self._kept(job)
        request = job.request
        return {
            "id": job.id,
            "object": "batch",
            "input_files": request.get("input_files", []),
            "endpoint": request["endpoint"],
            "model": request["model"],
            "agent_id": request.get("agent_id"),
            "metadata": request["metadata"],
            "errors": [{"message": self.failed_message, "count": 1}] if status == "FAILED" else [],
            "status": status,
            "created_at": request["created_at"],
            "started_at": job.started_at,
            "completed_at": job.completed_at,
            "total_requests": 0 if status == "QUEUED" else len(job.lines),
            "completed_requests": len(done),
            "succeeded_requests": sum(1 for _, ok in done if ok),
            "failed_requests": sum(1 for _, ok in done if not ok),
            "output_file": job.output_file,
            "error_file": job.error_file,
            "outputs": None,
        }
