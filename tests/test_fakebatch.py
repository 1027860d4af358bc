"""Tests of the fake server's files and batch-jobs endpoints (tests/fakeapi/batch.py), over real HTTP."""

from __future__ import annotations

import gzip
import json
import threading
import time

import httpx
import pytest

from tests.fakeapi import ErrorReply, FakeChatServer, Reply
from tests.fakeapi.batch import StoredFile

CHAT = "/v1/chat/completions"
SCHEMA = {"name": "answer", "schema": {"type": "object"}, "strict": True}


@pytest.fixture
def server():
    with FakeChatServer() as fake:
        fake.batch.queued_seconds = 0.05
        fake.batch.running_seconds = 0.2
        yield fake


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=5) as http:
        yield http


def jsonl(*items: dict) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def request_line(custom_id: str, text: str) -> dict:
    return {"custom_id": custom_id, "body": {"max_tokens": 50, "messages": [{"role": "user", "content": text}]}}


def upload(client, content: bytes, purpose: str = "batch") -> httpx.Response:
    return client.post("/v1/files", files={"file": ("input.jsonl", content)}, data={"purpose": purpose})


def create(client, file_id: str, **extra) -> httpx.Response:
    body = {"input_files": [file_id], "endpoint": CHAT, "model": "mistral-small-latest", **extra}
    return client.post("/v1/batch/jobs", json=body)


