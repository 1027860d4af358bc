"""The flags of ``%%mistral``, parsed with shlex and argparse into a usage error, never an exit."""

from __future__ import annotations

import argparse
import shlex
from typing import NoReturn

from .errors import UsageError
from .settings import REASONING_EFFORTS


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}. See %%mistral? or %mistral help.")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError(message or "See %%mistral? for help.")

    def parse(self, line: str) -> argparse.Namespace:
        """Parse a flag line, split as a POSIX shell would."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"Cannot read the flags ({exc}); check the quotes.") from None
        return self.parse_args(words)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


_positive_int.__name__ = "positive whole number"
_non_negative_int.__name__ = "whole number >= 0"


def cell_parser() -> ArgumentParser:
    """The parser of the ``%%mistral`` line."""
    parser = ArgumentParser(
        prog="%%mistral", add_help=False, allow_abbrev=False, description="Ask the model; the cell is the prompt."
    )
    ask = parser.add_argument_group("model and prompt")
    ask.add_argument("-m", "--model", help="model for this cell (default: the model setting)")
    ask.add_argument("-s", "--system", help="system prompt; it stays with the chat for later cells")
    ask.add_argument("-t", "--temperature", type=float, help="sampling temperature (0 to 1.5 on Mistral)")
    ask.add_argument("--top-p", dest="top_p", type=float, help="nucleus sampling probability (0 < p <= 1)")
    ask.add_argument("--max-tokens", dest="max_tokens", type=_positive_int, help="cap on reply tokens")
    ask.add_argument("--seed", dest="random_seed", type=_non_negative_int, help="random seed (sent as random_seed)")
    ask.add_argument("--stop", action="append", default=[], help="stop sequence (repeat for several)")
    ask.add_argument("--json", action="store_true", help="ask for a JSON object and parse the reply")
    ask.add_argument(
        "--safe-prompt", dest="safe_prompt", action="store_true", default=None, help="prepend Mistral's safety prompt"
    )
    ask.add_argument(
        "--reasoning-effort",
        dest="reasoning_effort",
        choices=REASONING_EFFORTS,
        help="reasoning models (magistral): high thinks first, none answers at once",
    )
    stream = ask.add_mutually_exclusive_group()
    stream.add_argument(
        "--no-stream",
        dest="stream",
        action="store_false",
        default=None,
        help="wait for the whole reply (stream: false)",
    )
    stream.add_argument(
        "--stream", dest="stream", action="store_true", default=None, help="stream even if the stream setting is off"
    )
    chat = parser.add_argument_group("conversation")
    chat.add_argument("-c", "--chat", default="default", help="named conversation (default: default)")
    history = chat.add_mutually_exclusive_group()
    history.add_argument("--new", action="store_true", help="start this conversation afresh")
    history.add_argument("--once", action="store_true", help="neither read nor write the history")
    batch = parser.add_argument_group("many items (the cell is a template, one request per item)")
    batch.add_argument(
        "--each",
        metavar="NAME",
        help="a list, tuple, pandas Series or DataFrame in the notebook: "
        "fill {item} (and {column} for a DataFrame) once per item",
    )
    batch.add_argument("--workers", type=_positive_int, help="requests at once with --each (default 8)")
    batch.add_argument("--rpm", type=_positive_int, help="at most this many requests per minute with --each")
    caching = batch.add_mutually_exclusive_group()
    caching.add_argument(
        "--cache",
        dest="cache",
        action="store_true",
        default=None,
        help="answer from the on-disk reply cache when possible (always on for --each)",
    )
    caching.add_argument(
        "--no-cache", dest="cache", action="store_false", help="neither read nor write the reply cache"
    )
    out = parser.add_argument_group("result")
    out.add_argument("--out", metavar="VAR", help="store the reply text (the parsed object with --json) in VAR")
    out.add_argument("--raw", action="store_true", help="send the cell as written: no {variable} interpolation")
    return parser


def check_variable_name(name: str) -> str:
    if not name.isidentifier():
        raise UsageError(f"--out needs a Python variable name, not {name!r}.")
    return name
