"""Failures a user can act on: one clear line each, the cell fails, the history is untouched."""

from __future__ import annotations

import socket

import httpx
import pytest

from mistral_magic import StreamError
from mistral_magic.api.failures import connection_error
from mistral_magic.api.protocol import Endpoint
from mistral_magic.secret import Secret
from tests.fakeapi import ErrorReply, Hang, Reply
from tests.support import TEST_KEY


def one_line_error(run) -> str:
    assert run.error is not None, "the cell should fail"
    # Retry notices ("[HTTP 503; retrying in ...]") may come first; the error itself is one line.
    lines = [line for line in run.stdout.splitlines() if line.strip() and "retrying in" not in line]
    assert len(lines) == 1, run.stdout
    assert "Traceback" not in run.stdout
    return lines[0]


@pytest.mark.parametrize(
    "reply, fragments",
    [
        (ErrorReply(400), ["MistralError 400", "Bad request", "Invalid model"]),
        (ErrorReply(401), ["MistralError 401", "MISTRAL_API_KEY", "%mistral key"]),
        (ErrorReply(401, body={"detail": "Unauthorized"}), ["MistralError 401", "Unauthorized"]),
        (ErrorReply(403), ["MistralError 403", "not available in your subscription tier"]),
        (ErrorReply(404), ["MistralError 404", "/v1/chat/completions", "base URL"]),
        (ErrorReply(422), ["MistralError 422", "field"]),
        (
            ErrorReply(422, body={"detail": [{"loc": ["body", "foo"], "msg": "Extra inputs are not permitted"}]}),
            ["field 'foo': Extra inputs are not permitted"],
        ),
    ],
)
def test_client_errors_are_one_actionable_line(shell, fake, reply, fragments):
    shell.ok("%%mistral\nfirst")
    fake.script(reply)
    run = shell.run("%%mistral\nsecond")
    line = one_line_error(run)
    for fragment in fragments:
        assert fragment in line
    assert len(fake.requests) == 2  # 4xx other than 408/409/429 is never retried
    assert [t.user for t in shell.magics.session.store.get("default").turns] == ["first"]


def test_unknown_model_from_the_server_is_named(shell, fake):
    fake.script(
        ErrorReply(400, body={"object": "error", "message": "Invalid model: mistral-huge", "type": "invalid_model"})
    )
    line = one_line_error(shell.run("%%mistral -m mistral-huge\nhi"))
    assert "Invalid model: mistral-huge" in line


def test_a_real_404_from_a_wrong_path_shows_the_url(shell, fake, monkeypatch):
    monkeypatch.setenv("MISTRAL_BASE_URL", fake.url + "/wrong")
    line = one_line_error(shell.run("%%mistral\nhi"))
    assert f"{fake.url}/wrong/chat/completions" in line


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_then_reported(shell, fake, status):
    fake.script(*[ErrorReply(status)] * 3)
    run = shell.run("%%mistral\nhi")
    line = one_line_error(run)
    assert f"MistralError {status}" in line and "after 3 attempts" in line
    assert len(fake.requests) == 3
    assert f"[HTTP {status}; retrying in" in run.stdout and "(attempt 3 of 3)" in run.stdout


def test_html_error_page_from_a_proxy(shell, fake):
    fake.script(ErrorReply(502, body="<html><body><h1>502 Bad Gateway</h1></body></html>"), *[ErrorReply(502)] * 2)
    run = shell.run("%%mistral\nhi")
    assert "MistralError 502" in run.stdout


def test_rate_limit_after_retries(shell, fake):
    fake.script(*[ErrorReply(429, headers={"Retry-After": "0"})] * 3)
    line = one_line_error(shell.run("%%mistral\nhi"))
    assert "Rate limited (after 3 attempts)" in line and "Requests rate limit exceeded" in line


def test_connection_refused_names_the_base_url(shell, fake, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MISTRAL_BASE_URL", f"http://127.0.0.1:{port}/v1")
    line = one_line_error(shell.run("%%mistral\nhi"))
    assert f"Cannot reach http://127.0.0.1:{port}/v1" in line and "refused" in line


def test_dns_failure_message(shell):
    # Real DNS would leave this machine: classify the error httpx raises for an unknown host.
    endpoint = Endpoint(base_url="https://api.Mistral.example", api_key=Secret(TEST_KEY))
    error = connection_error(endpoint, httpx.ConnectError("[Errno -2] Name or service not known"))
    assert "could not be resolved" in str(error) and "https://api.Mistral.example" in str(error)


def test_read_timeout_before_any_data(shell, fake):
    shell.ok("%mistral config read_timeout=0.3 max_retries=0")
    fake.script(Hang(seconds=3))
    line = one_line_error(shell.run("%%mistral\nhi"))
    assert "No answer from" in line and "read_timeout" in line


def test_read_timeout_mid_stream_keeps_the_partial_text(shell, fake):
    shell.ok("%mistral config read_timeout=0.3")
    fake.script(
        Reply(text="one two three four", chunks=["one", " two", " three", " four"], chunk_delay=1.0, role_chunk=False)
    )
    run = shell.run("%%mistral\nhi")
    assert type(run.error) is StreamError
    assert "read timeout" in str(run.error)
    assert run.error.partial == "one"
    assert run.markdown and run.markdown[0].startswith("one")
    assert len(fake.requests) == 1  # never retried once text was shown
    assert shell.magics.session.store.get("default").turns == []


def test_errors_never_show_the_key(shell, fake):
    fake.script(ErrorReply(401, body={"message": f"Bad key {TEST_KEY}"}))
    run = shell.run("%%mistral\nhi")
    assert TEST_KEY not in run.everything
    assert "****" in run.stdout
