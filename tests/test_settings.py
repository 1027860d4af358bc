"""Where settings come from: defaults < environment < %config / %mistral config < cell flags."""

from __future__ import annotations

import pytest

from tests.support import TEST_KEY


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
    from traitlets.config import Config

    from mistral_magic.ipython.magics import MistralMagics

    monkeypatch.delenv("MISTRAL_MODEL", raising=False)
    config = Config()
    config.MistralMagics.model = "from-ipython-config"
    config.MistralMagics.read_timeout = 5
    magics = MistralMagics(shell=None, config=config)  # not one of the shell's configurables
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


def test_any_loopback_address_needs_no_key_and_never_goes_through_a_proxy(shell, monkeypatch):
    """127.0.0.2 is this machine too: no key, and the proxy from the environment is not used."""
    from tests.fakeapi import FakeChatServer, Reply

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there: a proxied request fails
    for name in ("NO_PROXY", "no_proxy", "MISTRAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with FakeChatServer(host="127.0.0.2") as other:
        other.script(Reply(text="direct"))
        monkeypatch.setenv("MISTRAL_BASE_URL", other.url + "/v1")
        run = shell.ok("%%mistral --once\nhi")
        assert "direct" in run.everything
        assert "authorization" not in other.requests[-1].headers


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("read_timeout", "-1", "read_timeout=-1.0 is invalid: it must be a number of seconds > 0."),
        ("temperature", "3", "temperature=3.0 is invalid: it must be between 0 and 2 (Mistral accepts 0 to 1.5)."),
        ("max_tokens", "0", "max_tokens=0 is invalid: it must be a positive whole number."),
        (
            "base_url",
            "'ftp://x'",
            "base_url='ftp://x' is invalid: it must start with http:// or https:// and name a host (a valid URL).",
        ),
    ],
)
def test_config_and_mistral_config_refuse_a_bad_value_at_set_time_alike(shell, caplog, name, text, message):
    run = shell.run(f"%config MistralMagics.{name} = {text}")
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [message]
    assert getattr(shell.magics, name) is None  # refused: the setting keeps its value
    run = shell.run(f"%mistral config {name}={text.strip(chr(39))}")
    assert run.error is not None and str(run.error) == message
    assert getattr(shell.magics, name) is None
    shell.ok("%%mistral --once\nhi")  # and nothing is left broken


@pytest.mark.parametrize(
    "name, good, bad, message",
    [
        ("read_timeout", "30", "-1", "read_timeout=-1.0 is invalid: it must be a number of seconds > 0."),
        (
            "temperature",
            "0.5",
            "99",
            "temperature=99.0 is invalid: it must be between 0 and 2 (Mistral accepts 0 to 1.5).",
        ),
        ("retry_base_delay", "1", "float('inf')", "retry_base_delay=inf is invalid: it must be a finite number."),
        ("retry_max_wait", "1", "float('nan')", "retry_max_wait=nan is invalid: it must be a finite number."),
        ("connect_timeout", "5", "1e400", "connect_timeout=inf is invalid: it must be a finite number."),
    ],
)
def test_config_refuses_a_bad_value_at_set_time_and_keeps_the_old_one(shell, fake, caplog, name, good, bad, message):
    shell.ok(f"%config MistralMagics.{name} = {good}")
    run = shell.run(f"%config MistralMagics.{name} = {bad}")
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [message]
    assert "Traceback" not in run.stdout + run.stderr
    assert getattr(shell.magics, name) == float(good)
    run = shell.run(f"%mistral config {name}={eval(bad)}")
    assert str(run.error) == message and getattr(shell.magics, name) == float(good)
    shell.ok("%%mistral --once\nhi")


def test_a_bad_value_in_ipython_config_stops_the_extension_with_one_line(fake):
    from traitlets.config import Config

    from mistral_magic import InvalidSettingError
    from mistral_magic.ipython.magics import MistralMagics

    config = Config()
    config.MistralMagics.max_retries = 99
    with pytest.raises(
        InvalidSettingError, match=r"^max_retries=99 is invalid: it must be a whole number from 0 to 10\.$"
    ):
        MistralMagics(shell=None, config=config)


def test_every_setting_has_a_trait_whose_help_comes_from_the_table(shell):
    from mistral_magic.settings import CONFIGURABLE

    traits = shell.magics.traits(config=True)
    assert sorted(traits) == sorted(item.name for item in CONFIGURABLE)
    assert traits["read_timeout"].help == "Seconds to wait for the next piece of a reply (default 60)."
    assert traits["model"].help == "Model name (default Mistral-chat; env MISTRAL_MODEL)."
