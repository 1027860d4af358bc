"""``%reload_ext`` (and ``%unload_ext`` + ``%load_ext``) keep the kernel's chats, settings and typed key,
with a fresh HTTP client."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support import TEST_KEY

TYPED = "sk-typed-key-abcdefghijkl"


@pytest.mark.parametrize(
    "reload",
    ["%reload_ext mistral_magic", "%unload_ext mistral_magic\n%load_ext mistral_magic"],
    ids=["reload", "unload+load"],
)
def test_a_reload_keeps_chats_settings_and_the_typed_key(shell, fake, monkeypatch, reload):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": TYPED)
    shell.ok("%mistral key")
    shell.ok("%mistral config temperature=0.3 system='Be brief.'")
    shell.ok("%config MistralMagics.model = 'from-config'")
    shell.ok("%%mistral -c notes\nremember 42")
    shell.ns["t_rows"] = ["a", "b"]
    shell.ok("%%mistral --each t_rows\nsay {item}")
    old = shell.magics
    old_client = old.session.client

    shell.ok(reload)

    magics = shell.magics
    assert magics is not old and old_client._http.is_closed and magics.session._client is None
    assert "notes" in shell.ok("%mistral chats").everything
    assert "2 answered" in shell.ok("%mistral errors").everything  # the last --each run is kept
    table = shell.ok("%mistral config").everything
    assert "%mistral key" in table and TYPED not in table
    shell.ok("%%mistral -c notes\nand now?")
    request = fake.requests[-1]
    assert request.headers["authorization"] == f"Bearer {TYPED}"
    body = request.json()
    assert body["model"] == "from-config" and body["temperature"] == 0.3
    assert [m["content"] for m in body["messages"]][:2] == ["Be brief.", "remember 42"]
    assert magics.settings().sources["temperature"] == "%mistral config"
    usage = shell.ok("%mistral usage").everything
    assert "notes" in usage and "--each t_rows" in usage


def test_a_reload_after_forgetting_the_key_uses_the_environment(shell, fake, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": TYPED)
    shell.ok("%mistral key")
    shell.ok("%mistral key --clear")
    shell.ok("%reload_ext mistral_magic")
    shell.ok("%%mistral\nhi")
    assert fake.requests[-1].headers["authorization"] == f"Bearer {TEST_KEY}"


def test_a_reload_in_a_real_kernel_keeps_the_conversation(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("MISTRAL_BASE_URL", fake.url + "/v1")
    monkeypatch.setenv("MISTRAL_API_KEY", TEST_KEY)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(source)
        for source in (
            "%load_ext mistral_magic",
            "%mistral config temperature=0.2",
            "%%mistral\nmy name is Ada",
            "%reload_ext mistral_magic",
            "%%mistral\nwhat is my name?",
        )
    ]
    NotebookClient(nb, kernel_name="python3", timeout=60, resources={"metadata": {"path": str(tmp_path)}}).execute()
    last = fake.requests[-1].json()
    assert [m["content"] for m in last["messages"]] == ["my name is Ada", "Echo: my name is Ada", "what is my name?"]
    assert last["temperature"] == 0.2
