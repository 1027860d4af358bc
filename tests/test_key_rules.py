"""Where the key goes and where it never shows: not in a Verbose traceback, not in anything a server
echoes, not to the local model server, not across a redirect to another host."""

from __future__ import annotations

import json

import pytest

from mistral_magic import errors
from tests.fakeapi import ErrorReply, FakeChatServer, RawReply, Reply
from tests.support import TEST_KEY


def shows_key(text: str, key: str = TEST_KEY) -> bool:
    """Whether ``text`` holds the key or any 12 characters of it (a truncated echo counts)."""
    return any(key[i : i + 12] in text for i in range(len(key) - 11))


@pytest.fixture
def verbose(shell):
    """``%xmode Verbose``: tracebacks print every frame's local variables."""
    shell.ok("%xmode Verbose")
    yield shell
    shell.ok("%xmode Context")


def one_line_failure(run) -> None:
    assert isinstance(run.error, errors.MistralMagicError), repr(run.error)
    assert "\n" not in str(run.error)
    assert "Traceback" not in run.stdout + run.stderr


# -- 1. Verbose tracebacks ----------------------------------------------------------------------


def test_a_prompt_with_a_lone_surrogate_is_sent_replaced_without_the_key(verbose, fake):
    """A lone surrogate is replaced where text leaves Python (issue 11 item 10), so nothing fails."""
    run = verbose.run("%%mistral\nbroken \ud800 text")
    assert run.error is None and not shows_key(run.everything)
    assert fake.requests[-1].json()["messages"][-1]["content"] == "broken \ufffd text"


@pytest.mark.parametrize("base_url", ["http://[::1", "http://127.0.0.1:99999/v1", "https://exa mple.com/v1"])
def test_a_base_url_httpx_cannot_use_fails_in_one_line_without_the_key(verbose, fake, monkeypatch, base_url):
    monkeypatch.setenv("MISTRAL_BASE_URL", base_url)  # the environment is read when a cell runs
    run = verbose.run("%%mistral\nhi")
    assert not shows_key(run.everything)
    one_line_failure(run)
    assert fake.requests == []
    assert str(run.error).startswith(f"MISTRAL_BASE_URL: base_url={base_url!r} is invalid")


@pytest.mark.parametrize(
    "bad", ["\u200b", "é", " x", "\t", "\x7f"], ids=["zero-width", "accent", "space", "tab", "control"]
)
def test_a_key_with_whitespace_or_non_ascii_is_refused_when_it_is_set(verbose, fake, monkeypatch, bad):
    key = TEST_KEY[:10] + bad + TEST_KEY[10:]
    monkeypatch.setattr("getpass.getpass", lambda prompt="": key)
    run = verbose.run("%mistral key")
    one_line_failure(run)
    assert "whitespace" in str(run.error) and not shows_key(run.everything, key)
    assert verbose.magics.api_key_source() == "env MISTRAL_API_KEY"  # nothing changed
    monkeypatch.setenv("MISTRAL_API_KEY", key)
    run = verbose.run("%%mistral\nhi")
    one_line_failure(run)
    assert "MISTRAL_API_KEY" in str(run.error) and not shows_key(run.everything, key)
    assert fake.requests == []
    with pytest.raises(errors.UsageError):
        verbose.magics.set_api_key(key)


def test_the_request_path_turns_any_unexpected_error_into_one_line(verbose, fake, monkeypatch):
    """An error nobody foresaw, raised while the request is sent, says what failed, in one line."""
    import httpx

    def broken(*args, **kwargs):
        raise RuntimeError("something odd")

    monkeypatch.setattr(httpx.Client, "send", broken)
    for cell in ("%%mistral\nhi", "%%mistral --no-stream\nhi", "%mistral models"):
        run = verbose.run(cell)
        one_line_failure(run)
        assert "RuntimeError: something odd" in str(run.error)
        assert not shows_key(run.everything)


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999/v1", "https://"])
def test_a_base_url_httpx_cannot_parse_is_refused_when_it_is_set(shell, caplog, url):
    run = shell.run(f"%mistral config base_url={url}")
    assert isinstance(run.error, errors.InvalidSettingError) and str(run.error).startswith(f"base_url={url!r}")
    shell.run(f"%config MistralMagics.base_url = {url!r}")
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [str(run.error)]
    assert shell.magics.base_url is None


# -- 2. A key the server echoes -----------------------------------------------------------------

ECHO = f"invalid header Authorization: Bearer {TEST_KEY}"


def json_body(obj: object, status: int = 200) -> RawReply:
    return RawReply([json.dumps(obj).encode()], status=status, content_type="application/json")


@pytest.mark.parametrize(
    "cell, reply",
    [
        ("%%mistral --no-stream\nhi", json_body({"error": {"message": ECHO}})),
        ("%%mistral --no-stream\nhi", json_body({"object": "error", "message": ECHO})),
        ("%%mistral\nhi", RawReply([f"data: {{oops {ECHO}\n\n".encode()])),
        ("%%mistral\nhi", RawReply([("data: {" + "x" * 64 + TEST_KEY + "\n\n").encode()])),  # cut at 80
        ("%%mistral\nhi", RawReply([f"data: {json.dumps({'error': ECHO})}\n\n".encode()])),
        ("%%mistral\nhi", Reply(text=f"you sent {ECHO}")),
        ("%%mistral --no-stream\nhi", Reply(text=f"you sent {ECHO}", model=ECHO)),
    ],
    ids=[
        "no-stream error",
        "no-stream object error",
        "malformed chunk",
        "malformed chunk cut",
        "stream error",
        "reply",
        "no-stream reply and model",
    ],
)
def test_a_key_echoed_by_the_server_never_shows(shell, fake, cell, reply):
    fake.script(reply)
    runs = [shell.run(cell), shell.run("%mistral history"), shell.run("%mistral chats")]
    assert fake.requests[-1].headers["authorization"] == f"Bearer {TEST_KEY}"
    for run in runs:
        assert not shows_key(run.everything)


