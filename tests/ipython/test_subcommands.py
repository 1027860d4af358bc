"""%mistral subcommands come from one registry: the help is generated from their parsers."""

from __future__ import annotations

from mistral_magic import UsageError
from mistral_magic.ipython.commands import SUBCOMMANDS


def test_help_lists_every_subcommand_with_its_real_flags(shell):
    text = shell.ok("%mistral help").plain[0]
    for command in SUBCOMMANDS.values():
        assert command.usage in text and command.summary in text
    assert "%mistral key [--clear]" in text  # it worked but was missing from the hand-written help
    assert "%mistral reset [-c NAME] [--all]" in text
    assert "%%mistral" in text and "--temperature" in text  # the cell flags come first


def test_an_unknown_subcommand_names_the_registered_ones(shell):
    run = shell.run("%mistral nosuch")
    assert str(run.error) == f"Unknown subcommand 'nosuch'; try one of: {', '.join(sorted(SUBCOMMANDS))}."


def test_a_subcommand_refuses_flags_it_does_not_have(shell):
    run = shell.run("%mistral chats --all")
    assert type(run.error) is UsageError and "unrecognized arguments: --all" in str(run.error)
