"""The API key never shows: not in output, errors, reprs, logs, saved chats or the notebook."""

from __future__ import annotations

import json
import logging
import pickle

import pytest

from mistral_magic.secret import Secret
from tests.fakeapi import ErrorReply, Reply
from tests.support import TEST_KEY


def test_secret_never_formats_itself():
    secret = Secret(TEST_KEY)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s" % secret, json.dumps({"k": str(secret)})):  # noqa: UP031
        assert TEST_KEY not in text
    assert secret.reveal() == TEST_KEY
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_nothing_the_user_can_see_or_save_contains_the_key(shell, fake, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    fake.script(
        Reply(text="first"),
        ErrorReply(401, body={"message": f"Unauthorized: {TEST_KEY}"}),
        ErrorReply(500, body=f"<html>{TEST_KEY}</html>"),
        ErrorReply(500),
        ErrorReply(500),
    )
    runs = [
        shell.run("%%mistral\nhi"),
        shell.run("%%mistral\nagain"),
        shell.run("%%mistral\nthird"),
        shell.run("%mistral config"),
        shell.run("%mistral history"),
        shell.run("%mistral usage"),
        shell.run(f"%mistral save {tmp_path / 'chats.json'}"),
        shell.run(
            "print(repr(get_ipython().find_magic('mistral').__self__.session.endpoint("
            "get_ipython().find_magic('mistral').__self__.settings())))"
        ),
    ]
    assert fake.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    for run in runs:
        assert TEST_KEY not in run.everything
    assert TEST_KEY not in (tmp_path / "chats.json").read_text()
    assert TEST_KEY not in caplog.text
    magics = shell.magics
    assert TEST_KEY not in repr(magics.api_key()) and TEST_KEY not in repr(vars(magics.session))


def test_the_key_cannot_be_set_in_a_cell(shell):
    run = shell.run(f"%mistral config api_key={TEST_KEY}")
    assert run.error is not None
    assert TEST_KEY not in run.stdout


def test_redact_masks_the_key_also_as_a_json_string_carries_it():
    key = 'sk/with"quote-0123456789'
    secret = Secret(key)
    echoed = json.dumps({"headers": {"authorization": f"Bearer {key}"}})
    assert key not in echoed  # the quote is escaped in JSON
    masked = secret.redact(echoed)
    assert json.loads(masked) == {"headers": {"authorization": "Bearer ****"}}
    assert secret.redact(echoed.replace("/", "\\/")) == masked  # some servers escape "/" too
    assert Secret("").redact("nothing to mask") == "nothing to mask"
