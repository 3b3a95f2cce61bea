"""Input objects whose fields are all plain values, built in one step.

strawberry turns a GraphQL input value (a dict graphql-core has already coerced) into the
input class field by field: for every field of every object it converts the field's name,
resolves its type and dispatches on it, even when the value needs nothing (a string, a
number, an enum member, a JSON value). For `submitJobs` with a list of `SubmitJobInput` that
was a fifth of the API's CPU (py-spy, docs/benchmarks.md).

strawberry lets a type build its own value (`StrawberryObjectDefinition.from_input`, the hook
its pydantic integration uses). `install` gives that hook to every input type whose fields are
all scalars, enums or lists of them: the class is called with the values as they are (lists
copied, as strawberry copies them), fields the client left out set to None unless they have
a default, exactly as strawberry's own conversion does. Types with a `Maybe` field, a
`GlobalID`, a nested input object or a hook of their own keep strawberry's conversion.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
)
from strawberry.relay import GlobalID
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
)
from strawberry.types.field import StrawberryField

#: One field: GraphQL name, Python name, whether its value is a list (copied).
_Field = tuple[str, str, bool]


def install(schema: GraphQLSchema) -> int:
    """Give every plain input type of `schema` its one-step builder; how many got one."""
    count = 0
    for graphql_type in schema.type_map.values():
        if not isinstance(graphql_type, GraphQLInputObjectType):
            continue
        definition = (graphql_type.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if not isinstance(definition, StrawberryObjectDefinition):
            continue
        if definition.from_input is not None and not getattr(
            definition.from_input, "_conveyor_plain", False
        ):
            continue  # a hook of its own (strawberry.pydantic)
        plan = _plan(graphql_type)
        if plan is None:
            continue
        definition.from_input = _builder(*plan)
        count += 1
    return count


def _plan(
    graphql_type: GraphQLInputObjectType,
) -> tuple[tuple[_Field, ...], tuple[str, ...]] | None:
    fields: list[_Field] = []
    unset_is_none: list[str] = []
    for name, input_field in graphql_type.fields.items():
        field = (input_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if not isinstance(field, StrawberryField) or not _plain_strawberry(field.type):
            return None
        field_type = input_field.type
        if isinstance(field_type, GraphQLNonNull):
            field_type = field_type.of_type
        is_list = isinstance(field_type, GraphQLList)
        if is_list:
            field_type = field_type.of_type
            if isinstance(field_type, GraphQLNonNull):
                field_type = field_type.of_type
        if not isinstance(field_type, GraphQLScalarType | GraphQLEnumType):
            return None
        fields.append((name, field.python_name, is_list))
        if (
            field.default_value is dataclasses.MISSING
            and field.default_factory is dataclasses.MISSING
        ):
            unset_is_none.append(field.python_name)
    return tuple(fields), tuple(unset_is_none)


def _plain_strawberry(type_: Any) -> bool:
    """No `Maybe` (strawberry validates its nulls only for types without a hook) and no
    `GlobalID` (strawberry decodes it) anywhere in the field's type."""
    if isinstance(type_, StrawberryMaybe) or type_ is GlobalID:
        return False
    if isinstance(type_, StrawberryOptional | StrawberryList):
        return _plain_strawberry(type_.of_type)
    return True


def _builder(
    fields: tuple[_Field, ...], unset_is_none: tuple[str, ...]
) -> Callable[[type, Mapping[str, Any], Any], Any]:
    def build(cls: type, value: Mapping[str, Any], _context: Any) -> Any:
        kwargs: dict[str, Any] = dict.fromkeys(unset_is_none)
        for graphql_name, python_name, is_list in fields:
            if graphql_name in value:
                item = value[graphql_name]
                kwargs[python_name] = list(item) if is_list and item is not None else item
        return cls(**kwargs)

    build._conveyor_plain = True  # type: ignore[attr-defined]
    return build
