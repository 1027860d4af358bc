"""The JSONL files a batch run uploads: one ``{"custom_id", "body"}`` line a request, written line by line
and split at Mistral's limits per job and per file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Generator, Sequence
from typing import Any

from ..textsafe import encodable_data

PER_JOB = 100_000
MAX_FILE_BYTES = 500_000_000  # under Mistral's 512 MB per file


def request_files(
    todo: Sequence[int],
    keys: Sequence[str],
    body_for: Callable[[int], dict[str, Any]],
    per_job: int = PER_JOB,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> Generator[tuple[str, list[str]], None, None]:
    """JSONL files of ``{"custom_id", "body"}`` lines, written line by line: (path, their keys).
    The caller removes a file once given."""
    written: set[str] = set()
    handle = None
    carried: list[str] = []
    size = 0
    try:
        for index in todo:
            key = keys[index]
            if key in written:
                continue
            written.add(key)
            body = {k: v for k, v in body_for(index).items() if k not in ("model", "stream")}
            line = (json.dumps(encodable_data({"custom_id": key, "body": body}), ensure_ascii=False) + "\n").encode()
            if handle is not None and (len(carried) >= per_job or size + len(line) > max_file_bytes):
                handle.close()
                done, handle = handle, None
                yield done.name, carried
            if handle is None:
                handle = tempfile.NamedTemporaryFile("wb", suffix=".jsonl", prefix="mistral-batch-", delete=False)
                carried, size = [], 0
            handle.write(line)
            carried.append(key)
            size += len(line)
        if handle is not None:
            handle.close()
            done, handle = handle, None
            yield done.name, carried
    finally:
        if handle is not None:  # stopped while writing: no half file left behind
            handle.close()
            os.unlink(handle.name)
