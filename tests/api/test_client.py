"""The client's rules, fast, through httpx's MockTransport (no socket): status to exception, the key
never echoed, Retry-After and backoff, one retry rule for requests and streams, bad 2xx bodies.
End-to-end behaviour over real sockets is tested against tests/fakeapi."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from mistral_magic import errors
from mistral_magic.api import retry as retry_module
from mistral_magic.api.client import ChatClient
from mistral_magic.api.pacing import Pacer
from mistral_magic.api.protocol import Endpoint, is_loopback
from mistral_magic.secret import Secret

KEY = "sk-unit-0123456789SECRET"
BASE = "https://api.example.test/v1"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
OK = {"choices": [{"message": {"content": "fine"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1}}

Handler = Callable[[httpx.Request], httpx.Response]


def make_client(*responses: httpx.Response | Exception) -> tuple[ChatClient, list[httpx.Request]]:
    """A client whose transport answers with ``responses`` in order (an exception is raised)."""
    queue = list(responses)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return ChatClient(http=httpx.Client(transport=httpx.MockTransport(handle))), seen


def endpoint(**changes) -> Endpoint:
    values = {"base_url": BASE, "api_key": Secret(KEY), "max_retries": 0, "retry_base_delay": 0.01}
    return Endpoint(**{**values, **changes})


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The client's waits between attempts, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(retry_module.time, "sleep", waited.append)
    return waited


@pytest.mark.parametrize(
    "status, body, kind, fragment",
    [
        (
            400,
            {"object": "error", "message": "Invalid model: x"},
            errors.BadRequestError,
            "Bad request: Invalid model: x",
        ),
        (401, {"message": "Unauthorized"}, errors.AuthenticationError, "Check MISTRAL_API_KEY"),
        (403, {"message": "tier"}, errors.PermissionDeniedError, "Forbidden: tier"),
        (404, {"detail": "Not Found"}, errors.NotFoundError, f"Not found: {BASE}/chat/completions"),
        (
            422,
            {"message": {"detail": [{"loc": ["body", "foo"], "msg": "Extra inputs are not permitted"}]}},
            errors.UnprocessableError,
            "field 'foo': Extra inputs are not permitted",
        ),
        (429, {"message": "Requests rate limit exceeded"}, errors.RateLimitError, "Rate limited"),
        (503, "<html>bad gateway</html>", errors.ServerError, "an HTML error page"),
        (418, {"detail": "teapot"}, errors.ApiError, "HTTP 418: teapot"),
    ],
)
def test_status_maps_to_one_exception_with_one_line(status, body, kind, fragment):
    content = {"text": body} if isinstance(body, str) else {"json": body}
    client, _ = make_client(httpx.Response(status, **content))
    with pytest.raises(kind) as caught:
        client.complete(endpoint(), BODY)
    assert type(caught.value) is kind and caught.value.status == status
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.label == f"MistralError {status}"


def test_messages_speak_to_their_audience():
    client, _ = make_client(httpx.Response(401, json={"message": "no"}), httpx.Response(401, json={"message": "no"}))
    with pytest.raises(errors.AuthenticationError) as from_code:
        client.complete(endpoint(), BODY)
    with errors.audience("notebook"), pytest.raises(errors.AuthenticationError) as from_notebook:
        client.complete(endpoint(), BODY)
    assert "%mistral" not in str(from_code.value)
    assert "run %mistral key to enter it again" in str(from_notebook.value)


def test_a_key_echoed_by_the_server_is_masked_everywhere():
    echoed = {"message": f"bad key {KEY}", "request": {"headers": {"authorization": f"Bearer {KEY}"}}}
    client, _ = make_client(httpx.Response(400, json=echoed), httpx.Response(200, json={"error": f"leak {KEY}"}))
    with pytest.raises(errors.BadRequestError) as caught:
        client.complete(endpoint(), BODY)
    assert KEY not in str(caught.value) and KEY not in json.dumps(caught.value.body)
    assert "****" in str(caught.value)
    with pytest.raises(errors.BadResponseError) as in_ok_body:
        client.complete(endpoint(), BODY)
    assert KEY not in str(in_ok_body.value)


@pytest.mark.parametrize(
    "headers, cap, expected",
    [
        ({"Retry-After": "7"}, 20.0, 7.0),
        ({"Retry-After": "7"}, 3.0, 3.0),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 20.0, 1.5),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 20.0, 0.0),  # a date in the past: at once
    ],
)
def test_retry_after_decides_the_wait(sleeps, headers, cap, expected):
    client, seen = make_client(httpx.Response(429, headers=headers, json={}), httpx.Response(200, json=OK))
    calls: list[tuple] = []
    completion = client.complete(endpoint(max_retries=2, retry_max_wait=cap), BODY, lambda *a: calls.append(a))
    assert completion.text == "fine" and len(seen) == 2
    assert sleeps == [expected]
    assert calls == [(2, 3, expected, "HTTP 429")]


def test_without_a_hint_the_backoff_grows_and_the_last_error_is_raised(sleeps):
    client, seen = make_client(*(httpx.Response(503, json={"message": "busy"}) for _ in range(3)))
    with pytest.raises(errors.ServerError, match=r"after 3 attempts"):
        client.complete(endpoint(max_retries=2, retry_base_delay=1.0), BODY)
    assert len(seen) == 3 and len(sleeps) == 2
    assert 0.75 <= sleeps[0] <= 1.0 and 1.5 <= sleeps[1] <= 2.0  # base * 2**attempt, minus up to 25% jitter


def test_a_client_error_is_never_retried(sleeps):
    client, seen = make_client(httpx.Response(400, json={"message": "no"}), httpx.Response(200, json=OK))
    with pytest.raises(errors.BadRequestError):
        client.complete(endpoint(max_retries=3), BODY)
    assert len(seen) == 1 and sleeps == []


def test_a_rate_limit_pauses_the_shared_pacer_instead_of_sleeping(sleeps):
    pacer = Pacer()
    client, _ = make_client(httpx.Response(429, headers={"Retry-After": "0.05"}, json={}), httpx.Response(200, json=OK))
    assert client.complete(endpoint(max_retries=1, pacer=pacer), BODY).text == "fine"
    assert sleeps == []  # the pacer held the next attempt back instead


class _BreakingStream(httpx.SyncByteStream):
    """A response body that fails after ``chunks``, as a dropped connection does."""

    def __init__(self, chunks: list[bytes]):
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        raise httpx.ReadError("connection reset")


def sse(*texts: str) -> bytes:
    events = [{"choices": [{"delta": {"content": t}, "finish_reason": None}]} for t in texts]
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def test_a_stream_follows_the_same_retry_rule_before_any_text(sleeps):
    client, seen = make_client(
        httpx.ConnectError("refused"),
        httpx.Response(200, stream=_BreakingStream([b": keep-alive\n\n"])),
        httpx.Response(200, content=sse("Hel", "lo")),
    )
    calls: list[tuple] = []
    stream = client.stream(endpoint(max_retries=2), BODY, lambda *a: calls.append(a))
    assert "".join(stream) == "Hello"
    assert [c[3] for c in calls] == ["connection failed", "connection lost"]
    assert [c[:2] for c in calls] == [(2, 3), (3, 3)] and len(sleeps) == 2 and len(seen) == 3
    assert seen[0].headers["accept"] == "text/event-stream" and seen[0].headers["authorization"] == f"Bearer {KEY}"


def test_a_stream_is_never_retried_once_text_arrived(sleeps):
    head = b"data: " + json.dumps({"choices": [{"delta": {"content": "Hi"}}]}).encode() + b"\n\n"
    client, seen = make_client(httpx.Response(200, stream=_BreakingStream([head])), httpx.Response(200, json=OK))
    stream = client.stream(endpoint(max_retries=2), BODY)
    with pytest.raises(errors.StreamError) as caught:
        list(stream)
    assert caught.value.partial == "Hi" and len(seen) == 1 and sleeps == []


@pytest.mark.parametrize(
    "response, fragment",
    [
        (httpx.Response(200, text="<html>login page</html>"), "did not answer with JSON"),
        (httpx.Response(200, json={"object": "error", "message": "overloaded"}), "reported an error: overloaded"),
        (httpx.Response(200, json={"choices": "none"}), "unexpected shape"),
        (httpx.Response(200, json={"id": "x"}), "without choices"),
    ],
)
def test_a_bad_body_with_a_2xx_status_is_a_bad_response_not_a_stream_error(response, fragment):
    client, _ = make_client(response)
    with pytest.raises(errors.BadResponseError, match=fragment) as caught:
        client.complete(endpoint(), BODY)
    assert not isinstance(caught.value, errors.StreamError)


@pytest.mark.parametrize(
    "url, loopback",
    [
        ("http://localhost:8080/v1", True),
        ("http://127.0.0.1:1234", True),
        ("http://127.0.0.2:1234/v1", True),
        ("http://[::1]:8000/v1", True),
        ("https://api.mistral.ai/v1", False),
        ("http://10.0.0.1/v1", False),
        ("http://localhost.example.com/v1", False),
    ],
)
def test_this_machine_has_one_definition(url, loopback):
    assert is_loopback(url) is loopback


@pytest.mark.parametrize(
    "data, outcome",
    [
        (b'  {"choices": [{"delta": {"content": "Hi"}, "finish_reason": "stop"}]}  ', "Hi"),
        (b'{"choices": [{"delta": {"content": "Hi"}, "finish_reason": "stop"}]} trailing', "malformed"),
        (b'{"choices": [{"delta": {"content": "Hi"}, "finish_reason": "stop"}]', "malformed"),
        (b" ", "malformed"),
        (b'"just a string"', "[DONE]"),  # not an object: skipped, and the stream ends as usual
    ],
)
def test_each_event_is_decoded_by_the_rules_of_json_loads(data, outcome):
    """The fast decoding of events accepts and refuses exactly what json.loads does."""
    body = b"data:" + data + b"\n\n" + b"data: [DONE]\n\n"
    client, _ = make_client(httpx.Response(200, content=body))
    stream = client.stream(endpoint(), BODY)
    if outcome in ("Hi", "[DONE]"):
        assert "".join(stream) == ("Hi" if outcome == "Hi" else "")
    else:
        with pytest.raises(errors.StreamError, match=re.escape(outcome)):
            list(stream)
