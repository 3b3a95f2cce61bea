"""The schema: roots, and the extensions every operation runs with."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types.graphql import OperationType

from app.api.errors import ErrorPolicy
from app.api.resolvers import Mutation, Query, Subscription


class ConveyorSchema(strawberry.Schema):
    """Routes shareable subscriptions (see `app.api.feeds`) to the process's shared feeds."""

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> Any:
        feeds = getattr(context_value, "feeds", None)
        if feeds is not None and query is not None:
            document = feeds.shareable(query, operation_name)
            if document is not None:
                return feeds.join(document, query, variable_values, operation_name, context_value)
        return await super().stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types,
        )


schema = ConveyorSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        # Clients send the same few documents over and over: parse and validate each once.
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        ErrorPolicy,
    ],
)


def sdl() -> str:
    return schema.as_str() + "\n"
