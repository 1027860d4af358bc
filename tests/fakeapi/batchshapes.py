"""Validation of the batch endpoints' inputs (docs/mistral-api.md, "Batch API"): JSONL request lines,
multipart uploads and job-creation bodies, answered with Mistral's 422 details."""

from __future__ import annotations

import email.parser
import email.policy
import json
from typing import Any

from .shapes import dumps, validate_chat_request

CHAT_ENDPOINT = "/v1/chat/completions"
JOB_FIELDS = {"input_files", "requests", "endpoint", "model", "agent_id", "metadata", "timeout_hours"}


def detail(kind: str, loc: list, msg: str, given: Any) -> dict:
    return {"type": kind, "loc": loc, "msg": msg, "input": given}


def unprocessable(details: list[dict]) -> dict:
    """Mistral's 422 body for validation ``details``."""
    return {"object": "error", "message": {"detail": details}, "type": "invalid_request_error"}


def request_line_errors(number: int, line: bytes) -> list[dict]:
    """Why one JSONL line of a batch input file is not ``{"custom_id": str, "body": {chat request}}``."""
    loc = ["file", f"line {number}"]
    try:
        data = json.loads(line)
    except ValueError:
        return [detail("json_invalid", loc, "Invalid JSON", line[:100].decode("utf-8", "replace"))]
    if not isinstance(data, dict):
        return [detail("dict_type", loc, "Input should be a valid dictionary", data)]
    details = [detail("missing", [*loc, k], "Field required", data) for k in ("custom_id", "body") if k not in data]
    extra = [k for k in data if k not in ("custom_id", "body")]
    details += [detail("extra_forbidden", [*loc, k], "Extra inputs are not permitted", data[k]) for k in extra]
    if "custom_id" in data and not isinstance(data["custom_id"], str):
        details.append(detail("string_type", [*loc, "custom_id"], "Input should be a valid string", data["custom_id"]))
    body = data.get("body")
    if "body" in data and not isinstance(body, dict):
        details.append(detail("dict_type", [*loc, "body"], "Input should be a valid dictionary", body))
    elif isinstance(body, dict):
        _, error = validate_chat_request(dumps({"model": "batch-model", **body}).encode(), strict=True)
        if error is not None:
            details += [{**d, "loc": [*loc, *d["loc"]]} for d in error["message"]["detail"]]
    return details


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (filename, bytes)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


def job_field_errors(data: dict) -> list[dict]:
    """What is wrong with a job-creation body, apart from its ``input_files`` / ``requests``."""
    extra = [k for k in data if k not in JOB_FIELDS]
    details = [detail("extra_forbidden", ["body", k], "Extra inputs are not permitted", data[k]) for k in extra]
    details += [detail("missing", ["body", k], "Field required", data) for k in ("endpoint", "model") if k not in data]
    if data.get("endpoint", CHAT_ENDPOINT) != CHAT_ENDPOINT:
        details.append(detail("enum", ["body", "endpoint"], f"Input should be '{CHAT_ENDPOINT}'", data["endpoint"]))
    if "model" in data and (not isinstance(data["model"], str) or not data["model"]):
        details.append(detail("string_type", ["body", "model"], "Input should be a valid string", data["model"]))
    metadata = data.get("metadata")
    if metadata is not None and not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        details.append(detail("dict_type", ["body", "metadata"], "Input should be a dictionary of strings", metadata))
    hours = data.get("timeout_hours", 24)
    if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= 168:
        details.append(detail("int_range", ["body", "timeout_hours"], "Input should be between 1 and 168", hours))
    return details