def wait_terminal(client, job_id: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/batch/jobs/{job_id}").json()
        if job["status"] in ("SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never finished")


def lines_of(client, file_id: str) -> list[dict]:
    response = client.get(f"/v1/files/{file_id}/content")
    assert response.status_code == 200
    return [json.loads(line) for line in response.content.splitlines()]


def submit(client, count: int, **extra) -> dict:
    content = jsonl(*(request_line(str(n), f"item {n}") for n in range(count)))
    file_id = upload(client, content).json()["id"]
    response = create(client, file_id, **extra)
    assert response.status_code == 200, response.text
    return response.json()


def test_upload_answers_mistral_file_object(client):
    response = upload(client, jsonl(request_line("0", "a"), request_line("1", "b")))
    assert response.status_code == 200
    entry = response.json()
    assert set(entry) == {
        "id",
        "object",
        "bytes",
        "created_at",
        "filename",
        "purpose",
        "sample_type",
        "source",
        "num_lines",
    }
    assert entry["object"] == "file" and entry["purpose"] == "batch" and entry["num_lines"] == 2
    assert entry["filename"] == "input.jsonl" and entry["sample_type"] == "batch_request"
    assert entry["bytes"] == len(jsonl(request_line("0", "a"), request_line("1", "b")))


@pytest.mark.parametrize(
    "line, where",
    [
        (b"{not json", "line 1"),
        (json.dumps({"custom_id": "0"}).encode(), "body"),
        (json.dumps({"body": {"messages": []}}).encode(), "custom_id"),
        (json.dumps({"custom_id": 0, "body": {"messages": []}}).encode(), "custom_id"),
        (json.dumps({"custom_id": "0", "body": {"messages": []}, "method": "POST"}).encode(), "method"),
        (json.dumps({"custom_id": "0", "body": {"messages": [], "tempreature": 1}}).encode(), "tempreature"),
    ],
)
def test_upload_rejects_bad_lines_with_422(client, server, line, where):
    response = upload(client, line + b"\n")
    assert response.status_code == 422
    details = response.json()["message"]["detail"]
    assert any(where in [str(part) for part in d["loc"]] for d in details), details
    assert server.batch.files == {}


def test_upload_rejects_duplicate_custom_id_and_bad_purpose(client):
    assert upload(client, jsonl(request_line("0", "a"), request_line("0", "b"))).status_code == 422
    assert upload(client, jsonl(request_line("0", "a")), purpose="training").status_code == 422
    assert client.post("/v1/files", data={"purpose": "batch"}, files={"other": ("x", b"")}).status_code == 422


@pytest.mark.parametrize(
    "extra",
    [
        {"metadata": {"run": 3}},
        {"metadata": ["a"]},
        {"timeout_hours": 0},
        {"timeout_hours": 169},
        {"timeout_hours": True},
        {"endpoint": "/v1/embeddings"},
        {"unknown": 1},
        {"input_files": ["no-such-file"]},
        {"input_files": []},
    ],
)
def test_job_creation_validates_with_422(client, server, extra):
    file_id = upload(client, jsonl(request_line("0", "a"))).json()["id"]
    response = create(client, file_id, **extra)
    assert response.status_code == 422, extra
    assert response.json()["message"]["detail"]
    assert server.batch.jobs == {}


def test_job_creation_needs_endpoint_and_model(client):
    file_id = upload(client, jsonl(request_line("0", "a"))).json()["id"]
    response = client.post("/v1/batch/jobs", json={"input_files": [file_id]})
    assert response.status_code == 422
    missing = {d["loc"][-1] for d in response.json()["message"]["detail"] if d["type"] == "missing"}
    assert missing == {"endpoint", "model"}


def test_job_moves_queued_running_success_with_counters(client, server):
    server.batch.running_seconds = 0.6
    job = submit(client, 10, metadata={"run": "abc"}, timeout_hours=2)
    assert job["status"] == "QUEUED" and job["object"] == "batch"
    assert job["total_requests"] == 0 and job["metadata"] == {"run": "abc"}
    assert job["endpoint"] == CHAT and job["model"] == "mistral-small-latest"
    assert job["output_file"] is None and job["error_file"] is None and job["outputs"] is None
    seen = []
    while True:
        current = client.get(f"/v1/batch/jobs/{job['id']}").json()
        seen.append((current["status"], current["completed_requests"]))
        if current["status"] == "SUCCESS":
            break
        time.sleep(0.03)
    statuses = [status for status, _ in seen]
    assert "RUNNING" in statuses and statuses[-1] == "SUCCESS"
    done = [count for status, count in seen if status == "RUNNING"]
    assert done == sorted(done) and any(0 < count < 10 for count in done)
    assert current["total_requests"] == current["completed_requests"] == current["succeeded_requests"] == 10
    assert current["failed_requests"] == 0 and current["error_file"] is None
    assert isinstance(current["started_at"], int) and isinstance(current["completed_at"], int)


def test_output_file_shuffled_with_scripted_answers(client, server):
    server.add_rule("item 3", Reply(text="three"))
    job = wait_terminal(client, submit(client, 30)["id"])
    lines = lines_of(client, job["output_file"])
    ids = [line["custom_id"] for line in lines]
    assert sorted(ids, key=int) == [str(n) for n in range(30)] and ids != sorted(ids, key=int)
    by_id = {line["custom_id"]: line for line in lines}
    assert by_id["3"]["response"]["status_code"] == 200 and by_id["3"]["error"] is None
    assert by_id["3"]["response"]["body"]["choices"][0]["message"]["content"] == "three"
    assert by_id["4"]["response"]["body"]["choices"][0]["message"]["content"] == "Echo: item 4"
    assert by_id["4"]["response"]["body"]["model"] == "mistral-small-latest"
    assert by_id["4"]["response"]["body"]["object"] == "chat.completion"
    assert by_id["4"]["id"].startswith("batch-")


def test_failed_items_go_to_the_error_file(client, server):
    server.add_rule("item 1", ErrorReply(400))
    job = wait_terminal(client, submit(client, 3)["id"])
    assert job["status"] == "SUCCESS"
    assert (job["succeeded_requests"], job["failed_requests"]) == (2, 1)
    [error_line] = lines_of(client, job["error_file"])
    assert error_line["custom_id"] == "1" and error_line["response"]["status_code"] == 400
    assert error_line["response"]["body"]["object"] == "error"
    assert {line["custom_id"] for line in lines_of(client, job["output_file"])} == {"0", "2"}


def test_error_line_with_top_level_error(client, server):
    server.batch.error_line_style = "error"
    server.add_rule("item 0", ErrorReply(500))
    job = wait_terminal(client, submit(client, 1)["id"])
    [line] = lines_of(client, job["error_file"])
    assert line["response"] is None and line["error"] == {"code": "500", "message": "Internal Server Error"}


def test_timeout_exceeded_keeps_half_and_failed_keeps_none(client, server):
    server.batch.outcomes.extend(["TIMEOUT_EXCEEDED", "FAILED"])
    timed_out = wait_terminal(client, submit(client, 10)["id"])
    assert timed_out["status"] == "TIMEOUT_EXCEEDED" and timed_out["succeeded_requests"] == 5
    assert len(lines_of(client, timed_out["output_file"])) == 5
    failed = wait_terminal(client, submit(client, 4)["id"])
    assert failed["status"] == "FAILED" and failed["completed_requests"] == 0
    assert failed["output_file"] is None and failed["errors"][0]["count"] == 1


def test_cancel_keeps_what_was_done(client, server):
    server.batch.running_seconds = 60
    job = submit(client, 5)
    response = client.post(f"/v1/batch/jobs/{job['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "CANCELLATION_REQUESTED"
    final = wait_terminal(client, job["id"])
    assert final["status"] == "CANCELLED" and final["completed_requests"] == 0 and final["output_file"] is None
    assert client.post(f"/v1/batch/jobs/{job['id']}/cancel").status_code == 400
    assert client.post("/v1/batch/jobs/nope/cancel").status_code == 404


def test_a_line_is_answered_as_a_live_request_would_be(client, server):
    server.json_schema = False
    fields = {"messages": [{"role": "user", "content": "x"}]}
    lines = [
        {"custom_id": "n", "body": {**fields, "n": 3}},
        {"custom_id": "schema", "body": {**fields, "response_format": {"type": "json_schema", "json_schema": SCHEMA}}},
    ]
    job = wait_terminal(client, create(client, upload(client, jsonl(*lines)).json()["id"]).json()["id"])
    [answered] = lines_of(client, job["output_file"])
    assert answered["custom_id"] == "n" and len(answered["response"]["body"]["choices"]) == 3
    refused = {line["custom_id"]: line["response"] for line in lines_of(client, job["error_file"])}
    assert refused["schema"]["status_code"] == 422 and "json_schema" in refused["schema"]["body"]["message"]


def test_poll_errors_are_scripted(client, server):
    job = submit(client, 1)
    server.batch.poll_errors.append(ErrorReply(429, headers={"retry-after-ms": "300"}))
    refused = client.get(f"/v1/batch/jobs/{job['id']}")
    assert refused.status_code == 429 and refused.headers["retry-after-ms"] == "300"
    assert client.get(f"/v1/batch/jobs/{job['id']}").status_code == 200


def test_creation_429_is_scripted(client, server):
    server.batch.creation_errors.append(ErrorReply(429, headers={"Retry-After": "2"}))
    file_id = upload(client, jsonl(request_line("0", "a"))).json()["id"]
    refused = create(client, file_id)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
    assert server.batch.jobs == {}
    assert create(client, file_id).status_code == 200


def test_list_filters_and_pages(client, server):
    server.batch.running_seconds = 60
    ids = [submit(client, 1)["id"] for _ in range(3)]
    listing = client.get("/v1/batch/jobs", params={"page": 0, "page_size": 2}).json()
    assert listing["object"] == "list" and listing["total"] == 3 and len(listing["data"]) == 2
    second = client.get("/v1/batch/jobs", params={"page": 1, "page_size": 2}).json()["data"]
    assert {j["id"] for j in listing["data"] + second} == set(ids)
    time.sleep(0.1)
    assert client.get("/v1/batch/jobs", params={"status": "RUNNING"}).json()["total"] == 3
    assert client.get("/v1/batch/jobs", params={"status": "SUCCESS"}).json()["total"] == 0
    assert client.get("/v1/batch/jobs", params={"page": "x"}).status_code == 422


def test_inline_requests_and_outputs(client):
    body = {"requests": [request_line("a", "x"), request_line("b", "y")], "endpoint": CHAT, "model": "m"}
    job = client.post("/v1/batch/jobs", json=body).json()
    final = wait_terminal(client, job["id"])
    assert final["output_file"] is None
    outputs = client.get(f"/v1/batch/jobs/{job['id']}", params={"inline": "true"}).json()["outputs"]
    assert sorted(o["custom_id"] for o in outputs) == ["a", "b"]
    too_many = {**body, "requests": [request_line(str(n), "x") for n in range(10_001)]}
    assert client.post("/v1/batch/jobs", json=too_many).status_code == 422


def test_batch_endpoints_need_the_key(client, server):
    server.required_key = "k-123"
    assert upload(client, jsonl(request_line("0", "a"))).status_code == 401
    assert client.get("/v1/batch/jobs").status_code == 401
    authorized = client.get("/v1/batch/jobs", headers={"Authorization": "Bearer k-123"})
    assert authorized.status_code == 200


def test_large_download_is_chunked_and_unknown_file_is_404(client, server):
    job = wait_terminal(client, submit(client, 2000)["id"])
    with client.stream("GET", f"/v1/files/{job['output_file']}/content") as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        pieces = list(response.iter_raw())
    assert len(b"".join(pieces).splitlines()) == 2000
    assert client.get("/v1/files/missing/content").status_code == 404


def test_reset_forgets_files_and_jobs(client, server):
    submit(client, 1)
    server.reset()
    assert server.batch.jobs == {} and server.batch.files == {}


def test_a_lost_creation_answer_leaves_the_job_created(client, server):
    server.batch.lost_creations = 1
    file_id = upload(client, jsonl(request_line("0", "a"))).json()["id"]
    with pytest.raises(httpx.RemoteProtocolError):
        create(client, file_id, metadata={"run": "r1"})
    [job] = client.get("/v1/batch/jobs").json()["data"]
    assert job["metadata"] == {"run": "r1"} and job["input_files"] == [file_id]
    assert create(client, file_id).status_code == 200  # only the next creation was lost


def test_gates_hold_an_upload_a_creation_and_a_download(server):
    gates = {name: threading.Event() for name in ("upload", "create", "download")}
    server.batch.gates.update(gates)
    answered: dict[str, int] = {}

    def call(name: str, send) -> threading.Thread:
        def run() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                answered[name] = send(http).status_code

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    content = jsonl(*(request_line(str(n), "x" * 100) for n in range(800)))  # over one download piece
    uploading = call("upload", lambda http: upload(http, content))
    assert server.wait_for_requests(1) and "upload" not in answered
    gates["upload"].set()
    uploading.join(5)
    [file_id] = server.batch.files
    creating = call("create", lambda http: create(http, file_id))
    deadline = time.monotonic() + 10
    while not server.batch.jobs and time.monotonic() < deadline:
        time.sleep(0.01)
    [job_id] = server.batch.jobs
    assert "create" not in answered  # the job exists, its creation is not answered yet
    gates["create"].set()
    creating.join(5)
    assert answered == {"upload": 200, "create": 200}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        with http.stream("GET", f"/v1/files/{file_id}/content") as response:
            pieces = response.iter_raw()
            first = next(pieces)
            gates["download"].set()
            rest = b"".join(pieces)
    assert len((first + rest).splitlines()) == 800 and job_id in server.batch.jobs


def test_an_expired_job_is_a_404_and_an_encoded_file_is_served_as_stored(client, server):
    job = submit(client, 1)
    server.batch.expire(job["id"])
    assert client.get(f"/v1/batch/jobs/{job['id']}").status_code == 404
    assert client.post(f"/v1/batch/jobs/{job['id']}/cancel").status_code == 404
    packed = gzip.compress(b'{"a": 1}\n')
    server.batch.files["packed"] = StoredFile("packed", "r.jsonl", "batch", packed, 0, encoding="gzip")
    response = client.get("/v1/files/packed/content")
    assert response.headers["content-encoding"] == "gzip" and response.content == b'{"a": 1}\n'
