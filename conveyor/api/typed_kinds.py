"""Typed GraphQL per job kind, generated from the kind's pydantic models when the schema is
built (ADR-0020).

For a kind `reports.generate` with input model `GenerateReport`, whose handler returns a
pydantic model:

    input ReportsGenerateInput { accountId: Int!  months: Int! = 12 }
    submitReportsGenerate(input: ReportsGenerateInput!, options: SubmitOptions): SubmitJobResult!
    type ReportsGenerateResult { rows: Int! }
    Job.reportsGenerateResult: ReportsGenerateResult     (null for jobs of other kinds)

The types are `api.model_types`'. The model stays the validator: a typed mutation runs the
same submit service as `submitJob`, and its field errors name the fields as the client wrote
them (`["input", "accountId"]`, `["options", "maxAttempts"]`).

These are graphql-core types added to the schema strawberry built: they exist per registry
(the kinds one process loaded), while strawberry's types are classes shared by every schema a
process builds, and `Job` could not get a field per schema otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_type_hints

from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLUnionType,
    assert_valid_schema,
)
from pydantic import BaseModel, ValidationError

from conveyor.api import guard, resolvers
from conveyor.api import types as t
from conveyor.api import user_errors as ue
from conveyor.api.model_types import Builder, Shape, Untypeable, client_path, pascal, unwrap
from conveyor.domain import errors
from conveyor.domain import states as st
from conveyor.kinds.registry import JobKind, Registry
from conveyor.kinds.workflows import Workflow
from conveyor.services import submit, workflows

log = logging.getLogger(__name__)


def mutation_name(kind_name: str) -> str:
    return f"submit{pascal(kind_name)}"


def workflow_mutation_name(workflow_name: str) -> str:
    return f"submitWorkflow{pascal(workflow_name)}"


def result_field_name(kind_name: str) -> str:
    stem = pascal(kind_name)
    return f"{stem[:1].lower()}{stem[1:]}Result"


def result_model(kind: JobKind) -> type[BaseModel] | None:
    """The pydantic model the kind's handler is annotated to return, if it is one."""
    try:
        returned = get_type_hints(kind.handler).get("return")
    except Exception:  # an annotation that does not resolve: no typed result
        return None
    core, _, _ = unwrap(returned)
    return core if isinstance(core, type) and issubclass(core, BaseModel) else None


# -- the mutations and the result fields


