"""Pydantic models as GraphQL types (graphql-core): what `api.typed_kinds` gives each kind
(ADR-0020).

A model field becomes a field named by its wire name (what the model reads, camelCased when
snake_case), with the model's description and, where GraphQL can spell it, its default:
`bool`/`int`/`float`/`str`/`datetime` the GraphQL scalars (`Long` for integers bounded past 32
bits), enums and `Literal`s of names GraphQL enums, nested models input (`<Kind><Model>Input`)
or object (`<Kind><Model>`) types, lists lists, `X | None` a nullable field. Anything else is
named by pydantic's JSON Schema of it (`date`, `UUID`, `EmailStr`... are `String`) or, when
GraphQL has no type for it (dicts, `Any`, unions of several types), `JSON`.
"""

from __future__ import annotations

import collections.abc
import re
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from math import isfinite
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLNullableInputType,
    GraphQLNullableOutputType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    IntValueNode,
    ValueNode,
    ast_from_value,
    get_named_type,
)
from pydantic import BaseModel, TypeAdapter
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from conveyor.domain.storable import INT8_MAX, INT8_MIN

_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
_NOT_ENUM_NAMES = frozenset({"true", "false", "null"})
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_SEQUENCES = (
    list,
    set,
    frozenset,
    tuple,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Set,
    collections.abc.MutableSet,
    collections.abc.Collection,
    collections.abc.Iterable,
)


class Untypeable(Exception):
    """Something in a kind's model that no GraphQL name or type can say."""


def pascal(kind_name: str) -> str:
    """`reports.generate` -> `ReportsGenerate` (the stem of every name a kind gets)."""
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[._]", kind_name) if p)


def field_name(wire: str) -> str:
    """The GraphQL name of a field the model reads as `wire`: camelCase, as everywhere."""
    name = to_camel(wire) if "_" in wire.strip("_") else wire
    if not _NAME.match(name) or name.startswith("__"):
        raise Untypeable(f"field {wire!r} has no GraphQL name")
    return name


def _type_name(text: str) -> str:
    """A class name as a GraphQL name (`Page[int]` -> `Pageint`)."""
    return re.sub(r"\W", "", text)