def test_a_key_echoed_to_an_each_run_never_shows(shell, fake):
    fake.script(json_body({"error": ECHO}), json_body({"error": {"message": ECHO}}), Reply(text=ECHO))
    shell.ns["t_rows"] = ["a", "b", "c"]
    runs = [shell.run("%%mistral --each t_rows --out t_answers --workers 1\nsay {item}"), shell.run("%mistral errors")]
    runs.append(shell.run("print(t_answers)"))
    for run in runs:
        assert not shows_key(run.everything)
    assert "****" in runs[1].everything


def test_a_key_echoed_in_the_model_list_never_shows(shell, fake):
    fake.models_reply = json_body({"data": [{"id": ECHO}, {"id": "fine-model"}]})
    run = shell.ok("%mistral models")
    assert "fine-model" in run.everything and not shows_key(run.everything)
    fake.models_reply = json_body({"error": {"message": ECHO}})
    run = shell.run("%mistral models")
    assert isinstance(run.error, errors.BadResponseError) and not shows_key(run.everything)


# -- 3. The key goes only to the server it was given for ----------------------------------------


def test_the_key_follows_a_base_url_the_user_changes(shell, fake, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "sk-typed-key-abcdefghijkl")
    shell.ok("%mistral key")
    with FakeChatServer() as other:
        shell.ok(f"%mistral config base_url={other.url}/v1")
        shell.ok("%%mistral\nhi")
        assert other.requests[-1].headers["authorization"] == "Bearer sk-typed-key-abcdefghijkl"


def test_local_mode_settings_send_no_key(shell, fake):
    """What ``%mistral local`` sets (base_url and model, with its source) sends no key, even to a
    server that would take one; the local server itself is covered in tests/local/test_local_mode.py."""
    from mistral_magic.local.mode import LOCAL_SOURCE

    shell.magics.set_by(LOCAL_SOURCE, base_url=fake.url + "/v1", model="local-model")
    shell.ok("%%mistral\nhi")
    shell.ok("%%mistral --no-stream\nhi")
    shell.ok("%mistral models")
    shell.ns["t_rows"] = ["a"]
    shell.ok("%%mistral --each t_rows --out t_answers\nsay {item}")
    assert len(fake.requests) == 4
    assert all("authorization" not in request.headers for request in fake.requests)
    shell.magics.unset_by(LOCAL_SOURCE)
    shell.ok("%%mistral\nhi")
    assert fake.requests[-1].headers["authorization"] == f"Bearer {TEST_KEY}"


# -- 4. Redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("cell", ["%%mistral\nmy secret plan", "%%mistral --no-stream\nmy secret plan"])
def test_a_redirect_to_another_host_is_not_followed(shell, fake, status, cell):
    with FakeChatServer() as other:
        target = f"{other.url}/v1/chat/completions"
        fake.script(ErrorReply(status, body={}, headers={"Location": target}))
        run = shell.run(cell)
        one_line_failure(run)
        assert isinstance(run.error, errors.RedirectRefusedError)
        host = other.url.split("//", 1)[1]
        assert f"to another host ({host})" in str(run.error)
        assert other.requests == []
        assert len(fake.requests) == 1 and not shows_key(run.everything)
    assert shell.magics.session.store.get("default").turns == []


def test_a_redirect_on_the_same_server_is_followed_with_the_key(shell, fake):
    fake.script(ErrorReply(308, body={}, headers={"Location": "/chat/completions"}), Reply(text="moved fine"))
    run = shell.ok("%%mistral\nhi")
    assert "moved fine" in run.everything
    assert [r.path for r in fake.requests] == ["/v1/chat/completions", "/chat/completions"]
    assert fake.requests[1].headers["authorization"] == f"Bearer {TEST_KEY}"


def test_an_unexpected_error_mid_stream_keeps_the_text_that_arrived(verbose, fake, monkeypatch):
    import httpx

    real = httpx.Response.iter_raw  # the client reads the raw body (and inflates it in bounded pieces)

    def first_chunk_then_fail(self, *args, **kwargs):
        for index, chunk in enumerate(real(self, *args, **kwargs)):
            if index == 2:  # the role chunk, then one word, then a failure nobody foresaw
                raise RuntimeError("odd failure")
            yield chunk

    monkeypatch.setattr(httpx.Response, "iter_raw", first_chunk_then_fail)
    fake.script(Reply(text="Hello there friend", padding=False))
    run = verbose.run("%%mistral\nhi")
    one_line_failure(run)
    assert isinstance(run.error, errors.StreamError) and run.error.partial == "Hello"
    assert "RuntimeError: odd failure" in str(run.error) and "characters received are kept" in str(run.error)
    assert "Hello" in run.everything and not shows_key(run.everything)
