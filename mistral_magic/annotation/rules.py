"""How one run's answers are asked and checked, from its ``--schema`` and ``--votes``: the client a live
run sends through, which cached replies may be served again, and, for batch jobs, how a result
becomes an answer and how one that needs more is finished live."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from ..api.protocol import Completion
from ..errors import UsageError, option
from .batchfinish import Finish, repair_finish
from .batchstatus import first_choice
from .runner import Completer
from .schema import Schema
from .validate import SchemaClient, Validator
from .votes import ChoicesClient, VotingClient, vote_list


@dataclass
class AnswerRules:
    """See the module's docstring; ``validating`` and ``voting`` count repairs and ties for the summary."""

    client: Completer  # what a live run sends through
    usable: Callable[[str], bool] | None = None  # which replies may be served again (None: is_usable's)
    answer_of: Callable[[Sequence[Completion]], Completion | None] = first_choice  # a batch result's answer
    finish: Finish | None = None  # finishes a batch answer that needs more, with live requests
    validating: SchemaClient | None = None
    voting: VotingClient | None = None


def answer_rules(
    completer: Completer, choices: ChoicesClient, schema: Schema | None, votes: int, repairs: int
) -> AnswerRules:
    """The rules of a run: plain answers, ``--schema`` (validated, repaired up to ``repairs`` times)
    or ``--votes`` (``votes`` validated answers per item, asked with ``n`` through ``choices``)."""
    if votes > 1 and schema is None:
        raise UsageError(f"{option('votes')} needs {option('schema')}: the votes are counted per field.")
    if schema is None:
        return AnswerRules(completer)
    validating = SchemaClient(completer, Validator(schema), repairs)
    if votes <= 1:
        return AnswerRules(
            validating,
            validating.validator.usable,
            finish=repair_finish(validating.checked, completer),
            validating=validating,
        )
    voting = VotingClient(choices, validating, votes)
    return AnswerRules(
        voting,
        partial(VotingClient.usable, checked=validating),
        partial(vote_list, votes=votes),
        voting.finish,
        validating,
        voting,
    )
