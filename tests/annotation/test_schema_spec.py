"""--schema specs: the concise syntax, JSON Schema dicts and Pydantic classes, made strict."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel

from mistral_magic import UsageError
from mistral_magic.annotation.schema import Field, from_dict, parse_spec, resolve


def strict(properties: dict) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


SPECS = [
    ("reason", strict({"reason": {"type": "string"}})),
    (
        "n: int, x: float, ok: bool",
        strict({"n": {"type": "integer"}, "x": {"type": "number"}, "ok": {"type": "boolean"}}),
    ),
    ("tags: list[str]", strict({"tags": {"type": "array", "items": {"type": "string"}}})),
    (
        "label: positive|negative|neutral, confidence: float, reason",
        strict(
            {
                "label": {"type": "string", "enum": ["positive", "negative", "neutral"]},
                "confidence": {"type": "number"},
                "reason": {"type": "string"},
            }
        ),
    ),
    (" a : str ,b:a | b ", strict({"a": {"type": "string"}, "b": {"type": "string", "enum": ["a", "b"]}})),
]


@pytest.mark.parametrize(("spec", "expected"), SPECS)
def test_concise_specs_make_these_json_schemas(spec, expected):
    schema = parse_spec(spec)
    assert schema.json_schema == expected
    assert schema.response_format() == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": expected, "strict": True},
    }


def test_fields_carry_kinds_and_enum_choices():
    fields = parse_spec("label: a|b|c, n: int, tags: list[str], note").fields
    assert fields == (
        Field("label", "enum", ("a", "b", "c")),
        Field("n", "int"),
        Field("tags", "list"),
        Field("note", "str"),
    )


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("label:", "has ':' but no type"),
        ("a, , b", "empty field"),
        ("a,", "empty field"),
        ("a: integer", "unknown type 'integer'"),
        ("2x: int", "not a valid name"),
        ("a: int, a: str", "twice"),
        ("a: x||y", "empty or repeated choice"),
        ("a: x|x", "empty or repeated choice"),
        ("a: list[int]", "unknown type"),
    ],
)
def test_malformed_specs_are_one_line_usage_errors(spec, says):
    with pytest.raises(UsageError, match=None) as caught:
        parse_spec(spec)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def every_object(node):
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield node
        for value in node.values():
            yield from every_object(value)
    elif isinstance(node, list):
        for value in node:
            yield from every_object(value)


def test_a_dict_is_made_strict_on_every_object_and_left_unchanged_outside():
    given = {
        "title": "Review label",
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["a", "b"]},
            "span": {"type": "object", "properties": {"start": {"type": "integer"}}},
            "items": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
        },
        "$defs": {"Tag": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    schema = from_dict(given)
    objects = list(every_object(schema.json_schema))
    assert len(objects) == 3 and all(o["additionalProperties"] is False for o in objects)
    assert "additionalProperties" not in given["properties"]["span"]  # the notebook's dict is not changed
    assert schema.name == "Review_label"
    assert [f.kind for f in schema.fields] == ["enum", "other", "list"]


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"type": "string"}, "must be"),
        ({"type": "object", "properties": {}, "additionalProperties": True}, "allows additional properties"),
        (
            {"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "/properties/m",
        ),
    ],
)
def test_dicts_that_cannot_be_strict_are_refused(given, says):
    with pytest.raises(UsageError) as caught:
        from_dict(given)
    assert says in str(caught.value)


class Review(BaseModel):
    label: Literal["positive", "negative"]
    stars: int
    tags: list[str]


def test_a_pydantic_class_gives_its_schema_made_strict():
    schema = resolve(Review)
    assert schema.model is Review and schema.name == "Review"
    assert schema.json_schema["additionalProperties"] is False
    assert schema.json_schema["required"] == ["label", "stars", "tags"]
    assert [(f.name, f.kind) for f in schema.fields] == [("label", "enum"), ("stars", "int"), ("tags", "list")]


def test_names_resolve_to_notebook_variables_else_to_a_concise_spec():
    namespace = {"Review": Review, "as_dict": {"type": "object", "properties": {"x": {"type": "integer"}}}, "n": 3}
    assert resolve("Review", namespace).model is Review
    assert resolve("as_dict", namespace).fields == (Field("x", "int"),)
    assert resolve("label", namespace).fields == (Field("label", "str"),)  # not a variable: one string field
    with pytest.raises(
        UsageError, match="holds a value of type int; it must be a Pydantic model class or a JSON Schema dict"
    ):
        resolve("n", namespace)