def _parse_long(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and INT8_MIN <= value <= INT8_MAX:
        return value
    raise GraphQLError(f"Long cannot represent {value!r}: expected a 64-bit integer")


def _parse_long_literal(node: ValueNode, _variables: Any = None) -> int:
    if not isinstance(node, IntValueNode):
        raise GraphQLError("Long cannot represent a non-integer value")
    return _parse_long(int(node.value))


#: For integer fields whose bounds go past 32 bits (GraphQL's Int stops there).
LONG = GraphQLScalarType(
    "Long",
    description=(
        "A 64-bit integer, sent as a JSON number (JavaScript reads it exactly up to 2^53)."
    ),
    serialize=_parse_long,
    parse_value=_parse_long,
    parse_literal=_parse_long_literal,
)


@dataclass
class Shape:
    """An input object's fields by wire name: their GraphQL name and the shape under them
    (None for leaves). Turns a pydantic error location into the path the client wrote."""

    fields: dict[str, tuple[str, Shape | None]] = field(default_factory=dict)


def client_path(shape: Shape | None, loc: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for part in loc:
        if shape is not None and part in shape.fields:
            name, shape = shape.fields[part]
            out.append(name)
        else:  # a list index (the shape stays the item's), or a name the model added
            out.append(part)
    return tuple(out)


def unwrap(annotation: Any) -> tuple[Any, bool, list[Any]]:
    """The core type under `Annotated[...]` and `X | None`, whether None is allowed, and the
    metadata (constraints) collected on the way."""
    nullable = False
    metadata: list[Any] = []
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *more = get_args(annotation)
            metadata.extend(more)
        elif origin is Union or origin is types.UnionType:
            args = get_args(annotation)
            others = [a for a in args if a is not type(None)]
            nullable = nullable or len(others) < len(args)
            if len(others) != 1:
                return annotation, nullable, metadata  # several types: JSON
            annotation = others[0]
        else:
            return annotation, nullable, metadata


def _json_schema(core: Any, metadata: list[Any]) -> dict[str, Any]:
    try:
        target = Annotated[(core, *metadata)] if metadata else core
        return TypeAdapter(cast(Any, target)).json_schema()
    except Exception:  # a type pydantic describes only inside a model: GraphQL says JSON
        return {}


def _plain(value: object) -> bool:
    """Whether `value` can be a GraphQL default as it is."""
    if value is None or isinstance(value, bool | str | int):
        return True
    if isinstance(value, float):
        return isfinite(value)
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return False


_NO_DEFAULT = object()


def _default(info: FieldInfo) -> Any:
    if info.is_required() or info.default_factory is not None:
        return _NO_DEFAULT
    value = info.default
    if isinstance(value, Enum):
        value = value.value
    return value if _plain(value) else _NO_DEFAULT


class Builder:
    """Builds the GraphQL types of one kind, named after it (`prefix`)."""

    def __init__(self, schema: GraphQLSchema, prefix: str) -> None:
        self.schema = schema
        self.prefix = prefix
        #: Named types created for this kind, by name.
        self.created: dict[str, GraphQLNamedType] = {}
        self._inputs: dict[type[BaseModel], tuple[GraphQLInputObjectType, Shape]] = {}
        self._outputs: dict[type[BaseModel], GraphQLObjectType] = {}

    def _claim(self, named: GraphQLNamedType) -> None:
        if named.name in self.schema.type_map or named.name in self.created:
            raise Untypeable(f"the GraphQL type name {named.name} is taken")
        self.created[named.name] = named

    def _scalar(self, name: str) -> GraphQLScalarType:
        found = self.schema.type_map.get(name)
        assert isinstance(found, GraphQLScalarType), name
        return found

    # -- leaves, shared by both sides

    def _leaf(self, core: Any, metadata: list[Any], context: str) -> GraphQLNamedType | None:
        """The GraphQL type of a leaf, or None when `core` is a structure (list, model)."""
        origin = get_origin(core)
        if origin is Literal:
            return self._literal(get_args(core), context)
        if origin is not None or core in _SEQUENCES:
            return None if origin in _SEQUENCES or core in _SEQUENCES else self._scalar("JSON")
        if isinstance(core, type):
            if issubclass(core, BaseModel):
                return None
            if issubclass(core, Enum):
                return self._enum_of(core)
            if issubclass(core, bool):
                return GraphQLBoolean
            if issubclass(core, int):
                return self._int(metadata)
            if issubclass(core, float):
                return GraphQLFloat
            if issubclass(core, str):
                return GraphQLString
            if issubclass(core, datetime):
                return self._scalar("DateTime")
        described = _json_schema(core, metadata).get("type")
        return {
            "string": GraphQLString,
            "integer": GraphQLInt,
            "number": GraphQLFloat,
            "boolean": GraphQLBoolean,
        }.get(str(described), self._scalar("JSON"))

    def _int(self, metadata: list[Any]) -> GraphQLScalarType:
        schema = _json_schema(int, metadata) if metadata else {}
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if (low is not None and low < _INT32_MIN) or (high is not None and high > _INT32_MAX):
            self.created.setdefault(LONG.name, LONG)
            return LONG
        return GraphQLInt

    def _enum(
        self, name: str, values: dict[str, object], description: str | None
    ) -> GraphQLEnumType:
        existing = self.created.get(name)
        if isinstance(existing, GraphQLEnumType):
            if {k: v.value for k, v in existing.values.items()} != values:
                raise Untypeable(f"two enums of {self.prefix} would be named {name}")
            return existing
        enum = GraphQLEnumType(
            name, {k: GraphQLEnumValue(v) for k, v in values.items()}, description=description
        )
        self._claim(enum)
        return enum

    def _enum_of(self, cls: type[Enum]) -> GraphQLNamedType:
        values = {m.name: m.value for m in cls}
        if not all(_enum_name(k) for k in values) or not all(_plain(v) for v in values.values()):
            return self._scalar("JSON")
        doc = cls.__dict__.get("__doc__")
        return self._enum(f"{self.prefix}{_type_name(cls.__name__)}", values, doc)

    def _literal(self, values: tuple[Any, ...], context: str) -> GraphQLNamedType:
        if all(isinstance(v, str) and _enum_name(v) for v in values):
            return self._enum(f"{context}", {v: v for v in values}, None)
        if all(isinstance(v, bool) for v in values):
            return GraphQLBoolean
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return GraphQLInt
        if all(isinstance(v, str) for v in values):
            return GraphQLString
        return self._scalar("JSON")

    # -- the input side

    def input_of(
        self, annotation: Any, metadata: list[Any], context: str
    ) -> tuple[GraphQLNullableInputType, bool, Shape | None]:
        """(type, nullable, shape) of an annotation on the input side."""
        core, nullable, more = unwrap(annotation)
        metadata = [*metadata, *more]
        leaf = self._leaf(core, metadata, context)
        if leaf is not None:
            assert isinstance(leaf, GraphQLScalarType | GraphQLEnumType)
            return leaf, nullable, None
        if isinstance(core, type) and issubclass(core, BaseModel):
            found, shape = self.input_object(core, f"{self.prefix}{_type_name(core.__name__)}")
            return found, nullable, shape
        args = get_args(core)
        if get_origin(core) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return self._scalar("JSON"), nullable, None
        item, item_nullable, below = self.input_of(args[0] if args else Any, [], context)
        return GraphQLList(item if item_nullable else GraphQLNonNull(item)), nullable, below

    def input_object(
        self, model: type[BaseModel], stem: str
    ) -> tuple[GraphQLInputObjectType, Shape]:
        if model in self._inputs:
            return self._inputs[model]
        fields: dict[str, GraphQLInputField] = {}
        shape = Shape()
        made = GraphQLInputObjectType(f"{stem}Input", lambda: fields, description=_doc(model))
        self._claim(made)
        self._inputs[model] = (made, shape)
        for py_name, info in model.model_fields.items():
            wire = _input_wire(py_name, info)
            name = field_name(wire)
            if name in fields:
                raise Untypeable(f"two fields of {model.__name__} would be named {name}")
            gtype, nullable, below = self.input_of(
                info.annotation, list(info.metadata), f"{stem}{name[:1].upper()}{name[1:]}"
            )
            fields[name] = _input_field(gtype, nullable, info, wire)
            shape.fields[wire] = (name, below)
        return made, shape

    # -- the output side

    def output_of(
        self, annotation: Any, metadata: list[Any], context: str
    ) -> tuple[GraphQLNullableOutputType, bool]:
        core, nullable, more = unwrap(annotation)
        metadata = [*metadata, *more]
        leaf = self._leaf(core, metadata, context)
        if leaf is not None:
            assert isinstance(leaf, GraphQLScalarType | GraphQLEnumType)
            return leaf, nullable
        if isinstance(core, type) and issubclass(core, BaseModel):
            return self.output_object(core, f"{self.prefix}{_type_name(core.__name__)}"), nullable
        args = get_args(core)
        if get_origin(core) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return self._scalar("JSON"), nullable
        item, item_nullable = self.output_of(args[0] if args else Any, [], context)
        return GraphQLList(item if item_nullable else GraphQLNonNull(item)), nullable

    def output_object(self, model: type[BaseModel], name: str) -> GraphQLObjectType:
        if model in self._outputs:
            return self._outputs[model]
        fields: dict[str, GraphQLField] = {}
        made = GraphQLObjectType(name, lambda: fields, description=_doc(model))
        self._claim(made)
        self._outputs[model] = made
        declared: list[tuple[str, Any, list[Any], str | None]] = [
            (_output_wire(n, i), i.annotation, list(i.metadata), i.description)
            for n, i in model.model_fields.items()
            if not i.exclude
        ]
        declared += [
            (c.alias or n, c.return_type, [], c.description)
            for n, c in model.model_computed_fields.items()
        ]
        for wire, annotation, metadata, description in declared:
            gql = field_name(wire)
            if gql in fields:
                raise Untypeable(f"two fields of {model.__name__} would be named {gql}")
            gtype, nullable = self.output_of(
                annotation, metadata, f"{name}{gql[:1].upper()}{gql[1:]}"
            )
            dates = get_named_type(gtype) is self.schema.type_map.get("DateTime")
            fields[gql] = GraphQLField(
                gtype if nullable else GraphQLNonNull(gtype),
                description=description,
                resolve=_getter(wire, dates),
            )
        return made


def _enum_name(name: str) -> bool:
    return bool(_NAME.match(name)) and name not in _NOT_ENUM_NAMES


def _doc(model: type[BaseModel]) -> str | None:
    doc = model.__dict__.get("__doc__")
    return " ".join(doc.split()) if doc else None


def _input_wire(py_name: str, info: FieldInfo) -> str:
    """The name the model reads the field by (what `model_validate` wants)."""
    if isinstance(info.validation_alias, str):
        return info.validation_alias
    return info.alias or py_name


def _output_wire(py_name: str, info: FieldInfo) -> str:
    """The name the field has in a stored result (`model_dump(by_alias=True)`)."""
    return info.serialization_alias or info.alias or py_name


def _input_field(
    gtype: GraphQLNullableInputType, nullable: bool, info: FieldInfo, wire: str
) -> GraphQLInputField:
    """A model field as an input field: `T!` when required, `T! = d` with a default GraphQL
    can spell (the model's own default otherwise applies when the field is left out)."""
    default = _default(info)
    if default is not _NO_DEFAULT and default is not None:
        typed = gtype if nullable else GraphQLNonNull(gtype)
        try:
            spelled = ast_from_value(default, typed) is not None
        except (GraphQLError, TypeError, ValueError):
            spelled = False
        if spelled:
            return GraphQLInputField(
                typed, default_value=default, description=info.description, out_name=wire
            )
        default = _NO_DEFAULT
    if default is None:
        return GraphQLInputField(
            gtype, default_value=None, description=info.description, out_name=wire
        )
    required = info.is_required() and not nullable
    return GraphQLInputField(
        GraphQLNonNull(gtype) if required else gtype, description=info.description, out_name=wire
    )


def _getter(wire: str, dates: bool) -> Callable[[Any, GraphQLResolveInfo[Any]], Any]:
    def get(source: Any, _info: GraphQLResolveInfo[Any]) -> Any:
        value = source.get(wire) if isinstance(source, dict) else None
        return _datetimes(value) if dates else value

    return get


def _datetimes(value: Any) -> Any:
    """Stored results hold datetimes as ISO strings; the DateTime scalar serializes datetimes."""
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, list):
        return [_datetimes(v) for v in value]
    return value
