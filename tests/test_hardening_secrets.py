"""Issue 19: no secret leaves through ``%mistral explain`` or interpolation, whatever its encoding or
wherever a cut falls, and a dummy key too short to be a secret never changes a reply."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest
from fakeapi import ErrorReply, Reply
from support import TEST_KEY

from mistral_magic import errors
from mistral_magic.secret import Secret

NEW_KEY = "sk-set-in-a-cell-9876543210zyxw"


def holds_part_of(text: str, secret: str, run: int = 8) -> bool:
    """Whether ``text`` holds ``run`` characters in a row of ``secret`` (what a cut leaves counts)."""
    return any(secret[i : i + run] in text for i in range(len(secret) - run + 1))


def sent_bodies(fake) -> str:
    return "\n".join(r.body.decode() for r in fake.requests)


def leaks(shell, fake, tmp_path, secret: str) -> list[str]:
    """Where ``secret`` (or 8 characters of it) went: the request bodies, the history, a saved chat file."""
    history = shell.ok("%mistral history").everything
    shell.ok(f"%mistral save {tmp_path / 'chats.json'}")
    places = {"request": sent_bodies(fake), "history": history, "saved": (tmp_path / "chats.json").read_text()}
    return [name for name, text in places.items() if holds_part_of(text, secret)]


# -- The key: masked in every encoding, and only when it can be a secret -------------------------


def test_the_key_is_masked_url_encoded_and_escaped():
    key = "abc+def/ghi=jkl'0123"
    secret = Secret(key)
    for form in (quote(key, safe=""), quote_plus(key), quote(key), json.dumps(key)[1:-1], repr(key)[1:-1]):
        assert secret.redact(f"GET /v1?key={form}&x=1") == "GET /v1?key=****&x=1"


@pytest.mark.parametrize("dummy", ["k", "ollama", "EMPTY", "sk-1234"])
def test_a_dummy_key_too_short_to_be_a_secret_never_changes_a_reply(shell, fake, monkeypatch, dummy):
    monkeypatch.setenv("MISTRAL_API_KEY", dummy)
    reply = "Follow the link: ollama takes any key, and vLLM's is EMPTY (sk-1234 works too)."
    fake.script(Reply(text=reply), Reply(text=reply), ErrorReply(400, body={"message": f"bad request: {reply}"}))
    shell.ok("%%mistral\nhi")
    shell.ok("%%mistral --no-stream\nagain")
    failed = shell.run("%%mistral\nonce more")
    assert fake.requests[-1].headers["authorization"] == f"Bearer {dummy}"
    assert [turn.assistant for turn in shell.magics.session.store.get("default").turns] == [reply, reply]
    assert isinstance(failed.error, errors.MistralMagicError) and reply in str(failed.error)
    assert "****" not in shell.ok("%mistral history").everything


