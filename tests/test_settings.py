"""Where settings come from: defaults < environment < %config / %mistral config < cell flags."""

from __future__ import annotations

import pytest
from support import TEST_KEY


def sent_model(fake) -> str:
    return fake.requests[-1].json()["model"]


def test_model_order_default_env_config_flag(shell, fake, monkeypatch):
    shell.ok("%%mistral --once\nhi")
    assert sent_model(fake) == "Mistral-chat"
    monkeypatch.setenv("MISTRAL_MODEL", "from-env")
    shell.ok("%%mistral --once\nhi")
    assert sent_model(fake) == "from-env"
    shell.ok("%config MistralMagics.model = 'from-config'")
    shell.ok("%%mistral --once\nhi")
    assert sent_model(fake) == "from-config"
    shell.ok("%mistral config model=from-magic")
    shell.ok("%%mistral --once\nhi")
    assert sent_model(fake) == "from-magic"
    shell.ok("%%mistral --once -m from-flag\nhi")
    assert sent_model(fake) == "from-flag"
    shell.ok("%%mistral --once\nhi")
    assert sent_model(fake) == "from-magic"  # a flag applies to its cell only
    shell.ok("%mistral config model=")
    shell.ok("%%mistral --once\nhi")
    assert sent_model(fake) == "from-env"


def test_config_table_shows_values_and_sources_and_masks_the_key(shell, monkeypatch):
    monkeypatch.setenv("MISTRAL_MODEL", "env-model")
    shell.ok("%mistral config temperature=0.3")
    run = shell.ok("%mistral config")
    table = run.plain[0]
    assert "env-model" in table and "env MISTRAL_MODEL" in table
    assert "0.3" in table and "%mistral config" in table
    assert "****" in table and TEST_KEY not in run.everything
    assert "| setting | value | source |" in run.markdown[0]


def test_config_from_an_ipython_config_object(fake, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from mistral_magic.magics import MistralMagics

    monkeypatch.delenv("MISTRAL_MODEL", raising=False)
    config = Config()
    config.MistralMagics.model = "from-ipython-config"
    config.MistralMagics.read_timeout = 5
    magics = MistralMagics(shell=InteractiveShell.instance(), config=config)
    settings = magics.settings()
    assert (settings.model, settings.read_timeout) == ("from-ipython-config", 5.0)
    assert settings.sources["model"] == "%config"


@pytest.mark.parametrize(
    "assignment, fragment",
    [
        ("nosuch=1", "Unknown setting 'nosuch'"),
        ("temperature=warm", "not a valid value (a number expected)"),
        ("max_retries=-1", "max_retries=-1 is invalid"),
        ("display=fancy", "auto | widget | text"),
        ("stream=maybe", "true or false expected"),
        ("base_url=ftp://x", "must start with http:// or https://"),
        ("temperature", "Write settings as name=value"),
        ("api_key=abc", "run %mistral key"),
    ],
)
def test_bad_config_values_are_usage_errors(shell, assignment, fragment):
    run = shell.run(f"%mistral config {assignment}")
    assert run.error is not None and fragment in run.stdout


def test_stream_setting_off_and_stream_flag_on(shell, fake):
    shell.ok("%mistral config stream=false")
    shell.ok("%%mistral --once\nhi")
    assert fake.requests[-1].json()["stream"] is False
    shell.ok("%%mistral --once --stream\nhi")
    assert fake.requests[-1].json()["stream"] is True


def test_missing_key_says_how_to_set_it_and_sends_nothing(shell, fake, monkeypatch):
    monkeypatch.delenv("MISTRAL_API_KEY")
    monkeypatch.setenv("MISTRAL_BASE_URL", "https://api.Mistral.com")
    run = shell.run("%%mistral\nhi")
    assert "No API key" in run.stdout and "MISTRAL_API_KEY" in run.stdout and "%mistral key" in run.stdout
    assert fake.requests == []


def test_a_server_on_this_machine_needs_no_key(shell, fake, monkeypatch):
    monkeypatch.delenv("MISTRAL_API_KEY")
    shell.ok("%%mistral\nhi")
    assert "authorization" not in fake.requests[-1].headers


def test_key_typed_with_getpass_wins_over_the_environment(shell, fake, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "sk-typed-key-abcdefghijkl")
    run = shell.ok("%mistral key")
    assert "sk-typed-key-abcdefghijkl" not in run.everything
    assert "Key set for this kernel (****)" in run.everything
    shell.ok("%%mistral\nhi")
    assert fake.requests[-1].headers["authorization"] == "Bearer sk-typed-key-abcdefghijkl"
    shell.ok("%mistral key --clear")
    shell.ok("%%mistral\nhi")
    assert fake.requests[-1].headers["authorization"] == f"Bearer {TEST_KEY}"
