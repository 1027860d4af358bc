"""Retries: which failures, how long to wait, and never once text was shown."""

from __future__ import annotations

import email.utils

import pytest

from mistral_magic.api.retry import backoff_delay, retry_delay, server_hint
from tests.fakeapi import ErrorReply, Hang, Reply


@pytest.mark.parametrize("status", [408, 409, 429, 500, 503])
def test_retryable_status_then_success(shell, fake, status):
    fake.script(ErrorReply(status), Reply(text="recovered"))
    run = shell.ok("%%mistral\nhi")
    assert run.markdown == ["recovered"]
    assert len(fake.requests) == 2
    assert fake.requests[0].json() == fake.requests[1].json()
    assert [t.assistant for t in shell.magics.session.store.get("default").turns] == ["recovered"]


def test_retry_after_seconds_is_honoured(shell, fake):
    shell.ok("%mistral config retry_max_wait=5")
    fake.script(ErrorReply(429, headers={"Retry-After": "1"}), Reply(text="ok"))
    run = shell.ok("%%mistral\nhi")
    assert "[HTTP 429; retrying in 1.0 s (attempt 2 of 3)]" in run.stdout


def test_retry_after_ms_wins_over_retry_after(shell, fake):
    shell.ok("%mistral config retry_max_wait=5")
    fake.script(ErrorReply(429, headers={"Retry-After": "3", "retry-after-ms": "250"}), Reply(text="ok"))
    run = shell.ok("%%mistral\nhi")
    assert "retrying in 0.2 s" in run.stdout or "retrying in 0.3 s" in run.stdout


def test_server_hint_is_capped(shell, fake):
    shell.ok("%mistral config retry_max_wait=0.1")
    fake.script(ErrorReply(503, headers={"Retry-After": "3600"}), Reply(text="ok"))
    run = shell.ok("%%mistral\nhi")
    assert "retrying in 0.1 s" in run.stdout


def test_max_retries_zero_means_one_attempt(shell, fake):
    shell.ok("%mistral config max_retries=0")
    fake.script(ErrorReply(503), Reply(text="never reached"))
    run = shell.run("%%mistral\nhi")
    assert run.error is not None and len(fake.requests) == 1


def test_dropped_connection_before_any_text_is_retried(shell, fake):
    fake.script(Reply(text="lost", drop_after=0), Reply(text="second try"))
    run = shell.ok("%%mistral\nhi")
    assert run.markdown == ["second try"] and len(fake.requests) == 2
    assert "connection lost; retrying" in run.stdout


def test_timeout_before_any_text_is_retried(shell, fake):
    shell.ok("%mistral config read_timeout=0.3")
    fake.script(Hang(seconds=2), Reply(text="after the hang"))
    assert shell.ok("%%mistral\nhi").markdown == ["after the hang"]


def test_non_streaming_requests_are_retried_too(shell, fake):
    fake.script(ErrorReply(502), Reply(text="whole"))
    assert shell.ok("%%mistral --no-stream\nhi").markdown == ["whole"]
    assert len(fake.requests) == 2


def test_retry_after_parsing():
    assert server_hint({"retry-after": "2"}) == 2.0
    assert server_hint({"retry-after": "1.5"}) == 1.5
    assert server_hint({"retry-after-ms": "20"}) == 0.02
    assert server_hint({"retry-after": "soon"}) is None
    assert server_hint({}) is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert server_hint({"retry-after": date}, now=1_000_000) == 30.0
    assert server_hint({"retry-after": email.utils.formatdate(999_000, usegmt=True)}, now=1_000_000) == 0.0


def test_backoff_grows_with_jitter_and_is_capped():
    for attempt, full in [(0, 0.5), (1, 1.0), (2, 2.0), (6, 8.0)]:
        for _ in range(50):
            assert 0.75 * full <= backoff_delay(attempt, 0.5, 8.0) <= full
    assert retry_delay(0, {"retry-after": "100"}, base=0.5, cap=20) == 20
