"""Execution: graphql-core's executor with a fast path for objects whose selected fields are
all plain leaves.

A page of 50 jobs asks for about 750 fields, nearly all of them attributes (`id`, `status`,
`createdAt`) that strawberry resolves with `getattr`. graphql-core executes each one on its
own: a `Path`, a resolve-info object, the resolver through strawberry's wrappers, an
awaitable check, `complete_value`'s type dispatch. Profiled, that was most of a page's CPU
(about 8 of 10 ms with the SQL under 1 ms; `bench.conveyor_queries`).

For a selection set in which every field is a plain leaf (no arguments, no resolver of its
own, a scalar or enum type, nothing deferred, no middleware), the result of an object is
`{key: coerce(getattr(source, attribute))}`; `PlainLeaves` computes exactly that. Anything
unusual (a null in a non-null field, a value the scalar refuses, an exception, an awaitable)
abandons the shortcut for that object and runs graphql-core's own path, which produces the
located error it always did: plain leaves are attribute reads, so reading them again changes
nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
)
from graphql.execution.collect_fields import GroupedFieldSet
from graphql.pyutils import Path
from graphql.type.introspection import TypeNameMetaFieldDef
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

#: One field of a plan: response key, attribute (None: `__typename`), coercion, non-null.
_Step = tuple[str, str | None, Callable[[Any], Any], bool]
_NO_PLAN: tuple[_Step, ...] = ()
#: Values of these types are neither errors nor awaitables: no need to ask.
_PLAIN = frozenset({str, int, float, bool, datetime, date, uuid.UUID, dict, list})


class _Unplanned(Exception):
    """The shortcut does not apply to this object: take graphql-core's path."""


class PlainLeaves(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context, with objects of plain leaves completed in one loop."""

    _plans: dict[int, tuple[GroupedFieldSet, tuple[_Step, ...]]]

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        plans = self.__dict__.get("_plans")
        if plans is None:
            plans = self._plans = {}
        entry = plans.get(id(grouped_field_set))
        if entry is None or entry[0] is not grouped_field_set:
            # The grouped field set is kept in the entry: its id cannot be reused meanwhile.
            entry = plans[id(grouped_field_set)] = (
                grouped_field_set,
                self._plan(parent_type, grouped_field_set),
            )
        steps = entry[1]
        if steps:
            try:
                return _complete(steps, parent_type.name, source_value)
            except _Unplanned:
                pass
        return super().execute_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    def _plan(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> tuple[_Step, ...]:
        # strawberry always passes a manager; it holds the extensions that wrap resolvers.
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            return _NO_PLAN
        steps: list[_Step] = []
        for response_name, details in grouped_field_set.items():
            node = details[0].node
            if node.selection_set or node.arguments or node.directives:
                return _NO_PLAN
            if any(d.defer_usage is not None or d.fragment_variable_values for d in details):
                return _NO_PLAN
            name = node.name.value
            field_def = self.schema.get_field(parent_type, name)
            if field_def is None:
                return _NO_PLAN
            if field_def is TypeNameMetaFieldDef:
                steps.append((response_name, None, str, True))
                continue
            resolve = field_def.resolve
            definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if (
                resolve is None
                or not getattr(resolve, "_is_default", False)
                or not isinstance(definition, StrawberryField)
                or not definition.is_basic_field
                or field_def.args
            ):
                return _NO_PLAN
            field_type = field_def.type
            non_null = isinstance(field_type, GraphQLNonNull)
            leaf = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
            if not isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
                return _NO_PLAN
            coerce = leaf.coerce_output_value
            steps.append((response_name, definition.python_name, coerce, non_null))
        return tuple(steps)


def _complete(steps: tuple[_Step, ...], type_name: str, source: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, attribute, coerce, non_null in steps:
        if attribute is None:
            result[key] = type_name
            continue
        try:
            value = getattr(source, attribute)
        except Exception as exc:
            raise _Unplanned from exc
        if value is None:
            if non_null:
                raise _Unplanned
            result[key] = None
            continue
        if type(value) not in _PLAIN and (
            isinstance(value, BaseException) or hasattr(value, "__await__")
        ):
            raise _Unplanned
        try:
            coerced = coerce(value)
        except Exception as exc:
            raise _Unplanned from exc
        if coerced is None or coerced is Undefined:
            raise _Unplanned
        result[key] = coerced
    return result
