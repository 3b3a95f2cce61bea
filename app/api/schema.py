"""The schema: roots, and the extensions every operation runs with (limits from settings)."""

from __future__ import annotations

import strawberry
from graphql import ASTValidationRule
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
    max_aliases,
    query_depth_limiter,
)
from strawberry.tools import merge_types

from app.api.errors import ErrorPolicy
from app.api.resolvers import Mutation, Query, Subscription
from app.api.security import SecurityMutation, SecurityQuery
from app.settings import Settings

RootQuery = merge_types("Query", (Query, SecurityQuery))
RootMutation = merge_types("Mutation", (Mutation, SecurityMutation))


def create_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema with the hostile-request limits of `settings` (defaults when None)."""
    s = settings or Settings.model_construct()
    # The rule classes are built once: the validation cache is keyed by them (strawberry's
    # QueryDepthLimiter / MaxAliasesLimiter would build new ones per request and defeat it).
    rules: list[type[ASTValidationRule]] = [
        query_depth_limiter.create_validator(s.graphql_max_depth, None),
        max_aliases.create_validator(s.graphql_max_aliases),
    ]
    if not s.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    extensions: list[type[SchemaExtension] | object] = [
        # Limits apply before any resolver runs: the token limit inside the parser (which the
        # parser cache honours), depth, aliases and introspection as validation rules.
        lambda: MaxTokensLimiter(max_token_count=s.graphql_max_tokens),
        lambda: AddValidationRules(rules),
        # Clients send the same few documents over and over: parse and validate each once.
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        ErrorPolicy,
    ]
    return strawberry.Schema(
        query=RootQuery,
        mutation=RootMutation,
        subscription=Subscription,
        extensions=extensions,  # type: ignore[arg-type]
    )


schema = create_schema()


def sdl() -> str:
    return schema.as_str() + "\n"
