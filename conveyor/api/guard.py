"""Every argument a resolver receives has passed `domain.storable` (ADR-0017).

`install` wraps, once, the resolver of every field that takes arguments (and, on the
subscription root, the function that opens the event stream) with a check of the coerced
arguments: input objects, lists and JSON scalars at any depth, whether they were written inline
or sent as variables. Being part of the schema, it covers queries, mutations and subscriptions
over HTTP and WebSocket and the shared live feeds alike, and fields added later. A field
without arguments is left as it is and costs nothing.

Not a SchemaExtension `resolve` hook: that runs for every field of every object in a response,
and graphql-core opens a subscription's stream without middleware, so it would see a
subscription's arguments only after the stream had started.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLUnionType,
    default_field_resolver,
    get_nullable_type,
)

from conveyor.api import user_errors as ue
from conveyor.domain import errors, storable

#: `metadata` of a field whose service checks its own input with `domain.storable` (the
#: submit path: it answers each item of a batch on its own, and walks a payload once).
SERVICE_CHECKS: dict[str, object] = {"storable": "checked by the service"}


def _refusal(found: storable.Unstorable) -> errors.InvalidInput:
    where = ".".join(found.path)
    return errors.InvalidInput(
        f"{where} {found.reason}", [errors.FieldError(found.path, found.reason)]
    )


def _answers_invalid_input(field: GraphQLField) -> bool:
    """Whether the field's result can be an `InvalidInput` (the refusal is then data)."""
    result = get_nullable_type(field.type)
    return isinstance(result, GraphQLUnionType) and any(
        member.name == "InvalidInput" for member in result.types
    )


def _checked_by_service(field: GraphQLField) -> bool:
    """Marked with `SERVICE_CHECKS`: a strawberry field's `metadata`, or the `metadata`
    extension of a field built with graphql-core (the typed mutations, `api.typed_kinds`)."""
    extensions = field.extensions or {}
    definition = extensions.get("strawberry-definition")
    metadata = getattr(definition, "metadata", None) or extensions.get("metadata") or {}
    return all(metadata.get(k) == v for k, v in SERVICE_CHECKS.items())


def _guard(resolve: Callable[..., Any], *, as_data: bool) -> Callable[..., Any]:
    def guarded(source: Any, info: GraphQLResolveInfo[Any], **kwargs: Any) -> Any:
        found = storable.find_unstorable(kwargs)
        if found is None:
            return resolve(source, info, **kwargs)
        if as_data:
            return ue.user_error(_refusal(found))
        raise _refusal(found)

    return guarded


def install(schema: GraphQLSchema) -> None:
    """Guard every field of `schema` that takes arguments. Call once, on a new schema."""
    subscription = schema.subscription_type
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for field in named.fields.values():
            if not field.args or _checked_by_service(field):
                continue
            if named is subscription:
                # The stream is opened once with the arguments; each event is not re-checked.
                if field.subscribe is not None:
                    field.subscribe = _guard(field.subscribe, as_data=False)
                continue
            field.resolve = _guard(
                field.resolve or default_field_resolver, as_data=_answers_invalid_input(field)
            )
