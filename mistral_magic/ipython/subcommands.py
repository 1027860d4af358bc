"""The registry of the ``%mistral`` subcommands (each a parser, a handler and a summary; the help is
generated from them) and :class:`Commands`, which runs one line. The handlers live by topic in
:mod:`.chat_commands`, :mod:`.run_commands` and :mod:`.setup_commands`; :mod:`.commands` registers them all."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UsageError
from .cellflags import ArgumentParser

if TYPE_CHECKING:  # the session (and httpx under it) is imported on first use, not when the extension loads
    from ..cells import CellRef
    from ..session import Session

Handler = Callable[["Commands", argparse.Namespace], None]


@dataclass(frozen=True)
class Subcommand:
    """One ``%mistral`` subcommand: its parser, its handler and a one-line summary for the help."""

    name: str
    summary: str
    parser: ArgumentParser
    handler: Handler
    raw: bool = False  # the handler gets the rest of the line as written (``opts.line``), not split

    @property
    def usage(self) -> str:
        return " ".join(self.parser.format_usage().split())[len("usage: ") :]


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(
    summary: str, *arguments: Callable[[ArgumentParser], object], raw: bool = False
) -> Callable[[Handler], Handler]:
    """Register a ``Commands`` method as ``%mistral NAME`` (the method's name); ``arguments``
    add the parser's arguments (with ``raw``, they only document the line for the help)."""

    def register(handler: Handler) -> Handler:
        name = handler.__name__
        parser = ArgumentParser(prog=f"%mistral {name}", add_help=False, allow_abbrev=False)
        for add in arguments:
            add(parser)
        SUBCOMMANDS[name] = Subcommand(name, summary, parser, handler, raw)
        return handler

    return register


def subcommand_help() -> str:
    """The help of every subcommand, generated from the parsers."""
    lines = ["Line-magic subcommands:"]
    for command in SUBCOMMANDS.values():
        usage = command.usage
        if len(usage) <= 34:
            lines.append(f"  {usage:<34}{command.summary}")
        else:
            lines.extend([f"  {usage}", f"  {'':<34}{command.summary}"])
    return "\n".join(lines)


def chat_flag(parser: ArgumentParser) -> None:
    """``-c/--chat NAME``, for the subcommands about one chat."""
    parser.add_argument("-c", "--chat", metavar="NAME", default="default")


class Commands:
    """Runs one subcommand line against the session and shows the result."""

    def __init__(
        self, session: Session, show: Callable[[dict[str, str]], None], help_text: str, cell: CellRef | None = None
    ):
        self.session = session
        self.kernel_config = session.config
        self.show = show
        self.help_text = help_text
        self.cell = cell  # the notebook cell that runs the subcommand (a %mistral explain is a turn of it)

    def run(self, line: str) -> None:
        name, _, rest = line.strip().partition(" ")
        command = SUBCOMMANDS.get(name)
        if command is not None and command.raw:  # free text: an apostrophe is not a shell quote
            command.handler(self, argparse.Namespace(line=rest.strip()))
            return
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"Cannot read the arguments ({exc}); check the quotes.") from None
        if not words:
            raise UsageError("%mistral needs a subcommand, e.g. %mistral help; to ask, use %%mistral as a cell magic.")
        command = SUBCOMMANDS.get(words[0])
        if command is None:
            raise UsageError(f"Unknown subcommand {words[0]!r}; try one of: {', '.join(sorted(SUBCOMMANDS))}.")
        command.handler(self, command.parser.parse_args(words[1:]))

    def _say(self, text: str) -> None:
        self.show({"text/plain": text})


def shorten(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_value(value: object) -> str:
    return "(none)" if value is None else repr(value) if isinstance(value, str) else str(value)
