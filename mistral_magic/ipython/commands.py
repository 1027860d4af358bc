"""Every ``%mistral`` subcommand, registered: importing this module imports the handlers of each topic,
which register themselves on :mod:`.subcommands`' registry (in the order the help lists them)."""

from __future__ import annotations

from . import chat_commands, run_commands, setup_commands
from .subcommands import SUBCOMMANDS, Commands, subcommand_help

TOPICS = (chat_commands, run_commands, setup_commands)

__all__ = ["SUBCOMMANDS", "TOPICS", "Commands", "subcommand_help"]
