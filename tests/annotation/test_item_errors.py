"""What fails for one item stays that item's error, in one line, and the run answers the others: a
value whose ``str()`` raises, a user's validator that raises (live and batch), a repair that would
quote a huge enum."""

from __future__ import annotations

import json
from typing import ClassVar

import pydantic
import pytest
from PIL import Image

from mistral_magic.annotation.validate import REPAIR_PROMPT
from tests.fakeapi import Reply, last_user_message
from tests.support.batch import uploaded_lines


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("this object cannot be printed")

    __repr__ = __str__


class Mute(Exception):
    """An exception whose message itself fails."""

    def __str__(self) -> str:
        raise RuntimeError("no message either")


FAILURES = {
    "TypeError": TypeError("a bug in the validator\nspread over two lines"),
    "Mute": Mute(),
}


class Rated(pydantic.BaseModel):
    label: str

    @pydantic.field_validator("label")
    @classmethod
    def no_boom(cls, value: str) -> str:
        if value == "boom":
            raise FAILURES[Rated.failure]
        return value

    failure: ClassVar[str] = "TypeError"


def answer_boom_for_b(request) -> Reply:
    return Reply(text=json.dumps({"label": "boom" if last_user_message(request) == "b" else "fine"}))


def errors_of(shell) -> dict[int, str]:
    return {e.index: e.error for e in shell.magics.session.last_run.errors}


def test_an_item_whose_str_raises_is_its_own_error(shell, fake):
    shell.ns["t_items"] = ["a", Unprintable(), "c"]
    run = shell.ok("%%mistral --each t_items --out t_out\nSay {item}")
    assert shell.ns["t_out"] == ["Echo: Say a", None, "Echo: Say c"]
    assert "3 items: 2 answered (0 from the cache), 1 failed" in run.stdout
    assert errors_of(shell) == {1: "RuntimeError: this object cannot be printed"}
    assert len(fake.requests) == 2
    shown = shell.ok("%mistral errors").plain[-1]
    assert "RuntimeError: this object cannot be printed" in shown and "Unprintable" in shown


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("batch", [False, True], ids=["live", "batch"])
def test_a_validator_that_raises_makes_that_answer_invalid(batch_shell, fake, monkeypatch, failure, batch):
    monkeypatch.setattr(Rated, "failure", failure)
    fake.default_reply = answer_boom_for_b
    batch_shell.ns["t_items"] = ["a", "b", "c"]
    batch_shell.ns["Rated"] = Rated
    flags = "--batch" if batch else ""
    run = batch_shell.ok(f"%%mistral --each t_items {flags} --schema Rated --repair 0 --out t_out\n{{item}}")
    assert batch_shell.ns["t_out"]["label"].tolist() == ["fine", None, "fine"]
    assert "2 answered" in run.stdout and "1 failed" in run.stdout
    [error] = errors_of(batch_shell).values()
    raised = (
        "TypeError: a bug in the validator spread over two lines"
        if failure == "TypeError"
        else "Mute: (its message cannot be shown)"
    )
    assert error == f"The reply does not match the schema: the validation raised {raised}", error


def test_a_repair_quotes_a_bounded_part_of_a_huge_enum(shell, fake):
    choices = [f"category-{number:05}" for number in range(10_000)]
    shell.ns["t_schema"] = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": choices}},
        "required": ["label"],
    }
    fake.script(Reply(text='{"label": "great"}'), Reply(text='{"label": "category-00042"}'))
    shell.ns["t_items"] = ["x"]
    shell.ok("%%mistral --each t_items --schema t_schema --out t_out\nRate {item}")
    assert shell.ns["t_out"]["label"].tolist() == ["category-00042"]
    repair = last_user_message(fake.requests[-1].json())
    assert repair.startswith(REPAIR_PROMPT.split(":")[0]) and len(repair) < 1_000, len(repair)
    assert "'great' is not one of the 10000 allowed values" in repair and "'category-00000'" in repair


def test_a_missing_image_file_in_a_batch_run_is_that_items_error(batch_shell, fake, tmp_path):
    Image.new("RGB", (16, 12), "red").save(tmp_path / "a.png", format="PNG")
    gone = tmp_path / "gone.png"
    batch_shell.ns["t_paths"] = [str(tmp_path / "a.png"), str(gone)]
    run = batch_shell.ok("%%mistral -m mistral-small-latest --each t_paths --batch --out t_out --image {item}\nLook")
    assert "2 items: 1 answered (0 from the cache), 1 sent as a batch, 1 failed" in run.stdout
    assert errors_of(batch_shell) == {1: f"Item 1: --image item: {str(gone)!r} is no file."}
    [lines] = uploaded_lines(fake)
    assert len(lines) == 1 and batch_shell.ns["t_out"][1] is None
