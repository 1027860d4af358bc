"""Issue 19: no secret leaves through ``%mistral explain`` or interpolation, whatever its encoding or
wherever a cut falls, and a dummy key too short to be a secret never changes a reply."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from mistral_magic import errors
from mistral_magic.secret import Secret
from tests.fakeapi import ErrorReply, Reply
from tests.support import TEST_KEY

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


# -- %mistral explain: mask first, then cut; every encoding -------------------------------------


@pytest.mark.parametrize(
    "cell",
    [
        # The exception line is cut to 2,000 characters: the key straddles the cut.
        'import os\nraise ValueError("a" * 973 + os.environ["MISTRAL_API_KEY"] + "b" * 3000)',
        # The cell's code is cut to 6,000 characters: the key, written in it, straddles the cut.
        f't_note = "{"a" * 2980}{TEST_KEY}{"b" * 4000}"\n1 / 0',
        # A traceback line is cut to 300 characters: the key straddles the cut.
        f'raise ValueError("{"a" * 118}{TEST_KEY}{"b" * 400}")',
    ],
    ids=["exception line", "cell code", "traceback line"],
)
def test_explain_masks_the_key_before_cutting_the_text(shell, fake, tmp_path, cell):
    shell.run(cell)
    shell.ok("%mistral explain")
    assert "characters cut]" in fake.requests[-1].json()["messages"][-1]["content"]
    assert "****" in fake.requests[-1].json()["messages"][-1]["content"]
    assert leaks(shell, fake, tmp_path, TEST_KEY) == []


def test_explain_masks_environment_values_before_cutting_the_text(shell, fake, tmp_path, monkeypatch):
    password = "hunter2-database-password-0042"
    monkeypatch.setenv("T_DB_PASSWORD", password)
    shell.run('import os\nraise ValueError("a" * 960 + os.environ["T_DB_PASSWORD"] + "b" * 3000)')
    shell.ok("%mistral explain")
    assert "$T_DB_PASSWORD" in fake.requests[-1].json()["messages"][-1]["content"]
    assert leaks(shell, fake, tmp_path, password) == []


@pytest.mark.parametrize(
    "raise_it",
    [
        "raise ConnectionError('cannot reach postgresql://app:' + quote(t_pw, safe='') + '@db:5432/app')",
        "raise ConnectionError('GET https://api.example.com/v1?token=' + quote_plus(t_pw) + ' failed')",
        "raise ConnectionError('GET https://api.example.com/v1?token=' + quote(t_pw, safe='').lower() + ' failed')",
        "raise KeyError(t_pw)",  # KeyError shows the repr: the quotes and backslash escaped
        "raise ValueError(json.dumps({'password': t_pw}))",
    ],
    ids=["url-encoded", "form-encoded", "lower-case hex", "repr", "json"],
)
def test_explain_masks_secrets_url_encoded_or_backslash_escaped(shell, fake, tmp_path, monkeypatch, raise_it):
    password = 'p@ss/w0rd: it\'s "odd" \\ +50%'
    monkeypatch.setenv("T_DB_PASSWORD", password)
    shell.ns["t_pw"] = password
    shell.run(f"import json\nfrom urllib.parse import quote, quote_plus\n{raise_it}")
    shell.ok("%mistral explain")
    prompt = fake.requests[-1].json()["messages"][-1]["content"]
    assert "$T_DB_PASSWORD" in prompt
    encoded = [quote(password, safe=""), quote_plus(password), json.dumps(password)[1:-1], repr(password)[1:-1]]
    for form in [password, *encoded, quote(password, safe="").lower()]:
        assert not holds_part_of(prompt, form, 12), form
    assert not holds_part_of(sent_bodies(fake), password, 12)


# -- Interpolation: what the kernel puts into a prompt never carries the key ---------------------


def test_a_cell_that_set_the_key_is_inserted_without_it(shell, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", TEST_KEY)  # put back after the test
    shell.ok(f'import os\nos.environ["MISTRAL_API_KEY"] = "{NEW_KEY}"')
    shell.ok("%%mistral\nWhy does my setup cell not work?\n{In[-2]}")
    assert fake.requests[-1].headers["authorization"] == f"Bearer {NEW_KEY}"
    prompt = fake.requests[-1].json()["messages"][-1]["content"]
    assert 'os.environ["MISTRAL_API_KEY"] = "****"' in prompt
    assert leaks(shell, fake, tmp_path, NEW_KEY) == []


def test_a_variable_holding_the_key_is_inserted_without_it_in_the_cell_and_the_system_prompt(shell, fake, tmp_path):
    shell.ns["t_config"] = {"api_key": TEST_KEY, "model": "small"}
    shell.ok('%%mistral -s "The settings: {t_config}"\nIs {t_config} right?')
    messages = fake.requests[-1].json()["messages"]
    assert messages[0]["content"] == "The settings: {'api_key': '****', 'model': 'small'}"
    assert messages[1]["content"] == "Is {'api_key': '****', 'model': 'small'} right?"
    assert leaks(shell, fake, tmp_path, TEST_KEY) == []


def test_a_typed_key_is_masked_too_and_before_a_long_value_is_cut(shell, fake, tmp_path, monkeypatch):
    typed = "sk-typed-key-abcdefghijkl-0001"
    monkeypatch.setattr("getpass.getpass", lambda prompt="": typed)
    shell.ok("%mistral key")
    shell.ns["t_log"] = "a" * 9_990 + typed + TEST_KEY + "b" * 30_000  # the cut at 10,000 falls in the key
    shell.ok("%%mistral\nLog: {t_log}")
    prompt = fake.requests[-1].json()["messages"][-1]["content"]
    assert prompt.startswith("Log: " + "a" * 9_990 + "********") and "characters cut]" in prompt
    assert leaks(shell, fake, tmp_path, typed) == [] and leaks(shell, fake, tmp_path, TEST_KEY) == []


def test_each_templates_and_items_are_filled_without_the_key(shell, fake, tmp_path):
    shell.ns["t_config"] = {"api_key": TEST_KEY}
    shell.ns["t_rows"] = ["plain row", f"a row that holds {TEST_KEY}"]
    run = shell.ok("%%mistral --each t_rows --dry-run\n{item} with {t_config}")
    assert not holds_part_of(run.everything, TEST_KEY)
    shell.ok("%%mistral --each t_rows --workers 1 --out t_answers\n{item} with {t_config}")
    prompts = sorted(r.json()["messages"][-1]["content"] for r in fake.requests)
    assert prompts == ["a row that holds **** with {'api_key': '****'}", "plain row with {'api_key': '****'}"]
    shell.ok("import mistral_magic\nt_run = mistral_magic.annotate(t_rows, 'again: {item}', cache=False)")
    assert "again: a row that holds ****" in sent_bodies(fake)
    assert not holds_part_of(sent_bodies(fake), TEST_KEY)
