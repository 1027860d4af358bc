"""The Batch API client (mistral_magic/api/batchjobs.py) over real HTTP against the fake server:
the exact requests it sends, the job objects it reads, and the outcome of every kind of result line."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from mistral_magic import errors
from mistral_magic.api.batchjobs import BatchJob, BatchJobs, ResultReader, split_lines
from mistral_magic.api.client import ChatClient
from mistral_magic.api.protocol import Endpoint
from mistral_magic.secret import Secret
from tests.fakeapi import ErrorReply, FakeChatServer, Reply
from tests.fakeapi.batch import StoredFile
from tests.fakeapi.batchshapes import parse_multipart

KEY = "sk-batch-0123456789SECRET"


@pytest.fixture
def server():
    with FakeChatServer() as fake:
        fake.required_key = KEY
        fake.batch.queued_seconds = 0.02
        fake.batch.running_seconds = 0.05
        yield fake


@pytest.fixture
def endpoint(server) -> Endpoint:
    return Endpoint(base_url=server.url + "/v1", api_key=Secret(KEY), max_retries=2, retry_base_delay=0.01)


@pytest.fixture
def jobs(endpoint):
    client = ChatClient()
    yield BatchJobs(client, endpoint)
    client.close()


def request_line(custom_id: str, text: str) -> bytes:
    body = {"max_tokens": 20, "messages": [{"role": "user", "content": text}]}
    return json.dumps({"custom_id": custom_id, "body": body}).encode() + b"\n"


@pytest.fixture
def input_file(tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b"".join(request_line(str(n), f"item {n}") for n in range(6)))
    return path


def finished(jobs: BatchJobs, job_id: str) -> BatchJob:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        job = jobs.get(job_id)
        if job.terminal:
            return job
        time.sleep(0.02)
    raise AssertionError("the job never finished")


def store(server, lines: list) -> str:
    """A results file put on the server as it is (so its lines can be anything)."""
    raw = b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)
    stored = StoredFile("results-1", "results.jsonl", "batch", raw, 0)
    server.batch.files[stored.id] = stored
    return stored.id


def ok_line(custom_id: str, text: str) -> dict:
    completion = {
        "id": "c",
        "object": "chat.completion",
        "model": "mistral-small-latest",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    return {"id": "b", "custom_id": custom_id, "response": {"status_code": 200, "body": completion}, "error": None}


def test_upload_sends_mistral_multipart_with_the_key(jobs, server, input_file):
    uploaded = jobs.upload(input_file)
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/files")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    fields = parse_multipart(request.headers["content-type"], request.body)
    assert fields == {"purpose": (None, b"batch"), "file": ("requests.jsonl", input_file.read_bytes())}
    assert uploaded.id in server.batch.files and uploaded.num_lines == 6
    assert uploaded.bytes == input_file.stat().st_size


def test_create_sends_the_exact_job_body(jobs, server, input_file):
    file_id = jobs.upload(input_file).id
    job = jobs.create([file_id], "mistral-small-latest", {"run": "f00d", "cell": "3"}, timeout_hours=48)
    assert server.requests[-1].path == "/v1/batch/jobs"
    assert server.requests[-1].json() == {
        "input_files": [file_id],
        "endpoint": "/v1/chat/completions",
        "model": "mistral-small-latest",
        "metadata": {"run": "f00d", "cell": "3"},
        "timeout_hours": 48,
    }
    assert job.status == "QUEUED" and job.metadata == {"run": "f00d", "cell": "3"}
    assert job.model == "mistral-small-latest" and not job.terminal and isinstance(job.created_at, int)


def test_create_is_sent_once_even_on_429(jobs, server, input_file):
    file_id = jobs.upload(input_file).id
    server.batch.creation_errors.append(ErrorReply(429, headers={"Retry-After": "0"}))
    before = len(server.requests)
    with pytest.raises(errors.RateLimitError) as raised:
        jobs.create([file_id], "mistral-small-latest", {})
    assert len(server.requests) == before + 1 and server.batch.jobs == {}
    assert "\n" not in str(raised.value) and KEY not in str(raised.value)


def test_create_refuses_bad_metadata_and_timeout_before_sending(jobs, server):
    with pytest.raises(errors.UsageError, match="text keys and values"):
        jobs.create(["f"], "m", {"run": 3})  # type: ignore[dict-item]
    with pytest.raises(errors.UsageError, match="1 to 168 hours"):
        jobs.create(["f"], "m", {}, timeout_hours=200)
    assert server.requests == []


def test_create_422_is_one_line(jobs, server):
    with pytest.raises(errors.UnprocessableError, match="input_files") as raised:
        jobs.create(["no-such-file"], "mistral-small-latest", {})
    assert "\n" not in str(raised.value)


def test_get_list_cancel_paths_and_counters(jobs, server, input_file):
    server.batch.running_seconds = 60
    file_id = jobs.upload(input_file).id
    job = jobs.create([file_id], "mistral-small-latest", {})
    time.sleep(0.05)
    running = jobs.get(job.id)
    assert server.requests[-1].path == f"/v1/batch/jobs/{job.id}"
    assert running.status == "RUNNING" and running.total == 6
    listed, total = jobs.list(status="RUNNING", page=0, page_size=10)
    assert server.requests[-1].path == "/v1/batch/jobs?page=0&page_size=10&status=RUNNING"
    assert total == 1 and [j.id for j in listed] == [job.id]
    cancelling = jobs.cancel(job.id)
    assert (server.requests[-1].method, server.requests[-1].path) == ("POST", f"/v1/batch/jobs/{job.id}/cancel")
    assert cancelling.status == "CANCELLATION_REQUESTED"
    assert finished(jobs, job.id).status == "CANCELLED"


def test_job_ids_are_quoted_into_the_path(jobs, server):
    with pytest.raises(errors.NotFoundError):
        jobs.get("../../models")
    assert server.requests[-1].path == "/v1/batch/jobs/..%2F..%2Fmodels"


def test_results_end_to_end_with_failed_items(jobs, server, input_file):
    server.add_rule("item 2", ErrorReply(400))
    server.add_rule("item 4", Reply(text="four"))
    job = finished(jobs, jobs.create([jobs.upload(input_file).id], "mistral-small-latest", {}).id)
    assert (job.status, job.succeeded, job.failed, job.total, job.done) == ("SUCCESS", 5, 1, 6, 6)
    reader, results = jobs.results(job, expected={str(n) for n in range(6)})
    by_id = {result.custom_id: result for result in results}
    assert sorted(by_id) == [str(n) for n in range(6)]
    assert by_id["4"].completion.text == "four" and by_id["4"].error is None
    assert by_id["0"].completion.text == "Echo: item 0" and by_id["0"].completion.usage is not None
    assert by_id["2"].completions == () and by_id["2"].error.startswith("HTTP 400: Invalid model")
    assert (reader.tally.results, reader.tally.duplicates, reader.tally.malformed) == (6, 0, 0)


def test_timeout_exceeded_gives_back_what_came(jobs, server, input_file):
    server.batch.outcomes.append("TIMEOUT_EXCEEDED")
    job = finished(jobs, jobs.create([jobs.upload(input_file).id], "mistral-small-latest", {}).id)
    assert job.status == "TIMEOUT_EXCEEDED" and job.terminal
    _, results = jobs.results(job)
    assert len(list(results)) == 3


def test_failed_job_reports_its_errors(jobs, server, input_file):
    server.batch.outcomes.append("FAILED")
    job = finished(jobs, jobs.create([jobs.upload(input_file).id], "mistral-small-latest", {}).id)
    assert job.status == "FAILED" and job.errors == ("Internal error while processing the batch",)
    assert job.output_file is None and list(jobs.results(job)[1]) == []


def test_every_kind_of_result_line_has_its_outcome(jobs, server, endpoint):
    file_id = store(
        server,
        [
            ok_line("2", "second"),
            ok_line("0", "zero"),
            ok_line("0", "zero again"),  # duplicate: the first line wins
            b"{not json",
            json.dumps([1, 2]).encode(),
            {"custom_id": 5, "response": None},
            {"custom_id": "1", "response": None, "error": None},  # neither a response nor an error
            ok_line("99", "never sent"),
            {"custom_id": "3", "response": None, "error": {"code": "3000", "message": "model overloaded"}},
            {"custom_id": "4", "response": {"status_code": 429, "body": {"message": "Requests rate limit exceeded"}}},
            {"custom_id": "6", "response": {"status_code": 200, "body": {"choices": []}}},
            {"custom_id": "7", "response": {"status_code": 500, "body": f"echoed {KEY}"}},
        ],
    )
    job = BatchJob(id="j", status="SUCCESS", output_file=file_id)
    reader, results = jobs.results(job, expected={str(n) for n in range(8)})
    by_id = {result.custom_id: result for result in results}
    assert list(by_id) == ["2", "0", "3", "4", "6", "7"]
    assert by_id["2"].completion.text == "second" and by_id["0"].completion.text == "zero"
    assert by_id["3"].error == "model overloaded"
    assert by_id["4"].error == "HTTP 429: Requests rate limit exceeded"
    assert by_id["6"].error.startswith("unreadable reply:")
    assert KEY not in by_id["7"].error and "****" in by_id["7"].error
    tally = reader.tally
    assert (tally.results, tally.duplicates, tally.unknown, tally.malformed) == (6, 1, 1, 4)
    assert tally.malformed_lines == [4, 5, 6, 7]


def test_reader_shares_seen_ids_across_files(endpoint):
    reader = ResultReader(endpoint)
    first = list(reader.read([json.dumps(ok_line("a", "x")).encode()]))
    second = list(reader.read([json.dumps(ok_line("a", "y")).encode(), b"", b"   "]))
    assert [r.completion.text for r in first] == ["x"] and second == []
    assert reader.tally.duplicates == 1 and reader.tally.malformed == 0


def test_large_results_download_in_pieces(jobs, server, tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as handle:
        for n in range(3000):
            handle.write(request_line(str(n), f"row {n} " + "x" * 40))
    job = finished(jobs, jobs.create([jobs.upload(path).id], "mistral-small-latest", {}).id)
    _, results = jobs.results(job)
    texts = {result.custom_id: result.completion.text for result in results}
    assert len(texts) == 3000 and texts["2999"] == "Echo: row 2999 " + "x" * 40


def test_missing_file_and_bad_key_are_one_line_errors(jobs, server, endpoint):
    with pytest.raises(errors.NotFoundError) as raised:
        list(jobs.lines("no-such-file"))
    assert "\n" not in str(raised.value)
    client = ChatClient()
    wrong = BatchJobs(client, Endpoint(base_url=endpoint.base_url, api_key=Secret("sk-wrong-key-0000000")))
    with pytest.raises(errors.AuthenticationError) as denied:
        wrong.list()
    client.close()
    assert "sk-wrong-key-0000000" not in str(denied.value)


def test_a_download_cut_short_is_one_line(jobs, server):
    file_id = store(server, [ok_line(str(n), "y" * 2000) for n in range(3000)])  # 6 MB: more than socket buffers
    lines = jobs.lines(file_id)
    assert json.loads(next(lines))["custom_id"] == "0"
    server.stop()
    with pytest.raises(errors.BadResponseError, match="broke off") as raised:
        list(lines)
    assert "\n" not in str(raised.value)


def test_a_result_line_over_the_limit_is_read_past_and_counted(server, endpoint):
    client = ChatClient()
    jobs = BatchJobs(client, endpoint, max_line_bytes=2000)
    file_id = store(server, [ok_line("0", "short"), ok_line("1", "y" * 5000), ok_line("2", "also short")])
    reader, results = jobs.results(BatchJob(id="j", status="SUCCESS", output_file=file_id, total=3))
    assert [result.custom_id for result in results] == ["0", "2"]
    assert (reader.tally.too_long, reader.tally.malformed, reader.tally.malformed_lines) == (1, 1, [2])
    client.close()


def test_a_gzip_bomb_stops_at_the_decoded_limit_in_one_line(server, endpoint):
    client = ChatClient()
    jobs = BatchJobs(client, endpoint, file_bytes_base=0)  # a job of two requests: at most 2 MiB decoded
    bomb = gzip.compress(json.dumps(ok_line("0", "x")).encode() + b"\n" + b" " * 8_000_000)
    server.batch.files["bomb"] = StoredFile("bomb", "results.jsonl", "batch", bomb, 0, encoding="gzip")
    _, results = jobs.results(BatchJob(id="j", status="SUCCESS", output_file="bomb", total=2))
    with pytest.raises(errors.BadResponseError, match=r"decodes to over 2\.09715 MB") as raised:
        list(results)
    assert "\n" not in str(raised.value) and "bomb" in str(raised.value)
    client.close()


def test_a_gzip_results_file_is_read(jobs, server):
    lines = [json.dumps(ok_line(str(n), f"answer {n}")).encode() for n in range(500)]
    packed = gzip.compress(b"\n".join(lines) + b"\n")
    server.batch.files["packed"] = StoredFile("packed", "results.jsonl", "batch", packed, 0, encoding="gzip")
    _, results = jobs.results(BatchJob(id="j", status="SUCCESS", output_file="packed", total=500))
    assert [result.completion.text for result in results] == [f"answer {n}" for n in range(500)]


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([b"a\nbb", b"b\n", b"\ncc"], [b"a", b"bbb", b"", b"cc"]),
        ([b"ab", b"cd", b"e\ngh"], [b"abcde", b"gh"]),  # a line over many pieces
        ([b"12345\n123456\n1234", b"56\n"], [b"12345", None, None]),  # over 5 bytes: read past
        ([b"123", b"456", b"789\nok\n"], [None, b"ok"]),
        ([b"x" * 9], [None]),  # an unterminated last line, too long
    ],
)
def test_split_lines_across_pieces_with_a_line_limit(pieces, expected):
    assert list(split_lines(pieces, max_line=5)) == expected


def test_find_reads_the_job_list_page_after_page_back_to_a_time(jobs, server, input_file):
    file_id = jobs.upload(input_file).id
    wanted = jobs.create([file_id], "mistral-small-latest", {"run": "first", "requests": "6"})
    for _ in range(3):
        jobs.create([file_id], "mistral-small-latest", {"run": "later"})
    for later, job in enumerate(server.batch.jobs.values()):
        job.request["created_at"] += later  # the list is newest first: the wanted job comes last
    before = len(server.requests)
    assert jobs.find({"run": "first"}, since=0, page_size=2).id == wanted.id
    pages = ["/v1/batch/jobs?page=0&page_size=2", "/v1/batch/jobs?page=1&page_size=2"]
    assert [r.path for r in server.requests[before:]] == pages
    assert jobs.find({"run": "nobody"}, since=0, page_size=2) is None
    before = len(server.requests)
    assert jobs.find({"run": "first"}, since=time.time() + 3600, page_size=2) is None  # the first page is older already
    assert [r.path for r in server.requests[before:]] == pages[:1]


def test_a_404_means_gone_only_when_the_job_list_answers(jobs, endpoint, server):
    with pytest.raises(errors.NotFoundError) as missing:
        jobs.get("expired-job")
    jobs.confirm_gone(missing.value)  # the server answers its job list: the job is gone
    client = ChatClient()
    wrong = BatchJobs(client, Endpoint(base_url=server.url + "/wrong", api_key=Secret(KEY)))
    with pytest.raises(errors.NotFoundError) as elsewhere:
        wrong.get("any-job")
    with pytest.raises(errors.NotFoundError) as raised:
        wrong.confirm_gone(elsewhere.value)  # no job list there either: a wrong base URL
    assert raised.value is elsewhere.value
    client.close()
