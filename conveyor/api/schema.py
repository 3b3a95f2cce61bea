"""The schema: roots, and the extensions every operation runs with."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
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
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from conveyor.api import cost, guard, inputs, typed_kinds, warnings
from conveyor.api.errors import ErrorPolicy
from conveyor.api.execution import PlainLeaves
from conveyor.api.flow import FlowMutation, FlowQuery
from conveyor.api.resolvers import Mutation, Query, Subscription
from conveyor.api.security import MAX_LOG_PAGE, SecurityMutation, SecurityQuery
from conveyor.api.types import MAX_EVENTS_PAGE, SubmitOptions, WorkflowOptions
from conveyor.api.workflow_resolvers import (
    WorkflowMutation,
    WorkflowQuery,
    WorkflowSubscription,
)
from conveyor.kinds.registry import Registry
from conveyor.services.jobs import MAX_PAGE
from conveyor.settings import Settings

#: The largest `first` of each paginated field (what a `first: $variable` may ask for).
PAGE_LIMITS = {
    ("Query", "jobs"): MAX_PAGE,
    ("Query", "auditLog"): MAX_LOG_PAGE,
    ("Query", "policyDecisions"): MAX_LOG_PAGE,
    ("Job", "events"): MAX_EVENTS_PAGE,
    ("Query", "workflowRuns"): MAX_PAGE,
    ("WorkflowStep", "jobs"): MAX_EVENTS_PAGE,
}
#: Fields that read PostgreSQL once per parent object (no DataLoader) cost this much more: a
#: round trip takes about as long as executing a hundred fields.
FIELD_COSTS = {
    ("Job", "events"): 100,
    ("Job", "waitingReason"): 100,
    ("Job", "run"): 100,
    ("Job", "step"): 100,
    ("WorkflowRun", "steps"): 100,
    ("WorkflowRun", "progress"): 100,
    ("WorkflowStep", "job"): 100,
    ("WorkflowStep", "jobs"): 100,
    ("WorkflowStep", "counts"): 100,
}

RootQuery = merge_types("Query", (Query, SecurityQuery, FlowQuery, WorkflowQuery))
RootMutation = merge_types("Mutation", (Mutation, SecurityMutation, FlowMutation, WorkflowMutation))
RootSubscription = merge_types("Subscription", (Subscription, WorkflowSubscription))


class ConveyorSchema(strawberry.Schema):
    """Routes shareable subscriptions (see `conveyor.api.feeds`) to the process's shared feeds,
    which apply the same limits (`validation_rules`, `max_tokens`) as every operation."""

    validation_rules: list[type[ASTValidationRule]]
    max_tokens: int

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

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Nothing: strawberry would log every error at ERROR, a client's typo included, with
        a traceback. `errors.public` logs each error once, at the level it deserves."""


def create_schema(
    settings: Settings | None = None, registry: Registry | None = None
) -> ConveyorSchema:
    """The schema with the hostile-request limits of `settings` (defaults when None) and a
    typed mutation, input and result types for every kind of `registry` (ADR-0020; none
    when None): the kinds this process loaded."""
    s = settings or Settings.model_construct()
    # The rule classes are built once: the validation cache is keyed by them (strawberry's
    # QueryDepthLimiter / MaxAliasesLimiter would build new ones per request and defeat it).
    rules: list[type[ASTValidationRule]] = [
        query_depth_limiter.create_validator(s.graphql_max_depth, None),
        max_aliases.create_validator(s.graphql_max_aliases),
        cost.create_validator(s.graphql_max_cost, page_limits=PAGE_LIMITS, field_costs=FIELD_COSTS),
    ]
    if not s.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    extensions: list[type[SchemaExtension] | object] = [
        # Limits apply before any resolver runs: the token limit inside the parser (which the
        # parser cache honours), depth, aliases, cost and introspection as validation rules.
        lambda: MaxTokensLimiter(max_token_count=s.graphql_max_tokens),
        lambda: AddValidationRules(rules),
        # Clients send the same few documents over and over: parse and validate each once.
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        ErrorPolicy,
        warnings.Warnings,
    ]
    built = ConveyorSchema(
        query=RootQuery,
        mutation=RootMutation,
        subscription=RootSubscription,
        extensions=extensions,  # type: ignore[arg-type]
        types=[SubmitOptions, WorkflowOptions],
        execution_context_class=PlainLeaves,
    )
    typed_kinds.install(built._schema, registry or Registry())
    # Arguments PostgreSQL cannot store are refused before any resolver sees them (ADR-0017).
    guard.install(built._schema)
    # Input objects of plain values are built in one step, not converted field by field.
    inputs.install(built._schema)
    built.validation_rules = rules
    built.max_tokens = s.graphql_max_tokens
    return built


def sdl(registry: Registry) -> str:
    """The schema as SDL, for the kinds of `registry`."""
    return create_schema(registry=registry).as_str() + "\n"
