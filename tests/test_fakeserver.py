"""Tests of the fake chat-completions server, over real HTTP with httpx."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.fakeapi import ErrorReply, FakeChatServer, Hang, RawReply, Reply, split_words

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
FAKEAPI = [sys.executable, "-m", "fakeapi"]  # run with tests/ on PYTHONPATH
FAKEAPI_ENV = {**os.environ, "PYTHONPATH": TESTS_DIR}
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]


@pytest.fixture
def server():
    with FakeChatServer() as fake:
        yield fake


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=5) as http:
        yield http


def chat(client, path="/v1/chat/completions", **body):
    payload = {"model": "mistral-small-latest", "messages": MESSAGES, **body}
    return client.post(path, json=payload)


def sse_events(raw: bytes) -> list:
    """The data payloads of an SSE body (parsed as JSON except [DONE])."""
    events = []
    for block in raw.decode().split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_non_streaming_shape(server, client):
    server.script(Reply(text="Hello there world", finish_reason="length"))
    response = chat(client)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["id"].startswith("cmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "mistral-small-latest"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there world", "tool_calls": None},
            "finish_reason": "length",
            "logprobs": None,
        }
    ]
    # 4 words in the prompt, 3 word-chunks in the reply
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}


def test_default_reply_echoes_last_user_message(client):
    body = chat(client).json()
    assert body["choices"][0]["message"]["content"] == "Echo: Say hi"


def test_streaming_shape(server, client):
    server.script(Reply(text="Hello big world", model="other-model"))
    response = chat(client, stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.content.endswith(b"data: [DONE]\n\n")
    events = sse_events(response.content)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("cmpl-")
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "other-model" for c in chunks)
    assert chunks[0]["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None, "logprobs": None}
    ]
    content = chunks[1:-1]
    assert [c["choices"][0]["delta"]["content"] for c in content] == ["Hello", " big", " world"]
    assert all(c["choices"][0]["finish_reason"] is None and c["p"] for c in content)
    final = chunks[-1]
    assert final["choices"] == [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop", "logprobs": None}]
    assert final["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
    assert b'"choices":[{"index":0,' in response.content  # compact separators


def test_streaming_options_off(server, client):
    server.script(
        Reply(
            chunks=["a", "b"],
            role_chunk=False,
            padding=False,
            done=False,
            usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        )
    )
    events = sse_events(chat(client, stream=True).content)
    assert "[DONE]" not in events
    assert [e["choices"][0]["delta"] for e in events] == [{"content": "a"}, {"content": "b"}, {"content": ""}]
    assert all("p" not in e for e in events)
    assert events[-1]["usage"]["total_tokens"] == 3


def test_usage_in_separate_chunk(server, client):
    server.script(Reply(text="x y", usage_in_separate_chunk=True))
    events = sse_events(chat(client, stream=True).content)
    assert events[-1] == "[DONE]"
    finish, usage_only = events[-3], events[-2]
    assert finish["choices"][0]["finish_reason"] == "stop" and "usage" not in finish
    assert usage_only["choices"] == []
    assert usage_only["usage"] == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}


def test_chunk_delay_streams_incrementally(server, client):
    server.script(Reply(chunks=["a", "b", "c", "d"], chunk_delay=0.08))
    arrivals = []
    with client.stream(
        "POST", "/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": True}
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic())
    assert len(arrivals) == 7  # role, 4 content, finish, [DONE]
    # The first event was received long before the last one was sent (6 gaps of 80 ms).
    assert arrivals[-1] - arrivals[0] > 0.3


def test_large_stream_is_fast(server, client):
    server.script(Reply(chunks=["x"] * 20_000))
    start = time.monotonic()
    response = chat(client, stream=True)
    elapsed = time.monotonic() - start
    assert response.content.count(b"\n\n") == 20_000 + 3
    assert elapsed < 3


@pytest.mark.parametrize(
    "status, expected",
    [
        (400, {"type": "invalid_model", "message": "Invalid model: mistral-small-latest"}),
        (401, {"message": "Unauthorized"}),
        (403, {"type": "tier_not_allowed"}),
        (404, {"detail": "Not Found"}),
        (429, {"message": "Requests rate limit exceeded"}),
        (500, {"object": "error", "type": "server_error"}),
        (503, {"object": "error", "type": "server_error"}),
    ],
)
def test_error_reply_default_bodies(server, client, status, expected):
    server.script(ErrorReply(status))
    response = chat(client, stream=True)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert expected.items() <= body.items()


def test_error_reply_422_default_and_headers(server, client):
    server.script(ErrorReply(422), ErrorReply(429, headers={"Retry-After": "1", "retry-after-ms": "20"}))
    detail = chat(client).json()["message"]["detail"][0]
    assert detail["msg"] == "Extra inputs are not permitted"
    response = chat(client)
    assert response.headers["retry-after"] == "1"
    assert response.headers["retry-after-ms"] == "20"


def test_error_reply_custom_and_html_bodies(server, client):
    server.script(
        ErrorReply(401, body={"detail": "Unauthorized"}), ErrorReply(502, body="<html><body>Bad Gateway</body></html>")
    )
    assert chat(client).json() == {"detail": "Unauthorized"}
    response = chat(client)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == "<html><body>Bad Gateway</body></html>"


def test_raw_reply_bytes_arrive_exactly(server, client):
    pieces = [
        b"\xef\xbb\xbf",
        b": keep-alive\r\n\r\n",
        b"d",
        b'ata:{"a":',
        b"\xc3",
        b"\xa9}\r",
        b"\n\r\n",
        b"",
        b"data: [DONE]\r\n\r\n",
    ]
    server.script(RawReply(pieces, headers={"X-Test": "yes"}))
    with client.stream(
        "POST", "/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": True}
    ) as response:
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["x-test"] == "yes"
        received = list(response.iter_raw())
    assert b"".join(received) == b"".join(pieces)


def test_raw_reply_status_and_content_type(server, client):
    server.script(RawReply([b'{"object":"error"}'], status=500, content_type="application/json"))
    response = chat(client)
    assert response.status_code == 500
    assert response.json() == {"object": "error"}


def test_raw_reply_drop_raises_remote_protocol_error(server, client):
    server.script(RawReply([b'data: {"x":1}\n\n'], drop=True))
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client, stream=True)


def test_reply_drop_after(server, client):
    server.script(Reply(text="one two three four", drop_after=2))
    received = []
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream(
            "POST", "/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": True}
        ) as response:
            for chunk in response.iter_raw():
                received.append(chunk)
    events = sse_events(b"".join(received))
    assert [e["choices"][0]["delta"]["content"] for e in events] == ["", "one", " two"]
    # The server keeps working after an aborted connection.
    assert chat(client).status_code == 200


def test_hang_triggers_read_timeout_and_stop_is_prompt():
    server = FakeChatServer().start()
    try:
        server.script(Hang(0.2), Hang(30))
        with httpx.Client(base_url=server.url, timeout=httpx.Timeout(5, read=0.1)) as http:
            with pytest.raises(httpx.ReadTimeout):
                chat(http)
            with pytest.raises(httpx.ReadTimeout):
                chat(http)
    finally:
        start = time.monotonic()
        server.stop()
        assert time.monotonic() - start < 1


def test_hang_closes_after_seconds(server, client):
    server.script(Hang(0.1))
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client)


def test_reply_delay(server, client):
    server.script(Reply(delay=0.15))
    start = time.monotonic()
    assert chat(client).status_code == 200
    assert time.monotonic() - start >= 0.15


def test_unknown_paths_are_404(server, client):
    for method, path in [
        ("GET", "/"),
        ("POST", "/v1/completions"),
        ("GET", "/v1/chat/completions"),
        ("DELETE", "/v1/models"),
        ("POST", "/v2/chat/completions"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": "Not Found"}


def test_both_paths_and_models(server, client):
    assert chat(client, path="/chat/completions").status_code == 200
    assert chat(client, path="/v1/chat/completions").status_code == 200
    for path in ("/models", "/v1/models"):
        body = client.get(path).json()
        assert body["object"] == "list"
        assert [m["id"] for m in body["data"]] == ["mistral-small-latest", "Mistral-chat"]
    server.models = [{"id": "only", "object": "model"}]
    assert client.get("/models").json()["data"] == [{"id": "only", "object": "model"}]


def test_validation_422_does_not_consume_script(server, client):
    server.script(Reply(text="scripted"))
    response = chat(client, stream_options={"include_usage": True})
    assert response.status_code == 422
    body = response.json()
    assert body["object"] == "error" and body["type"] == "invalid_request_error"
    assert body["message"]["detail"][0]["loc"] == ["body", "stream_options"]
    assert body["message"]["detail"][0]["msg"] == "Extra inputs are not permitted"

    response = client.post("/v1/chat/completions", json={"messages": MESSAGES})
    assert response.status_code == 422
    assert response.json()["message"]["detail"] == [
        {"type": "missing", "loc": ["body", "model"], "msg": "Field required", "input": {"messages": MESSAGES}}
    ]

    response = client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422

    # All accepted Mistral fields pass.
    ok = chat(
        client,
        temperature=0.2,
        top_p=1,
        max_tokens=5,
        stop=["x"],
        random_seed=1,
        response_format={"type": "text"},
        presence_penalty=0,
        frequency_penalty=0,
        n=1,
        safe_prompt=False,
        tools=[],
        tool_choice="auto",
        parallel_tool_calls=True,
        prediction={"type": "content", "content": ""},
    )
    assert ok.json()["choices"][0]["message"]["content"] == "scripted"
    assert len(server.requests) == 4


def test_strict_off_accepts_unknown_fields(server, client):
    server.strict = False
    assert chat(client, seed=3).status_code == 200


def test_required_key(server, client):
    server.required_key = "sekret"
    server.script(Reply(text="authorized"))
    response = chat(client)
    assert response.status_code == 401
    body = response.json()
    assert body["message"] == "Unauthorized" and body["request_id"]
    assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.post(
        "/chat/completions", headers={"Authorization": "Bearer sekret"}, json={"model": "m", "messages": MESSAGES}
    )
    assert response.json()["choices"][0]["message"]["content"] == "authorized"


def test_captured_requests(server, client):
    client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": MESSAGES, "stream": True},
        headers={"Authorization": "Bearer k", "X-Custom": "Value"},
    )
    client.get("/nowhere?x=1")
    assert server.wait_for_requests(2, timeout=1)
    first, second = server.requests
    assert first.method == "POST" and first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == "Bearer k"
    assert first.headers["x-custom"] == "Value"
    assert first.headers["content-type"] == "application/json"
    assert all(k == k.lower() for k in first.headers)
    assert first.json() == {"model": "m", "messages": MESSAGES, "stream": True}
    assert second.method == "GET" and second.path == "/nowhere?x=1" and second.body == b""
    server.reset()
    assert server.requests == []


def test_script_fifo_and_reset(server, client):
    server.script(Reply(text="one"), Reply(text="two"))
    assert chat(client).json()["choices"][0]["message"]["content"] == "one"
    server.reset()
    assert chat(client).json()["choices"][0]["message"]["content"] == "Echo: Say hi"
    server.default_reply = lambda request: Reply(text=f"model={request['model']}")
    server.add_rule("Say", Reply(text="rule"))
    server.required_key = "k"
    assert chat(client).status_code == 401
    server.required_key = None
    assert chat(client).json()["choices"][0]["message"]["content"] == "rule"
    server.reset()  # rules, default_reply and required_key are back to defaults
    assert chat(client).json()["choices"][0]["message"]["content"] == "Echo: Say hi"
    server.default_reply = lambda request: Reply(text=f"model={request['model']}")
    server.script(Reply(text="queued"))
    assert chat(client).json()["choices"][0]["message"]["content"] == "queued"
    assert chat(client).json()["choices"][0]["message"]["content"] == "model=mistral-small-latest"


def test_rules(server, client):
    server.add_rule("weather", Reply(text="Sunny"))
    server.add_rule("rate me", ErrorReply(429))

    def ask(text):
        return client.post(
            "/chat/completions",
            json={
                "model": "m",
                "messages": [
                    {"role": "user", "content": "ignored weather"},
                    {"role": "assistant", "content": "..."},
                    {"role": "user", "content": text},
                ],
            },
        )

    assert ask("What is the weather?").json()["choices"][0]["message"]["content"] == "Sunny"
    assert ask("please rate me").status_code == 429
    assert ask("nothing").json()["choices"][0]["message"]["content"] == "Echo: nothing"
    server.script(Reply(text="queued first"))
    assert ask("weather").json()["choices"][0]["message"]["content"] == "queued first"


def test_keep_alive_reuses_connection(server):
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        body = json.dumps({"model": "m", "messages": MESSAGES, "stream": True})
        conn.request("POST", "/v1/chat/completions", body=body)
        conn.getresponse().read()
        sock = conn.sock
        conn.request("POST", "/v1/chat/completions", body=body)
        response = conn.getresponse()
        assert response.read().endswith(b"data: [DONE]\n\n")
        assert conn.sock is sock
    finally:
        conn.close()


def test_connection_close_is_honoured(server):
    server.script(Reply(chunks=["x"] * 3))
    body = json.dumps({"model": "m", "messages": MESSAGES, "stream": True}).encode()
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), 5) as sock:
        sock.sendall(
            b"POST /chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        data = b""
        while chunk := sock.recv(65536):  # ends when the server closes the connection
            data += chunk
    assert b"\r\nConnection: close\r\n" in data
    assert data.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")


def test_split_words():
    assert split_words("a b") == ["a", " b"]
    assert split_words("  a  b\n") == ["  a", "  b\n"]
    assert split_words("") == []
    assert split_words("   ") == ["   "]


def test_cli_mode(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            {
                "rules": [{"match": "capital", "reply": {"text": "Paris", "chunks": ["Pa", "ris"]}}],
                "default": {"text": "Default answer"},
            }
        )
    )
    process = subprocess.Popen([*FAKEAPI, "--script", str(script)], stdout=subprocess.PIPE, text=True, env=FAKEAPI_ENV)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("FAKE_SERVER_URL=http://127.0.0.1:")
        url = line.split("=", 1)[1]
        with httpx.Client(base_url=url, timeout=5) as http:
            response = http.post(
                "/v1/chat/completions",
                json={
                    "model": "m",
                    "stream": True,
                    "messages": [{"role": "user", "content": "The capital of France?"}],
                },
            )
            deltas = [e["choices"][0]["delta"].get("content") for e in sse_events(response.content)[1:-2]]
            assert deltas == ["Pa", "ris"]
            response = http.post("/chat/completions", json={"model": "m", "messages": MESSAGES})
            assert response.json()["choices"][0]["message"]["content"] == "Default answer"
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_cli_list_script(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"status": 429, "headers": {"Retry-After": "1"}}, {"text": "after retry"}]))
    process = subprocess.Popen(
        [*FAKEAPI, "--port", "0", "--script", str(script)], stdout=subprocess.PIPE, text=True, env=FAKEAPI_ENV
    )
    try:
        url = process.stdout.readline().strip().split("=", 1)[1]
        with httpx.Client(base_url=url, timeout=5) as http:
            first = http.post("/chat/completions", json={"model": "m", "messages": MESSAGES})
            assert first.status_code == 429 and first.headers["retry-after"] == "1"
            second = http.post("/chat/completions", json={"model": "m", "messages": MESSAGES})
            assert second.json()["choices"][0]["message"]["content"] == "after retry"
    finally:
        process.kill()
        process.wait(timeout=5)


def test_reasoning_reply_streams_thinking_parts_then_text(server, client):
    server.script(Reply(text="Four it is", thinking=["Two ", "plus two ", "is four."]))
    events = sse_events(chat(client, stream=True, reasoning_effort="high").content)
    deltas = [e["choices"][0]["delta"]["content"] for e in events[1:-2]]

    def part(text, closed):
        return {"type": "thinking", "thinking": [{"type": "text", "text": text}], "signature": None, "closed": closed}

    assert deltas == [
        [part("Two ", False)],
        [part("plus two ", False)],
        [part("is four.", True), {"type": "text", "text": "Four"}],
        " it",
        " is",
    ]
    assert all(e["p"] for e in events[1:-2])
    assert events[-2]["usage"]["completion_tokens"] == 6


def test_reasoning_reply_without_streaming_is_a_content_list(server, client):
    server.script(Reply(text="Four.", thinking="Two plus two."))
    message = chat(client, reasoning_effort="none").json()["choices"][0]["message"]
    assert message["content"] == [
        {
            "type": "thinking",
            "thinking": [{"type": "text", "text": "Two plus two."}],
            "signature": None,
            "closed": True,
        },
        {"type": "text", "text": "Four."},
    ]


def test_reasoning_effort_values_and_assistant_content_parts_are_checked(server, client):
    assert chat(client, reasoning_effort="medium").json()["message"]["detail"][0]["loc"] == ["body", "reasoning_effort"]
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "hm"}], "closed": True}
    history = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [thinking, {"type": "text", "text": "a"}]},
    ]
    ok = client.post(
        "/v1/chat/completions", json={"model": "m", "messages": [*history, {"role": "user", "content": "again"}]}
    )
    assert ok.status_code == 200
    for bad in (
        [{"type": "thinking", "thinking": "not a list"}],
        [{"type": "thinking", "thinking": [{"type": "text", "text": "x"}], "extra": 1}],
        [{"type": "image", "text": "x"}],
    ):
        messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": bad}]
        response = client.post("/v1/chat/completions", json={"model": "m", "messages": messages})
        assert response.status_code == 422, bad
        assert response.json()["message"]["detail"][0]["loc"][:5] == ["body", "messages", 1, "content", 0]
