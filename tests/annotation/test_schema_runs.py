"""--schema end to end: the request's response_format, validation, repair, errors and typed columns."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest
from pydantic import BaseModel

from mistral_magic import SchemaReplyError
from mistral_magic.annotation.validate import REPAIR_PROMPT
from tests.fakeapi import Reply, last_user_message

SPEC = "label: positive|negative|neutral, stars: int, score: float, sure: bool"
GOOD = {"label": "positive", "stars": 4, "score": 0.5, "sure": True}


def format_of(request) -> dict:
    return request.json()["response_format"]


def test_a_single_cell_sends_mistrals_json_schema_format_and_stores_the_validated_dict(shell, fake):
    fake.script(Reply(text=json.dumps(GOOD)))
    shell.ok(f'%%mistral --schema "{SPEC}" --out t_answer\nRate this.')
    assert shell.ns["t_answer"] == GOOD
    response_format = format_of(fake.requests[0])
    assert set(response_format) == {"type", "json_schema"} and response_format["type"] == "json_schema"
    spec = response_format["json_schema"]
    assert set(spec) == {"name", "schema", "strict"} and spec["strict"] is True
    assert spec["schema"]["additionalProperties"] is False
    assert spec["schema"]["required"] == ["label", "stars", "score", "sure"]


class Verdict(BaseModel):
    label: str
    stars: int


def test_a_pydantic_class_gives_an_instance(shell, fake):
    shell.ns["Verdict"] = Verdict
    fake.script(Reply(text='{"label": "ok", "stars": 3}'))
    shell.ok("%%mistral --schema Verdict --out t_v\nRate.")
    assert shell.ns["t_v"] == Verdict(label="ok", stars=3)
    assert format_of(fake.requests[0])["json_schema"]["name"] == "Verdict"


def test_a_dict_schema_from_a_variable(shell, fake):
    shell.ns["t_schema"] = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    fake.script(Reply(text='{"x": 2}'))
    shell.ok("%%mistral --schema t_schema --out t_v\nGive x.")
    assert shell.ns["t_v"] == {"x": 2}
    assert format_of(fake.requests[0])["json_schema"]["schema"]["additionalProperties"] is False


def test_a_single_cell_is_repaired_in_its_chat_with_the_reason(shell, fake):
    fake.script(Reply(text='{"label": "great", "stars": 4, "score": 0.5, "sure": true}'), Reply(text=json.dumps(GOOD)))
    run = shell.ok(f'%%mistral --schema "{SPEC}" --out t_answer\nRate this.')
    assert shell.ns["t_answer"] == GOOD
    assert "asking again (repair 1 of 1)" in run.stderr
    repair = fake.requests[1].json()["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"label": "great", "stars": 4, "score": 0.5, "sure": true}'}
    assert "'great' is not one of" in repair[-1]["content"]
    assert format_of(fake.requests[1])["type"] == "json_schema"


def test_a_single_cell_still_invalid_fails_with_the_reason(shell, fake):
    fake.script(Reply(text="no json here"))
    run = shell.run('%%mistral --schema "label: a|b" --repair 0 --out t_answer\nRate this.')
    assert isinstance(run.error, SchemaReplyError)
    assert "not valid JSON" in str(run.error) and len(fake.requests) == 1
    assert "t_answer" not in shell.ns


def test_schema_and_json_together_are_refused(shell, fake):
    run = shell.run('%%mistral --schema "a" --json\nx')
    assert "drop --json" in str(run.error) and not fake.requests
    alone = shell.run("%%mistral --repair 2\nx")
    assert "--repair N goes with --schema" in str(alone.error) and not fake.requests


BAD_FIRST = {
    "invalid": "label: positive",
    "missing": '{"label": "positive", "stars": 4, "score": 0.5}',
    "extra": '{"label": "positive", "stars": 4, "score": 0.5, "sure": true, "note": "x"}',
    "enum": '{"label": "great", "stars": 4, "score": 0.5, "sure": true}',
}


def scripted(request) -> Reply:
    """Per item: a bad first answer of each kind, then a good repair; 'hopeless' is never repaired."""
    messages = request["messages"]
    item = messages[0]["content"].split(":")[-1].strip()
    repairing = messages[-1]["content"].startswith(REPAIR_PROMPT.split(":")[0])
    if item == "hopeless":
        return Reply(text="{}")
    if item in BAD_FIRST and not repairing:
        return Reply(text=BAD_FIRST[item])
    return Reply(text=json.dumps({**GOOD, "stars": len(item)}))


def test_each_repairs_every_kind_of_bad_reply_and_reports_the_rest(shell, fake):
    fake.default_reply = scripted
    shell.ns["t_items"] = ["invalid", "missing", "extra", "enum", "fine", "hopeless"]
    run = shell.ok(f'%%mistral --each t_items --schema "{SPEC}" --out t_labels\nRate: {{item}}')
    assert "6 items: 5 answered (0 from the cache), 4 repaired, 1 failed" in run.stdout
    assert len(fake.requests) == 6 + 4 + 1
    frame = shell.ns["t_labels"]
    assert frame["stars"].tolist() == [7, 7, 5, 4, 4, pd.NA]
    errors = shell.magics.session.last_run.errors
    assert [(e.index, e.item) for e in errors] == [(5, "hopeless")]
    assert (
        "does not match the schema (after 1 repair)" in errors[0].error and "'label' is a required" in errors[0].error
    )
    shown = shell.ok("%mistral errors").everything
    assert "hopeless" in shown and "required property" in shown
    # Only valid answers were cached: the re-run sends just the failed item (and its repair).
    fake.requests.clear()
    rerun = shell.ok(f'%%mistral --each t_items --schema "{SPEC}" --out t_labels\nRate: {{item}}')
    assert "(5 from the cache)" in rerun.stdout and len(fake.requests) == 2


def test_repair_zero_reports_at_once(shell, fake):
    fake.default_reply = scripted
    shell.ns["t_items"] = ["extra", "fine"]
    run = shell.ok(f'%%mistral --each t_items --schema "{SPEC}" --repair 0 --out t_labels\nRate: {{item}}')
    assert "1 answered" in run.stdout and len(fake.requests) == 2
    assert (
        "Additional properties are not allowed ('note' was unexpected)" in shell.magics.session.last_run.errors[0].error
    )


def test_servers_without_json_schema_get_json_object_and_the_schema_in_the_prompt(shell, fake):
    fake.json_schema = False
    fake.default_reply = lambda request: Reply(text=json.dumps(GOOD))
    shell.ns["t_items"] = ["a", "b", "c"]
    run = shell.ok(f'%%mistral --each t_items --schema "{SPEC}" --workers 1 --out t_labels\nRate: {{item}}')
    assert "3 answered" in run.stdout
    answered = [r.json() for r in fake.requests if r.json()["response_format"]["type"] == "json_object"]
    assert len(answered) == 3
    assert all('"enum": ["positive", "negative", "neutral"]' in b["messages"][-1]["content"] for b in answered)
    single = shell.ok(f'%%mistral --schema "{SPEC}" --out t_one\nRate.')
    assert shell.ns["t_one"] == GOOD and "does not take the json_schema response format" in single.stderr


def assert_typed(frame, index):
    assert list(frame.index) == list(index)
    assert str(frame["stars"].dtype) == "Int64" and str(frame["score"].dtype) == "float64"
    assert str(frame["sure"].dtype) == "boolean"
    assert list(frame["label"].cat.categories) == ["positive", "negative", "neutral"]
    assert frame["label"].value_counts()["neutral"] == 0
    assert frame["stars"].isna().tolist() == [False, False, True]


def typed_reply(request) -> Reply:
    item = last_user_message(request).split(":")[-1].strip()
    return Reply(text="{}" if item == "none" else json.dumps({**GOOD, "stars": len(item)}))


def test_typed_columns_for_a_list(shell, fake):
    fake.default_reply = typed_reply
    shell.ns["t_items"] = ["ab", "abc", "none"]
    shell.ok(f'%%mistral --each t_items --schema "{SPEC}" --repair 0 --out t_labels\nRate: {{item}}')
    assert_typed(shell.ns["t_labels"], range(3))


def test_typed_columns_for_a_series(shell, fake):
    fake.default_reply = typed_reply
    shell.ns["t_items"] = pd.Series(["ab", "abc", "none"], index=[10, 20, 30])
    shell.ok(f'%%mistral --each t_items --schema "{SPEC}" --repair 0 --out t_labels\nRate: {{item}}')
    assert_typed(shell.ns["t_labels"], [10, 20, 30])


def test_typed_columns_are_added_to_a_dataframe_as_name_field(shell, fake):
    fake.default_reply = typed_reply
    shell.ns["t_df"] = pd.DataFrame({"text": ["ab", "abc", "none"]}, index=["x", "y", "z"])
    shell.ok(f'%%mistral --each t_df --schema "{SPEC}" --repair 0 --out rating\nRate: {{text}}')
    frame = shell.ns["t_df"]
    assert list(frame.columns) == ["text", "rating_label", "rating_stars", "rating_score", "rating_sure"]
    assert_typed(shell.ns["rating"], ["x", "y", "z"])
    assert str(frame["rating_stars"].dtype) == "Int64" and frame["rating_label"].dtype.name == "category"


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"schema": {}}},
        {"type": "json_schema", "json_schema": {"name": "a", "schema": {}, "additionalProperties": False}},
        {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}, "strict": True},
        {"type": "json_schema", "json_schema": {"name": "a", "schema": {}, "strict": "yes"}},
        {"type": "json_schema"},
        {"type": "jsonschema"},
    ],
)
def test_the_fake_server_rejects_other_response_format_shapes_with_422(fake, response_format):
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": response_format}
    assert httpx.post(fake.url + "/v1/chat/completions", json=body).status_code == 422
    ok = {
        **body,
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {}, "strict": True}},
    }
    assert httpx.post(fake.url + "/v1/chat/completions", json=ok).status_code == 200


def test_annotate_takes_a_schema_and_a_repair_count(shell, fake):
    import mistral_magic

    fake.script(Reply(text='{"label": "ok", "stars": 4, "note": "x"}'), Reply(text='{"label": "ok", "stars": 4}'))
    run = mistral_magic.annotate(["extra", "fine"], "Rate: {item}", schema=Verdict, repair=0, workers=1)
    assert run[0] is None and run[1] == {"label": "ok", "stars": 4}
    assert "Additional properties are not allowed" in run.errors[0].error  # Pydantic alone would ignore them
    assert format_of(fake.requests[0])["json_schema"]["name"] == "Verdict"


def test_repairs_and_votes_count_their_tokens(shell, fake):
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    fake.script(Reply(text="{}", usage=usage), Reply(text='{"label": "a"}', usage=usage))
    shell.ns["t_items"] = ["x"]
    shell.ok('%%mistral --each t_items --schema "label: a|b" --out t_v\nRate: {item}')
    counted = shell.magics.session.store.usage["--each t_items"]
    assert (counted.prompt_tokens, counted.completion_tokens) == (20, 4)
    fake.honour_n = False  # three requests, one of them repaired: four replies' tokens
    fake.script(*[Reply(text=t, usage=usage) for t in ('{"label": "a"}', "{}", '{"label": "b"}', '{"label": "a"}')])
    shell.ns["t_more"] = ["y"]
    shell.ok('%%mistral --each t_more --schema "label: a|b" --votes 3 --out t_w\nRate: {item}')
    counted = shell.magics.session.store.usage["--each t_more"]
    assert (counted.prompt_tokens, counted.completion_tokens) == (40, 8)
    assert shell.ns["t_w"]["label"].tolist() == ["a"] and shell.ns["t_w"]["label_agreement"].tolist() == [2 / 3]
