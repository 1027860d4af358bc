"""Issue 11, item 20: in terminal IPython, control sequences from the model never reach the terminal."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.fakeapi import ErrorReply, Reply

HOSTILE_PIECES = [
    "Hello \x1b]52;c;ZXZpbA==\x07 wor",  # OSC 52: write "evil" to the clipboard
    "ld \x1b",  # an escape split across two deltas
    "[2J\x1b[H done \x9b31m red\x9d0;title\x9c \x07\x08\x7f\r\n\tend",  # clear screen, cursor home, C1 CSI/OSC
]


def run_terminal_ipython(fake, tmp_path, code: str, returncode: int = 0) -> bytes:
    """Run ``code`` in a real terminal IPython (TerminalInteractiveShell) and return its stdout bytes."""
    script = tmp_path / "session.ipy"
    script.write_text(
        "%load_ext mistral_magic\nassert type(get_ipython()).__name__ == 'TerminalInteractiveShell'\n" + code
    )
    env = dict(os.environ, MISTRAL_BASE_URL=fake.url + "/v1", MISTRAL_API_KEY="sk-terminal", NO_PROXY="127.0.0.1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "IPython",
            "--colors=NoColor",
            "--no-banner",
            "--HistoryManager.enabled=False",
            str(script),
        ],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == returncode, done.stderr
    return done.stdout


def assert_no_controls(output: bytes) -> None:
    text = output.decode("utf-8")
    controls = sorted({c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F})
    assert controls == [], f"control characters reached the terminal: {controls!r} in {text!r}"


def test_streamed_reply_and_history_reach_the_terminal_without_controls(fake, tmp_path):
    """Item 20: OSC 52 clipboard writes and CSI screen clears from the model reached the terminal."""
    fake.script(Reply(text="x", chunks=HOSTILE_PIECES))
    output = run_terminal_ipython(
        fake,
        tmp_path,
        'get_ipython().run_cell_magic("mistral", "", "hello")\nget_ipython().run_line_magic("mistral", "history")\n',
    )
    assert_no_controls(output)
    text = output.decode()
    assert "Hello  world  done  red \n\tend" in text  # the text itself, and newlines and tabs, stay
    assert text.count("Hello  world") == 2  # the streamed reply and %mistral history


def test_error_lines_in_the_terminal_carry_no_controls(fake, tmp_path):
    """Item 20: a server's error message is printed to the terminal too."""
    fake.script(ErrorReply(400, body={"message": "bad \x1b]52;c;ZXZpbA==\x07 model \x1b[2J"}))
    output = run_terminal_ipython(fake, tmp_path, 'get_ipython().run_cell_magic("mistral", "", "hello")\n', 1)
    label = b"\x1b[0;31mMistralError 400\x1b[0m: "  # the magic's own red label
    assert output.startswith(label)
    assert_no_controls(output[len(label) :])
    assert "Bad request: bad  model" in output.decode()


def test_side_by_side_prints_no_controls_in_the_terminal(fake, tmp_path):
    """Item 20: side_by_side's text form is what a terminal prints."""
    hostile = repr("".join(HOSTILE_PIECES))
    code = f"import mistral_magic\ndisplay(mistral_magic.side_by_side(a={hostile}, b='fine'))\n"
    output = run_terminal_ipython(fake, tmp_path, code)
    assert_no_controls(output)
    assert "Hello  world" in output.decode() and "fine" in output.decode()