def _jsonable(value: Any) -> Any:
    """The coerced input as a JSON client would have sent it (datetimes as ISO strings)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    return value  # a naive datetime is left for the service to refuse (ADR-0017)


def _request(kind_name: str, payload: Any, options: dict[str, Any] | None) -> submit.SubmitRequest:
    o = options or {}
    priority = o.get("priority")
    return submit.SubmitRequest(
        kind=kind_name,
        payload=payload,
        idempotency_key=o.get("idempotencyKey"),
        run_at=o.get("runAt"),
        priority=st.Priority(priority) if priority is not None else st.Priority.NORMAL,
        max_attempts=o.get("maxAttempts"),
        timeout_seconds=o.get("timeoutSeconds"),
        backoff_base_seconds=o.get("backoffBaseSeconds"),
        backoff_cap_seconds=o.get("backoffCapSeconds"),
    )


def _as_written(shape: Shape | None, error: errors.InvalidInput) -> errors.InvalidInput:
    """The service's paths (`payload...`, `maxAttempts`) as the typed mutation's arguments."""
    found: list[errors.FieldError] = []
    for f in error.field_errors:
        if f.path[:1] == ("payload",):
            path = ("input", *client_path(shape, f.path[1:]))
        else:
            path = ("options", *f.path)
        found.append(errors.FieldError(path, f.message))
    return errors.InvalidInput(error.message, found)


def _submitter(kind_name: str, shape: Shape | None) -> Callable[..., Awaitable[object]]:
    async def resolve(
        _root: object,
        info: GraphQLResolveInfo[Any],
        input: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> object:
        context = info.context
        request = _request(kind_name, _jsonable(input or {}), options)
        (result,) = await submit.submit_many(context.deps, context.principal, [request])
        if isinstance(result, errors.InvalidInput):
            result = _as_written(shape, result)
        return resolvers.submit_result(result)

    return resolve


def _result_resolver(
    kind_name: str, model: type[BaseModel]
) -> Callable[[Any, GraphQLResolveInfo[Any]], Any]:
    def resolve(job: Any, _info: GraphQLResolveInfo[Any]) -> Any:
        if job.kind != kind_name or job.result is None:
            return None
        try:
            return model.model_validate(job.result).model_dump(mode="json", by_alias=True)
        except ValidationError:  # stored by a version of the kind with another model
            return None

    return resolve


@dataclass(frozen=True)
class Typed:
    """What one kind added to the schema."""

    kind: str
    mutation: str
    created: dict[str, GraphQLNamedType]
    mutation_field: GraphQLField
    result_field: tuple[str, GraphQLField] | None


def _typed_mutation(
    schema: GraphQLSchema,
    builder: Builder,
    model: type[BaseModel],
    *,
    options: str,
    answer: str,
    resolver: Callable[[Shape | None], Callable[..., Awaitable[object]]],
    description: str,
) -> GraphQLField:
    """`(input: <model as an input type>!, options: <options>) -> <answer>!`; no `input`
    argument for a model without fields. `resolver(shape)` makes the resolve function."""
    args: dict[str, GraphQLArgument] = {}
    shape: Shape | None = None
    if model.model_fields:
        made, shape = builder.input_object(model, builder.prefix)
        args["input"] = GraphQLArgument(GraphQLNonNull(made))
    options_type = schema.type_map[options]
    assert isinstance(options_type, GraphQLInputObjectType)
    args["options"] = GraphQLArgument(options_type)
    answer_type = schema.type_map[answer]
    assert isinstance(answer_type, GraphQLUnionType)
    return GraphQLField(
        GraphQLNonNull(answer_type),
        args=args,
        resolve=resolver(shape),
        description=description.strip(),
        extensions={"metadata": guard.SERVICE_CHECKS},
    )


def _type_kind(schema: GraphQLSchema, kind: JobKind) -> Typed:
    stem = pascal(kind.name)
    builder = Builder(schema, stem)
    mutation = _typed_mutation(
        schema,
        builder,
        kind.input_model,
        options="SubmitOptions",
        answer="SubmitJobResult",
        resolver=lambda shape: _submitter(kind.name, shape),
        description=f"Submit a `{kind.name}` job (queue `{kind.queue}`). {kind.description}",
    )
    result: tuple[str, GraphQLField] | None = None
    model = result_model(kind)
    if model is not None:
        made_result = builder.output_object(model, f"{stem}Result")
        result = (
            result_field_name(kind.name),
            GraphQLField(
                made_result,
                resolve=_result_resolver(kind.name, model),
                description=(
                    f"The result of a SUCCEEDED `{kind.name}` job, typed. Null for other kinds, "
                    "for jobs without a result, and for results the kind's model no longer "
                    "reads (`result` keeps the stored JSON)."
                ),
            ),
        )
    return Typed(kind.name, mutation_name(kind.name), builder.created, mutation, result)


def _workflow_submitter(name: str, shape: Shape | None) -> Callable[..., Awaitable[object]]:
    async def resolve(
        _root: object,
        info: GraphQLResolveInfo[Any],
        input: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> object:
        context = info.context
        key = (options or {}).get("idempotencyKey")
        request = workflows.SubmitRunRequest(name, _jsonable(input or {}), key)
        try:
            run = await workflows.submit(context.deps, context.principal, request)
        except errors.InvalidInput as exc:
            return ue.user_error(_workflow_as_written(shape, exc))
        except (errors.UnknownWorkflow, errors.Conflict, errors.PolicyDenied) as exc:
            return ue.user_error(exc)
        return t.WorkflowRun.from_domain(run)

    return resolve


def _workflow_as_written(shape: Shape | None, error: errors.InvalidInput) -> errors.InvalidInput:
    """`submitWorkflow`'s paths (`input...`, `idempotencyKey`) as the typed mutation's."""
    found: list[errors.FieldError] = []
    for f in error.field_errors:
        if f.path[:1] == ("input",):
            path = ("input", *client_path(shape, f.path[1:]))
        else:
            path = ("options", *f.path)
        found.append(errors.FieldError(path, f.message))
    return errors.InvalidInput(error.message, found)


def _type_workflow(schema: GraphQLSchema, wf: Workflow) -> Typed:
    """`submitWorkflow<Name>(input: <Name>WorkflowInput!, options: WorkflowOptions)`: the
    workflow's input model as a GraphQL input type, answered as `submitWorkflow` is."""
    builder = Builder(schema, f"{pascal(wf.name)}Workflow")
    mutation = _typed_mutation(
        schema,
        builder,
        wf.input_model,
        options="WorkflowOptions",
        answer="SubmitWorkflowResult",
        resolver=lambda shape: _workflow_submitter(wf.name, shape),
        description=f"Start a `{wf.name}` run. {wf.description}",
    )
    return Typed(wf.name, workflow_mutation_name(wf.name), builder.created, mutation, None)


def install(schema: GraphQLSchema, registry: Registry) -> list[Typed]:
    """Add every kind's typed mutation, input and result types, and every workflow's typed
    mutation and input type, to `schema` (before anything executes on it). A kind or workflow
    whose model GraphQL cannot name is left to `submitJob` / `submitWorkflow`, logged."""
    mutation_type = schema.mutation_type
    job_type = schema.type_map["Job"]
    assert mutation_type is not None
    assert isinstance(job_type, GraphQLObjectType)
    added: list[Typed] = []
    for kind in registry.all():
        try:
            typed = _type_kind(schema, kind)
            if typed.mutation in mutation_type.fields:
                raise Untypeable(f"the mutation name {typed.mutation} is taken")
            if typed.result_field and typed.result_field[0] in job_type.fields:
                raise Untypeable(f"the field name Job.{typed.result_field[0]} is taken")
        except Untypeable as exc:
            log.warning(
                "job kind %s gets no typed mutation (%s); clients submit it with submitJob",
                kind.name,
                exc,
                extra={"kind": kind.name},
            )
            continue
        for name, named in typed.created.items():
            schema.type_map.setdefault(name, named)
        mutation_type.fields[typed.mutation] = typed.mutation_field
        if typed.result_field is not None:
            job_type.fields[typed.result_field[0]] = typed.result_field[1]
        added.append(typed)
    for wf in registry.workflows.all():
        try:
            typed = _type_workflow(schema, wf)
            if typed.mutation in mutation_type.fields:
                raise Untypeable(f"the mutation name {typed.mutation} is taken")
        except Untypeable as exc:
            log.warning(
                "workflow %s gets no typed mutation (%s); clients submit it with submitWorkflow",
                wf.name,
                exc,
                extra={"workflow": wf.name},
            )
            continue
        for name, named in typed.created.items():
            schema.type_map.setdefault(name, named)
        mutation_type.fields[typed.mutation] = typed.mutation_field
        added.append(typed)
    schema._validation_errors = None  # the schema changed: validate it again
    assert_valid_schema(schema)
    return added
