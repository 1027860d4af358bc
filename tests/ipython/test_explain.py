"""``%mistral explain``: the last error of the kernel, trimmed and without secrets, asked like a cell."""

from __future__ import annotations

import json

import nbformat
from nbclient import NotebookClient

from mistral_magic.interpolate import cut_middle
from mistral_magic.ipython.explain import secret_masker
from mistral_magic.secret import Secret
from tests.fakeapi import ErrorReply
from tests.support import TEST_KEY


def _last_prompt(fake) -> str:
    body = fake.requests[-1].json()
    return body["messages"][-1]["content"]


def test_explain_sends_the_cell_the_exception_and_no_ipython_frames(shell, fake):
    shell.run("def t_divide(a):\n    return a / 0\n\nt_value = 3\nt_divide(t_value)")
    run = shell.ok("%mistral explain")
    prompt = _last_prompt(fake)
    assert "t_divide(t_value)" in prompt and "return a / 0" in prompt
    assert "ZeroDivisionError: division by zero" in prompt
    assert "interactiveshell.py" not in prompt and "IPython" not in prompt.replace("IPython's own", "")
    assert "Cell In[" in prompt
    assert "What does this error mean" in prompt
    assert run.plain and "Echo:" in run.plain[-1]  # shown like any reply
    assert shell.magics.session.store.get("default").turns[-1].user == prompt


def test_library_frames_stay(shell, fake):
    shell.run("import json\njson.loads('{')")
    shell.ok("%mistral explain")
    prompt = _last_prompt(fake)
    assert "json/decoder.py" in prompt and "JSONDecodeError" in prompt and "json.loads('{')" in prompt


def test_explain_takes_a_question_with_quotes_and_a_chat(shell, fake):
    shell.run("import numpy as t_np\nt_np.ones((2, 3)) @ t_np.ones((2, 3))")
    shell.ok("%mistral explain -c tutor why isn't the shape right?")
    prompt = _last_prompt(fake)
    assert "why isn't the shape right?" in prompt and "matmul" in prompt
    assert len(shell.magics.session.store.get("tutor").turns) == 1


def test_a_failed_explain_does_not_hide_the_error_it_was_about(shell, fake):
    shell.run("t_missing_name")
    fake.script(ErrorReply(400))
    failed = shell.run("%mistral explain")
    assert failed.error is not None
    shell.ok("%mistral explain")
    assert "NameError: name 't_missing_name' is not defined" in _last_prompt(fake)


def test_long_tracebacks_are_cut_in_the_middle(shell, fake):
    shell.run("def t_deep(n):\n    return t_deep(n - 1) if n else 1 / n\n\nt_deep(40)")
    shell.ok("%mistral explain")
    prompt = _last_prompt(fake)
    assert "frames cut ...]" in prompt
    assert prompt.count("in t_deep") == 11  # 12 frames kept, one of them the cell's own
    assert prompt.rstrip("`\n").endswith("ZeroDivisionError: division by zero")


def test_a_syntax_error_sends_the_cell_that_did_not_compile(shell, fake):
    shell.run("t_x = (1,\nprint(t_x")
    shell.ok("%mistral explain")
    prompt = _last_prompt(fake)
    assert "SyntaxError" in prompt and "print(t_x" in prompt


def test_no_error_yet_is_one_line(shell, fake, monkeypatch):
    import sys

    for name in ("last_exc", "last_value", "last_type", "last_traceback"):
        monkeypatch.delattr(sys, name, raising=False)
    run = shell.run("%mistral explain")
    assert "No error to explain yet" in str(run.error)
    assert fake.requests == []


def test_secrets_are_replaced_by_the_variable_name():
    environ = {"SHORT": "abc", "TOKEN": "tok-12345678", "LONGER": "tok-12345678-and-more", "URL": "a b/c d&e=f"}
    text = "a tok-12345678-and-more b tok-12345678 c abc sk-key-0000000000 d a+b%2Fc+d%26e%3Df"
    mask = secret_masker(environ, [Secret("sk-key-0000000000")])
    assert mask(text) == "a $LONGER b $TOKEN c abc **** d $URL"


def test_cut_middle_says_how_much_was_cut():
    assert cut_middle("abc", 3) == "abc"
    assert cut_middle("a" * 50 + "b" * 50, 20) == "a" * 10 + "\n[... 80 characters cut]\n" + "b" * 10


def test_explain_in_a_real_kernel_sends_no_secret(fake, monkeypatch, tmp_path):
    secret = "hunter2-database-password"
    monkeypatch.setenv("MISTRAL_BASE_URL", fake.url + "/v1")
    monkeypatch.setenv("MISTRAL_API_KEY", TEST_KEY)
    monkeypatch.setenv("T_DB_PASSWORD", secret)
    monkeypatch.setenv("MISTRAL_MAGIC_CACHE_DIR", str(tmp_path / "cache"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext mistral_magic"),
        nbformat.v4.new_code_cell(
            "import os\nimport json\n"
            "password = os.environ['T_DB_PASSWORD']\n"
            "def t_login(p):\n    raise PermissionError(f'login refused for {p!r}')\n"
            "t_login(password)"
        ),
        nbformat.v4.new_code_cell("%mistral explain what went wrong?"),
    ]
    client = NotebookClient(
        nb, kernel_name="python3", timeout=60, allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    assert nb.cells[1].outputs[0].output_type == "error"
    chats = [r for r in fake.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 1
    raw = chats[0].body.decode()
    prompt = json.loads(raw)["messages"][-1]["content"]
    assert secret not in raw and TEST_KEY not in raw
    assert "password = os.environ['T_DB_PASSWORD']" in prompt  # the cell, as written
    assert "PermissionError: login refused for '$T_DB_PASSWORD'" in prompt  # the message, masked
    assert "what went wrong?" in prompt
    assert "ipykernel" not in prompt and "interactiveshell" not in prompt
    shown = nb.cells[2].outputs[-1]
    assert shown.output_type == "display_data" and "Echo:" in shown.data["text/plain"]
