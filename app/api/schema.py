"""The schema: roots, and the extensions every operation runs with."""

from __future__ import annotations

import strawberry
from strawberry.extensions import ParserCache, ValidationCache

from app.api.errors import ErrorPolicy
from app.api.resolvers import Mutation, Query, Subscription

schema = strawberry.Schema(
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
