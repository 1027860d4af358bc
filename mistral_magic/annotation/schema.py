"""``--schema``: a concise field spec, a JSON Schema dict or a Pydantic model class, made into the
strict JSON Schema Mistral's ``json_schema`` response format takes, and the fields of its answer.

Concise spec: ``"label: positive|negative|neutral, confidence: float, reason"``: comma-separated
fields, each a name and an optional type (``str``, the default, ``int``, ``float``, ``bool``,
``list[str]``, or an enum written ``a|b|c``). Every field is required.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

from ..api.protocol import json_schema_format
from ..errors import UsageError, option
from .pattern import PatternError, linear_pattern

_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "list[str]": {"type": "array", "items": {"type": "string"}},
}
# Where a JSON Schema holds other schemas: one, a list of them, or a dict of named ones.
_ONE_SCHEMA = (
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_NAMED_SCHEMAS = ("properties", "$defs", "definitions", "dependentSchemas")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCHEMA_NAME = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Field:
    """One top-level field of the answer, as a typed column sees it."""

    name: str
    kind: str  # "str", "int", "float", "bool", "list", "enum" or "other"
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Schema:
    """A schema ready to send: its ``name``, the strict JSON Schema, its fields and the model class (if any)."""

    name: str
    json_schema: dict[str, Any]
    fields: tuple[Field, ...]
    model: Any = None  # a Pydantic model class, when one was given

    def response_format(self) -> dict[str, Any]:
        """Mistral's structured-output response format (strict: no extra properties anywhere)."""
        return json_schema_format(self.name, self.json_schema)

    def instructions(self) -> str:
        """The schema in words, for servers that cannot take it as a response format."""
        return "Answer with only a JSON object that matches this JSON Schema:\n" + json.dumps(self.json_schema)


def parse_spec(spec: str) -> Schema:
    """The schema of a concise spec; a malformed spec is a :class:`UsageError` naming the bad part."""
    properties: dict[str, Any] = {}
    fields = []
    for part in spec.split(","):
        name, colon, kind = (s.strip() for s in part.partition(":"))
        if not name:
            raise UsageError(
                f"{option('schema')} {spec!r} has an empty field: write fields as 'name: type, name2: type'."
            )
        if not _NAME.fullmatch(name):
            raise UsageError(f"{option('schema')} field {name!r} is not a valid name: use letters, digits and _.")
        if name in properties:
            raise UsageError(f"{option('schema')} names the field {name!r} twice.")
        if colon and not kind:
            raise UsageError(
                f"{option('schema')} field {name!r} has ':' but no type: write str, int, float, bool, list[str] or a|b|c."
            )
        kind = kind or "str"
        if kind in _TYPES:
            properties[name] = dict(_TYPES[kind])
            fields.append(Field(name, "list" if kind == "list[str]" else kind))
        elif "|" in kind:
            choices = [c.strip() for c in kind.split("|")]
            if any(not c for c in choices) or len(set(choices)) != len(choices):
                raise UsageError(f"{option('schema')} enum {kind!r} of {name!r} has an empty or repeated choice.")
            properties[name] = {"type": "string", "enum": choices}
            fields.append(Field(name, "enum", tuple(choices)))
        else:
            raise UsageError(
                f"{option('schema')} field {name!r} has the unknown type {kind!r}: use str, int, float, bool, list[str] or a|b|c."
            )
    schema = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
    return Schema("answer", schema, tuple(fields))


def from_dict(schema: dict[str, Any], name: str = "answer") -> Schema:
    """A JSON Schema dict made strict (``additionalProperties: false`` on every object); its top level
    must be an object with properties."""
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise UsageError(f'{option("schema")}: a JSON Schema dict must be {{"type": "object", "properties": {{...}}}}.')
    strict = _strict(copy.deepcopy(schema), "")
    _check_patterns(strict, "")
    title = strict.get("title") if isinstance(strict.get("title"), str) else name
    return Schema(_schema_name(title), strict, _fields_of(strict))


def from_model(model: Any) -> Schema:
    """The schema of a Pydantic model class."""
    strict = _strict(model.model_json_schema(), "")
    _check_patterns(strict, "")
    return Schema(_schema_name(model.__name__), strict, _fields_of(strict), model)


