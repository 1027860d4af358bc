"""What goes on the wire: the exact JSON body and headers for each flag and setting."""

from __future__ import annotations

import pytest

from mistral_magic import JsonReplyError
from tests.fakeapi import Reply
from tests.support import TEST_KEY


def last_body(fake) -> dict:
    return fake.requests[-1].json()


def test_a_plain_cell_streams_to_the_seed_defaults(shell, fake):
    run = shell.ok("%%mistral\nHello there")
    request = fake.requests[-1]
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "model": "Mistral-chat",
        "messages": [{"role": "user", "content": "Hello there"}],
        "stream": True,
    }
    assert run.markdown == ["Echo: Hello there"]
    assert run.plain == ["Echo: Hello there"]
    assert "Echo: Hello there" in run.stdout  # streamed before the static display


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_base_url_with_or_without_v1_and_slash(shell, fake, monkeypatch, suffix):
    monkeypatch.setenv("MISTRAL_BASE_URL", fake.url + suffix)
    shell.ok("%%mistral\nhi")
    expected = "/v1/chat/completions" if "v1" in suffix else "/chat/completions"
    assert fake.requests[-1].path == expected


def test_every_sampling_flag_is_sent_under_its_wire_name(shell, fake):
    shell.ok(
        '%%mistral -m mistral-large-latest -s "Be terse" -t 0.2 --top-p 0.9 --max-tokens 50 '
        "--seed 42 --stop END --stop '###' --safe-prompt\nExplain recursion."
    )
    assert last_body(fake) == {
        "model": "mistral-large-latest",
        "messages": [
            {"role": "system", "content": "Be terse"},
            {"role": "user", "content": "Explain recursion."},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 50,
        "random_seed": 42,
        "stop": ["END", "###"],
        "safe_prompt": True,
        "stream": True,
    }


# A valid value of each kind of sampling option, and how a flag and %mistral config write it.
SAMPLE_VALUES = {float: (0.5, "0.5"), int: (7, "7"), bool: (True, None), tuple: (("END",), "END")}


def _sampling_settings():
    from mistral_magic.settings import SAMPLING_SETTINGS

    return SAMPLING_SETTINGS


@pytest.mark.parametrize("item", _sampling_settings(), ids=lambda item: item.name)
def test_each_sampling_entry_reaches_the_body_from_a_flag_a_setting_and_annotate(shell, fake, item):
    """One entry in settings.Sampling is all a sampling option needs: flag, setting, annotate()
    argument and request field are derived from it."""
    import mistral_magic

    value, text = (item.spec.choices[0],) * 2 if item.spec.choices else SAMPLE_VALUES[item.kind]
    wire = item.spec.wire or item.name
    sent = list(value) if isinstance(value, tuple) else value
    flag = item.spec.flags[-1] + ("" if text is None else f" {text}")
    shell.ok(f"%%mistral --once {flag}\nhi")
    assert last_body(fake)[wire] == sent
    mistral_magic.annotate(["hi"], "{item}", cache=False, **{item.name: value})
    assert last_body(fake)[wire] == sent
    if item.spec.configurable:
        shell.ok(f"%mistral config {item.name}={text or 'true'}")
        shell.ok("%%mistral --once\nhi")
        assert last_body(fake)[wire] == sent
        assert item.name in shell.ok("%mistral config").plain[0]
        assert item.name in shell.magics.traits(config=True)


def test_no_stream_sends_stream_false_and_shows_the_reply(shell, fake):
    fake.script(Reply(text="Whole reply at once"))
    run = shell.ok("%%mistral --no-stream\nhi")
    assert last_body(fake)["stream"] is False
    assert fake.requests[-1].headers["accept"] == "application/json"
    assert run.markdown == ["Whole reply at once"]


def test_json_flag_sends_response_format_and_stores_the_parsed_object(shell, fake):
    fake.script(Reply(text='{"label": "positive", "score": 0.9}'))
    shell.ok("%%mistral --json --out t_label\nClassify: great movie")
    assert last_body(fake)["response_format"] == {"type": "json_object"}
    assert shell.ns["t_label"] == {"label": "positive", "score": 0.9}


def test_json_reply_inside_a_code_fence_is_parsed(shell, fake):
    fake.script(Reply(text='```json\n{"a": [1, 2]}\n```'))
    shell.ok("%%mistral --json --out t_obj\nlist")
    assert shell.ns["t_obj"] == {"a": [1, 2]}


def test_invalid_json_reply_fails_the_cell_but_keeps_the_text(shell, fake):
    fake.script(Reply(text="Sure! Here it is: label=positive"))
    run = shell.run("%%mistral --json --out t_bad\nClassify")
    assert type(run.error) is JsonReplyError
    assert "not valid JSON" in run.stdout
    assert "t_bad" not in shell.ns
    assert shell.magics.session.store.get("default").turns[-1].assistant == "Sure! Here it is: label=positive"


def test_out_stores_the_reply_text(shell, fake):
    fake.script(Reply(text="forty-two"))
    shell.ok("%%mistral --out t_answer\nWhat is the answer?")
    assert shell.ns["t_answer"] == "forty-two"


def test_only_fields_the_user_set_are_sent(shell, fake):
    shell.ok("%%mistral\nhi")
    assert set(last_body(fake)) == {"model", "messages", "stream"}


def test_settings_supply_default_sampling_options(shell, fake):
    shell.ok("%mistral config temperature=0.7 max_tokens=99 random_seed=1 safe_prompt=true")
    shell.ok("%%mistral\nhi")
    body = last_body(fake)
    assert (body["temperature"], body["max_tokens"], body["random_seed"], body["safe_prompt"]) == (0.7, 99, 1, True)
    shell.ok("%%mistral -t 0.1\nhi")
    assert last_body(fake)["temperature"] == 0.1


def test_system_prompt_flag_is_interpolated_and_sticks_to_the_chat(shell, fake):
    shell.ns["t_role"] = "pirate"
    shell.ok('%%mistral -s "You are a {t_role}"\nAhoy')
    shell.ok("%%mistral\nAgain")
    assert last_body(fake)["messages"][0] == {"role": "system", "content": "You are a pirate"}


def test_cell_interpolation_and_raw(shell, fake):
    shell.ns["t_city"] = "Lyon"
    shell.ok('%%mistral --once\nWeather in {t_city}? JSON: {"city": "x"}')
    assert last_body(fake)["messages"][-1]["content"] == 'Weather in Lyon? JSON: {"city": "x"}'
    shell.ok("%%mistral --once --raw\nWeather in {t_city}?")
    assert last_body(fake)["messages"][-1]["content"] == "Weather in {t_city}?"


def test_dollar_signs_and_braces_on_the_flag_line_are_not_expanded_by_ipython(shell, fake):
    shell.ok('%%mistral --once -s "Prices in $USD {unknown}"\nhi')
    assert last_body(fake)["messages"][0]["content"] == "Prices in $USD {unknown}"


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("--bogus", "unrecognized arguments: --bogus"),
        ("-t hot", "invalid float value: 'hot'"),
        ("-t 3", "temperature=3.0 is invalid"),
        ("--top-p 0", "top_p=0.0 is invalid"),
        ("--max-tokens 0", "invalid positive whole number value: '0'"),
        ("--seed -1", "invalid whole number >= 0 value: '-1'"),
        ("--new --once", "not allowed with argument"),
        ("--out 1x", "--out needs a Python variable name"),
        ('-s "unclosed', "check the quotes"),
    ],
)
def test_bad_flags_print_a_usage_error_and_send_nothing(shell, fake, line, fragment):
    run = shell.run(f"%%mistral {line}\nhi")
    assert run.error is not None
    assert fragment in run.stdout
    assert len(run.stdout.strip().splitlines()) == 1
    assert fake.requests == []


def test_an_empty_cell_is_an_error_not_a_request(shell, fake):
    run = shell.run("%%mistral\n   \n\n")
    assert "The cell is empty" in run.stdout
    assert fake.requests == []


def test_help_lists_every_flag_and_subcommand(shell):
    doc = shell.ip.find_cell_magic("mistral").__doc__
    for flag in [
        "--model",
        "--system",
        "--temperature",
        "--top-p",
        "--max-tokens",
        "--seed",
        "--stop",
        "--json",
        "--safe-prompt",
        "--no-stream",
        "--chat",
        "--new",
        "--once",
        "--out",
        "--raw",
    ]:
        assert flag in doc
    for sub in ["history", "chats", "reset", "undo", "save", "load", "usage", "models", "config", "key", "help"]:
        assert f"%mistral {sub}" in doc
    run = shell.ok("%mistral help")
    assert "--max-tokens" in run.plain[0]


def test_a_proxy_in_the_environment_is_not_used_for_this_machine(shell, fake, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.9:9")  # nothing listens there
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.9:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    shell.ok("%%mistral\nhi")
    assert fake.requests[-1].json()["messages"][-1]["content"] == "hi"
