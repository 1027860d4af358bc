"""What the --batch tests share: a fresh kernel state, and what the fake server received."""

from __future__ import annotations

import json

from mistral_magic.annotation.batchrun import PollSchedule
from mistral_magic.ipython.extension import forget
from tests.fakeapi.batchshapes import parse_multipart

FAST_POLL = PollSchedule(first=0.02, growth=1.5, longest=0.2, creation_grace=0.5)


def fresh_session(shell) -> None:
    """A new kernel state (as after a restart): nothing in memory, the same cache folder."""
    ip = shell.ip
    ip.run_line_magic("unload_ext", "mistral_magic")
    forget(ip)
    ip.run_line_magic("load_ext", "mistral_magic")
    shell.magics.retry_base_delay = 0.01
    shell.magics.session.batch_poll = FAST_POLL


def requests_to(fake, method: str, path: str) -> list:
    return [r for r in fake.requests if r.method == method and r.path.split("?")[0] == path]


def uploaded_lines(fake) -> list[list[dict]]:
    """The JSONL lines of every upload the server received."""
    files = []
    for request in requests_to(fake, "POST", "/v1/files"):
        content = parse_multipart(request.headers["content-type"], request.body)["file"][1]
        files.append([json.loads(line) for line in content.splitlines()])
    return files
