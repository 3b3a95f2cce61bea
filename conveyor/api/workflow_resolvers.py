"""Workflow roots: definitions, runs, submit / cancel / retry, and the run's event stream
(ADR-0023). The typed `submitWorkflow<Name>` per workflow is `api.typed_kinds`'."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Any

import strawberry

from conveyor.api import cursors, guard
from conveyor.api import types as t
from conveyor.api import user_errors as ue
from conveyor.api.context import Context
from conveyor.domain import errors
from conveyor.services import workflows

Info = strawberry.Info[Context, None]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _run_result(run: Any) -> Any:
    return t.WorkflowRun.from_domain(run)


async def _submit(info: Info, req: workflows.SubmitRunRequest) -> t.SubmitWorkflowResult:
    try:
        run = await workflows.submit(info.context.deps, info.context.principal, req)
    except (errors.InvalidInput, errors.UnknownWorkflow, errors.Conflict, errors.PolicyDenied) as e:
        return ue.user_error(e)  # type: ignore[return-value]
    return t.WorkflowRun.from_domain(run)


@strawberry.type
class WorkflowQuery:
    @strawberry.field(description="Every workflow this deployment runs: steps and edges.")
    def workflows(self, info: Info) -> list[t.Workflow]:
        return [t.Workflow.from_domain(w) for w in info.context.deps.registry.workflows.all()]

    @strawberry.field(description="A workflow run, or null when it does not exist or is not yours.")
    async def workflow_run(self, info: Info, id: strawberry.ID) -> t.WorkflowRun | None:
        run_id = _uuid(id)
        if run_id is None:
            return None
        found = await workflows.get(info.context.deps, info.context.principal, run_id)
        return t.WorkflowRun.from_domain(found) if found else None

    @strawberry.field(description="Workflow runs, newest first, keyset-paginated.")
    async def workflow_runs(
        self,
        info: Info,
        filter: t.WorkflowRunFilter | None = None,
        first: int | None = t.DEFAULT_PAGE,
        after: str | None = None,
    ) -> t.WorkflowRunConnection:
        found, has_next = await workflows.page(
            info.context.deps,
            info.context.principal,
            statuses=tuple(filter.status or ()) if filter else (),
            workflows=tuple(filter.workflow or ()) if filter else (),
            first=t.DEFAULT_PAGE if first is None else first,
            after=cursors.job_position(after),
        )
        edges = [
            t.WorkflowRunEdge(
                cursor=cursors.of_position(r.created_at, r.id), node=t.WorkflowRun.from_domain(r)
            )
            for r in found
        ]
        return t.WorkflowRunConnection(
            edges=edges,
            page_info=t.PageInfo(
                has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None
            ),
        )


@strawberry.type
class WorkflowMutation:
    @strawberry.mutation(
        description=(
            "Validate and start a workflow run: its steps, edges and root jobs in one "
            "transaction. A reused idempotency key returns the same run."
        ),
        metadata=guard.SERVICE_CHECKS,
    )
    async def submit_workflow(
        self, info: Info, input: t.SubmitWorkflowInput
    ) -> t.SubmitWorkflowResult:
        return await _submit(
            info,
            workflows.SubmitRunRequest(input.workflow, input.input, input.idempotency_key),
        )

    @strawberry.mutation(
        description="Cancel a run: its waiting steps now, its running jobs cooperatively."
    )
    async def cancel_workflow_run(self, info: Info, id: strawberry.ID) -> t.CancelWorkflowRunResult:
        run_id = _uuid(id)
        try:
            if run_id is None:
                raise errors.NotFound(str(id))
            run = await workflows.cancel(info.context.deps, info.context.principal, run_id)
        except (errors.NotFound, errors.InvalidState) as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return t.WorkflowRun.from_domain(run)

    @strawberry.mutation(
        description=(
            "Run a FAILED or CANCELLED run again from the steps that did not succeed "
            "(a map: only its failed items). Succeeded steps are not run again."
        )
    )
    async def retry_workflow_run(self, info: Info, id: strawberry.ID) -> t.RetryWorkflowRunResult:
        run_id = _uuid(id)
        try:
            if run_id is None:
                raise errors.NotFound(str(id))
            run = await workflows.retry(info.context.deps, info.context.principal, run_id)
        except (errors.NotFound, errors.InvalidState, errors.PolicyDenied) as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return t.WorkflowRun.from_domain(run)


@strawberry.type
class WorkflowSubscription:
    @strawberry.subscription(
        description=(
            "A run's events in seq order (1, 2, 3...), without gaps or duplicates. Without "
            "`after`: a SNAPSHOT of the run (carrying its latest seq), then every later event; "
            "with `after`: every stored event with seq > after, then live. Completes after the "
            "run's terminal event (SUCCEEDED, FAILED, CANCELLED)."
        )
    )
    async def workflow_events(
        self, info: Info, run_id: strawberry.ID, after: int | None = None
    ) -> AsyncGenerator[t.WorkflowEvent, None]:
        parsed = _uuid(run_id)
        if parsed is None:
            raise errors.NotFound(str(run_id))
        ctx = info.context
        async for event in workflows.follow(ctx.deps, ctx.hub.runs, ctx.principal, parsed, after):
            yield t.WorkflowEvent.from_domain(event)
