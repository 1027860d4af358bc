"""The flags of ``%%mistral``, parsed with shlex and argparse into a usage error, never an exit.

The flags that set a setting for one cell are derived from :mod:`.settings`; the others
(conversation, ``--each``, result) are declared here.
"""

from __future__ import annotations

import argparse
import keyword
import re
import shlex
from collections.abc import Callable, Collection
from functools import cache
from typing import Any, NoReturn

from ..errors import UsageError
from ..settings import ALL_SETTINGS, Setting


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


class CellParser(ArgumentParser):
    """The ``%%mistral`` line: its flags, and every rule of which flags go together (the parser's
    mutually exclusive groups, and :meth:`check_together`), so a cell is one checked request."""

    def parse(self, line: str) -> argparse.Namespace:
        args = super().parse(line)
        self.check_together(args)
        return args

    @staticmethod
    def check_together(args: argparse.Namespace) -> None:
        """Refuse, in one line, flags that only mean something with another flag."""

        if not args.each and (args.workers is not None or args.rpm is not None):
            raise UsageError("--workers and --rpm go with --each NAME (one request per item).")
        if args.batch and (not args.each or args.workers is not None or args.rpm is not None):
            raise UsageError("--batch goes with --each NAME, without --workers or --rpm (the server paces a batch).")
        if not args.wait and not args.batch:
            raise UsageError("--no-wait goes with --batch (a live run answers while the cell runs).")
        if not args.each and (args.limit or args.sample or args.dry_run or args.votes):
            raise UsageError("--limit, --sample, --dry-run and --votes go with --each NAME.")
        if args.schema is not None and args.json:
            raise UsageError("--schema already asks for JSON (and validates it): drop --json.")
        if args.repair is not None and args.schema is None:
            raise UsageError("--repair N goes with --schema (it re-asks replies that do not match the schema).")


def checked_int(item: Setting) -> Callable[[str], int]:
    """An argparse type for a whole-number setting: argparse names the rule when a value breaks it."""
    rule = item.spec.check

    def convert(text: str) -> int:
        value = int(text)
        if rule is not None and not rule.test(value):
            raise ValueError(text)
        return value

    convert.__name__ = rule.rule.removeprefix("be ").removeprefix("a ") if rule else "whole number"
    return convert


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


positive_int.__name__ = "positive whole number"

FLAGGED = tuple(item for item in ALL_SETTINGS if item.spec.flags)


_METAVARS = {str: "NAME", float: "X", int: "N", tuple: "TEXT"}


def _add_setting_flag(group: Any, item: Setting) -> None:
    spec = item.spec
    help = spec.flag_help or spec.help
    metavar = _METAVARS.get(item.kind)
    if item.kind is bool:
        if spec.off_flag is None:
            group.add_argument(*spec.flags, dest=item.name, action="store_true", default=None, help=help)
            return
        both = group.add_mutually_exclusive_group()
        both.add_argument(spec.off_flag, dest=item.name, action="store_false", default=None, help=spec.off_help)
        both.add_argument(*spec.flags, dest=item.name, action="store_true", default=None, help=help)
    elif item.kind is tuple:
        group.add_argument(*spec.flags, dest=item.name, action="append", metavar=metavar, help=help)
    else:
        kind: Callable[[str], Any] = checked_int(item) if item.kind is int else item.kind
        choices = spec.choices or None  # argparse then shows them, as {high,none}
        group.add_argument(
            *spec.flags, dest=item.name, type=kind, choices=choices, metavar=None if choices else metavar, help=help
        )


def setting_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings this cell's flags change (``None``: not given), for ``Settings.with_overrides``."""
    return {item.name: tuple(v) if isinstance(v := getattr(args, item.name), list) else v for item in FLAGGED}


@cache
def cell_parser() -> CellParser:
    """The parser of the ``%%mistral`` line (made once)."""
    parser = CellParser(
        prog="%%mistral", add_help=False, allow_abbrev=False, description="Ask the model; the cell is the prompt."
    )
    ask = parser.add_argument_group("model and prompt")
    ask.add_argument("-s", "--system", metavar="TEXT", help="system prompt; it stays with the chat for later cells")
    for item in FLAGGED:
        _add_setting_flag(ask, item)
    ask.add_argument("--json", action="store_true", help="ask for a JSON object and parse the reply")
    ask.add_argument(
        "--image",
        metavar="X",
        action="append",
        help="send an image with the prompt (repeatable): a file, an http(s) URL, a notebook variable "
        "(figure, PIL image, bytes, numpy array) or last (the most recent figure)",
    )
    ask.add_argument(
        "--schema",
        metavar="SPEC",
        help="answer as JSON matching a schema: 'label: a|b|c, score: float, reason' or the name of a "
        "Pydantic model class or JSON Schema dict; replies are validated",
    )
    chat = parser.add_argument_group("conversation")
    chat.add_argument("-c", "--chat", metavar="NAME", default="default", help="named conversation (default: default)")
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
    batch.add_argument(
        "--batch",
        action="store_true",
        help="with --each: send through Mistral's Batch API (half price, no rate limit; minutes to hours); "
        "running the cell again collects the same job",
    )
    batch.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="with --batch: submit and return at once; running the cell again collects when done",
    )
    batch.add_argument("--workers", metavar="N", type=positive_int, help="requests at once with --each (default 8)")
    batch.add_argument(
        "--rpm", metavar="N", type=positive_int, help="at most this many requests per minute with --each"
    )
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
    trial = parser.add_argument_group(
        "with --each: trial runs (answers are cached: the full run sends only the rest), votes"
    )
    few = trial.add_mutually_exclusive_group()
    few.add_argument("--limit", metavar="N", type=positive_int, help="answer the first N items and show them")
    few.add_argument(
        "--sample", metavar="N", type=positive_int, help="answer N items drawn at random (seeded by --seed, else 0)"
    )
    trial.add_argument(
        "--votes",
        metavar="K",
        type=positive_int,
        help="with --schema: K answers per item (the API's n, else K requests); majority and agreement per field",
    )
    trial.add_argument(
        "--dry-run", action="store_true", help="send nothing: show the requests, the first prompt and a token estimate"
    )
    out = parser.add_argument_group("result")
    out.add_argument("--out", metavar="VAR", help="store the reply text (the parsed object with --json) in VAR")
    out.add_argument("--raw", action="store_true", help="send the cell as written: no {variable} interpolation")
    return parser


# IPython's own history and output-cache names: _, __, ___, _i, _ii, _iii, _iN, _N.
_IPYTHON_CACHE_NAME = re.compile(r"_{1,3}|_i{1,3}|_i\d+|_\d+")


def check_variable_name(name: str, reserved: Collection[str] = ()) -> str:
    """``name`` when ``--out`` may assign it: an identifier that is not a keyword, a dunder name,
    one of IPython's own names (``reserved``: the shell's ``user_ns_hidden``) or history variables."""
    if not name.isidentifier():
        raise UsageError(f"--out needs a Python variable name, not {name!r}.")
    if keyword.iskeyword(name):
        raise UsageError(f"--out {name!r} is a Python keyword; choose another variable name.")
    if (name.startswith("__") and name.endswith("__")) or name in reserved or _IPYTHON_CACHE_NAME.fullmatch(name):
        raise UsageError(f"--out {name!r} is a name IPython uses itself; choose another variable name.")
    return name
