"""``--votes K``: K answers per item (the API's ``n`` where the server honours it, else K requests),
and per field the majority value, the share of votes for it ("agreement") and any tie.

One item's votes travel as one completion whose text is the JSON list of its valid answers, so the
reply cache keeps them together (the request body carries ``n``, so its key differs from a run
without votes).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from ..api.protocol import Completion, Endpoint
from ..errors import BadRequestError, JsonReplyError, SchemaReplyError, UnprocessableError
from ..usage import TokenUsage, add_usage
from .jsonmode import parse_json_reply
from .schema import Field
from .typed import typed_column
from .validate import SchemaClient, fallback_body, rejects_json_schema


class ChoicesClient(Protocol):
    def complete_choices(self, endpoint: Endpoint, body: dict[str, Any], on_retry: Any = None) -> list[Completion]: ...


class VotingClient:
    """Answers one item with ``votes`` validated answers (invalid votes after repairs are dropped;
    an item with none left fails with the last reason)."""

    def __init__(self, client: ChoicesClient, checked: SchemaClient, votes: int):
        self.client = client
        self.checked = checked
        self.votes = votes
        self.use_n = True  # until the server shows it does not honour n

    def complete(self, endpoint: Endpoint, body: dict[str, Any], on_retry: Any = None) -> Completion:
        got = self._with_n(endpoint, body, on_retry) if self.use_n else []
        return self.finish(endpoint, body, got, on_retry)

    def finish(
        self, endpoint: Endpoint, body: dict[str, Any], got: Sequence[Completion], on_retry: Any = None
    ) -> Completion:
        """The item's votes from the choices ``got`` so far (each checked, and repaired when invalid),
        the votes still missing asked one by one."""
        single = {k: v for k, v in body.items() if k != "n"}
        got = [*got[:1], *(replace(c, usage=None) for c in got[1 : self.votes])]  # n's choices share one usage
        usage: TokenUsage | None = None
        answers: list[Any] = []
        last_error: SchemaReplyError | None = None
        sent = fallback_body(single, self.checked.validator.schema) if self.checked.fallback else single

        def send(repair: dict[str, Any]) -> Completion:
            return self.checked.client.complete(endpoint, repair, on_retry)

        # The choices that came back are checked (and repaired); the votes still missing are asked one by one.
        ballots: list[Callable[[], Completion]] = [partial(self.checked.checked, c, sent, send) for c in got]
        ballots += [partial(self.checked.complete, endpoint, single, on_retry)] * (self.votes - len(got))
        for ballot in ballots:
            try:
                vote = ballot()
            except SchemaReplyError as error:
                last_error = error
                continue
            answers.append(parse_json_reply(vote.text))
            usage = add_usage(usage, vote.usage)
        if not answers:
            assert last_error is not None
            raise last_error
        return Completion(text=json.dumps(answers), finish_reason="stop", usage=usage)

    def _with_n(self, endpoint: Endpoint, body: dict[str, Any], on_retry: Any) -> list[Completion]:
        sent = fallback_body(body, self.checked.validator.schema) if self.checked.fallback else body
        try:
            choices = self.client.complete_choices(endpoint, sent, on_retry)
        except (BadRequestError, UnprocessableError) as error:
            if rejects_json_schema(error) and not self.checked.fallback:
                self.checked.fallback = True
                return self._with_n(endpoint, body, on_retry)
            self.use_n = False  # a server that refuses n: K requests from now on (a real error shows again there)
            return []
        if len(choices) < self.votes:
            self.use_n = False  # n ignored: the choices that came count, the rest are asked one by one
        return choices

    @staticmethod
    def usable(text: str, checked: SchemaClient) -> bool:
        """A cached vote list: a JSON list of answers that each match the schema."""
        try:
            answers = json.loads(text)
        except ValueError:
            return False
        return (
            isinstance(answers, list)
            and bool(answers)
            and all(checked.validator.usable(json.dumps(a)) for a in answers)
        )


def vote_list(choices: Sequence[Completion], votes: int) -> Completion | None:
    """The ``votes`` choices of one answer as one vote list (as :class:`VotingClient` caches it), or
    ``None`` when there are fewer or one is not JSON (then :meth:`VotingClient.finish` completes them)."""
    if len(choices) < votes:
        return None
    try:
        answers = [parse_json_reply(choice.text) for choice in choices[:votes]]
    except JsonReplyError:
        return None
    return Completion(text=json.dumps(answers), finish_reason="stop", usage=choices[0].usage)


@dataclass(frozen=True)
class Tally:
    """One field's votes for one item: the winner (``None`` on a tie), its share, and the tied values."""

    winner: Any
    agreement: float
    tied: tuple[Any, ...] = ()


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def tally(values: Sequence[Any]) -> Tally:
    """The majority of ``values`` (compared as JSON, so lists and numbers count exactly)."""
    if not values:
        return Tally(None, float("nan"))
    counts = Counter(_key(v) for v in values)
    top = max(counts.values())
    leaders = [json.loads(k) for k, c in counts.items() if c == top]
    share = top / len(values)
    if len(leaders) > 1:
        return Tally(None, share, tuple(leaders))
    return Tally(leaders[0], share)


def vote_frame(fields: Sequence[Field], votes: Sequence[Any], index: Any = None) -> Any:
    """Per field: the typed majority column ``field``, ``field_agreement`` (share of the votes for
    the winner) and ``field_tie`` (the tied values, " | "-joined; empty when there is a winner)."""
    import pandas

    columns: dict[str, Any] = {}
    for field in fields:
        tallies = [tally([v.get(field.name) for v in item]) if item else None for item in votes]
        winners = [None if t is None else {field.name: t.winner} for t in tallies]
        columns[field.name] = typed_column(field, winners, index)
        columns[f"{field.name}_agreement"] = pandas.Series(
            [float("nan") if t is None else t.agreement for t in tallies], index=index, dtype="float64"
        )
        columns[f"{field.name}_tie"] = pandas.Series(
            ["" if t is None else " | ".join(str(v) for v in t.tied) for t in tallies], index=index, dtype="object"
        )
    return pandas.DataFrame(columns, index=index if index is not None else pandas.RangeIndex(len(votes)))


def count_ties(fields: Sequence[Field], votes: Sequence[Any]) -> int:
    """Items with a tie in at least one field."""
    return sum(1 for item in votes if item and any(tally([v.get(f.name) for v in item]).tied for f in fields))