def resolve(spec: Any, namespace: dict[str, Any] | None = None) -> Schema:
    """A schema from what ``--schema``/``schema=`` names: a Pydantic model class, a dict, the name of
    a notebook variable holding one, or a concise spec."""
    if isinstance(spec, Schema):
        return spec
    if isinstance(spec, str) and namespace is not None and spec.strip().isidentifier() and spec.strip() in namespace:
        value = namespace[spec.strip()]
        if not (isinstance(value, dict) or _is_model(value)):
            raise UsageError(
                f"{option('schema')} {spec.strip()} holds a value of type {type(value).__name__}; it must be a Pydantic model class or a JSON Schema dict."
            )
        spec = value
    if isinstance(spec, dict):
        return from_dict(spec)
    if _is_model(spec):
        return from_model(spec)
    if isinstance(spec, str):
        return parse_spec(spec)
    raise UsageError(
        f"schema must be a concise spec, a JSON Schema dict or a Pydantic model class (got {type(spec).__name__})."
    )


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and callable(getattr(value, "model_json_schema", None))


def _schema_name(text: str) -> str:
    return _SCHEMA_NAME.sub("_", text).strip("_")[:64] or "answer"


def _strict(node: Any, where: str) -> Any:
    """``node`` with ``additionalProperties: false`` on every object; an object that allows extra
    properties cannot be strict, so it is refused."""
    if isinstance(node, list):
        return [_strict(item, where) for item in node]
    if not isinstance(node, dict):
        return node
    for key, value in node.items():
        if key not in ("enum", "const", "default", "examples"):
            node[key] = _strict(value, f"{where}/{key}")
    if node.get("type") == "object" or "properties" in node:
        extra = node.get("additionalProperties", False)
        if extra is not False:
            raise UsageError(
                f"{option('schema')}: the object at {where or '/'} allows additional properties; a strict schema needs "
                "additionalProperties false (remove it or set it to false)."
            )
        node["additionalProperties"] = False
    return node


def _check_patterns(node: Any, where: str) -> None:
    """Every ``pattern`` of the schema must be one that replies can be checked against in bounded
    time (see :mod:`.pattern`); ``patternProperties`` is refused (its keys are searched with ``re``)."""
    if not isinstance(node, dict):
        return
    if "patternProperties" in node:
        raise UsageError(
            f"{option('schema')}: the object at {where or '/'} has patternProperties, which a strict schema cannot "
            "check in bounded time: list its properties instead."
        )
    if isinstance(node.get("pattern"), str):
        try:
            linear_pattern(node["pattern"])
        except PatternError as error:
            raise UsageError(
                f"{option('schema')}: the pattern {node['pattern']!r} at {where or '/'} {error}: write it without that."
            ) from None
    for key in _ONE_SCHEMA:
        _check_patterns(node.get(key), f"{where}/{key}")
    for key in _SCHEMA_LISTS:
        if isinstance(node.get(key), list):
            for index, item in enumerate(node[key]):
                _check_patterns(item, f"{where}/{key}/{index}")
    for key in _NAMED_SCHEMAS:
        if isinstance(node.get(key), dict):
            for name, item in node[key].items():
                _check_patterns(item, f"{where}/{key}/{name}")


def _fields_of(schema: dict[str, Any]) -> tuple[Field, ...]:
    fields = []
    for name, prop in schema.get("properties", {}).items():
        prop = _resolve_ref(schema, prop)
        kind = prop.get("type") if isinstance(prop, dict) else None
        if isinstance(prop, dict) and isinstance(prop.get("enum"), list):
            fields.append(Field(name, "enum", tuple(prop["enum"])))
        elif kind in ("string", "integer", "number", "boolean", "array"):
            short = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "array": "list"}[kind]
            fields.append(Field(name, short))
        else:
            fields.append(Field(name, "other"))
    return tuple(fields)


def _resolve_ref(schema: dict[str, Any], prop: Any) -> Any:
    """A property's local ``$ref`` (``#/$defs/Name``, as Pydantic writes enums) followed once."""
    if isinstance(prop, dict) and isinstance(prop.get("$ref"), str) and prop["$ref"].startswith("#/"):
        node: Any = schema
        for part in prop["$ref"][2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node
    if isinstance(prop, dict) and isinstance(prop.get("allOf"), list) and len(prop["allOf"]) == 1:
        return _resolve_ref(schema, prop["allOf"][0])
    return prop
