"""Query, Mutation and Subscription roots."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Sequence

import strawberry

from conveyor.api import cursors, guard, sockets, warnings
from conveyor.api import types as t
from conveyor.api import user_errors as ue
from conveyor.api.context import Context
from conveyor.domain import errors, models
from conveyor.domain import states as st
from conveyor.services import control, live, ops, submit
from conveyor.services import jobs as jobs_service

Info = strawberry.Info[Context, None]


def _uuid(value: str) -> uuid.UUID | None:
    """An id that is not a UUID names no job: NotFound, like any other unknown id."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _filter_args(flt: t.JobFilter | None) -> jobs_service.JobFilterArgs:
    if flt is None:
        return jobs_service.JobFilterArgs()
    return jobs_service.JobFilterArgs(
        statuses=tuple(flt.status or ()), kinds=tuple(flt.kind or ()), queue=flt.queue
    )


def _request(input: t.SubmitJobInput) -> submit.SubmitRequest:
    return submit.SubmitRequest(
        kind=input.kind,
        payload=input.payload,
        idempotency_key=input.idempotency_key,
        run_at=input.run_at,
        priority=input.priority if input.priority is not None else st.Priority.NORMAL,
        max_attempts=input.max_attempts,
        timeout_seconds=input.timeout_seconds,
        backoff_base_seconds=input.backoff_base_seconds,
        backoff_cap_seconds=input.backoff_cap_seconds,
    )


def submit_result(result: object) -> t.SubmitJobResult:
    """A submit's outcome as a `SubmitJobResult` member (also for the typed mutations)."""
    if isinstance(result, errors.UserError):
        return ue.user_error(result)  # type: ignore[return-value]
    assert isinstance(result, models.Job)
    return t.Job.from_domain(result)


async def _warn_unrunnable(info: Info, results: Sequence[object]) -> None:
    """`extensions.warnings` for submitted jobs no live worker will run now (ADR-0019)."""
    jobs = [r for r in results if isinstance(r, models.Job)]
    warnings.add(*await ops.unrunnable(info.context.deps, jobs))


@strawberry.type
class Query:
    @strawberry.field(description="The caller.")
    def me(self, info: Info) -> t.Principal:
        return t.Principal.from_domain(info.context.principal)

    @strawberry.field(description="A job, or null when it does not exist or is not yours.")
    async def job(self, info: Info, id: strawberry.ID) -> t.Job | None:
        job_id = _uuid(id)
        if job_id is None:
            return None
        found = await jobs_service.get(info.context.deps, info.context.principal, job_id)
        return t.Job.from_domain(found) if found else None

    @strawberry.field(description="Jobs, newest first, keyset-paginated (Relay connection).")
    async def jobs(
        self,
        info: Info,
        filter: t.JobFilter | None = None,
        first: int | None = t.DEFAULT_PAGE,
        after: str | None = None,
    ) -> t.JobConnection:
        found, has_next, flt = await jobs_service.page(
            info.context.deps,
            info.context.principal,
            _filter_args(filter),
            first=t.DEFAULT_PAGE if first is None else first,
            after=cursors.job_position(after),
        )
        edges = [t.JobEdge(cursor=cursors.of_job(j), node=t.Job.from_domain(j)) for j in found]
        return t.JobConnection(
            edges=edges,
            page_info=t.PageInfo(
                has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None
            ),
            count_filter=flt,
        )

    @strawberry.field(description="Every job kind this deployment runs.")
    def job_kinds(self, info: Info) -> list[t.JobKind]:
        return [t.JobKind.from_domain(k) for k in info.context.deps.registry.all()]

    @strawberry.field(description="Per queue: waiting, scheduled, running, failed, throughput.")
    async def queues(self, info: Info) -> list[t.QueueStats]:
        found = await ops.queue_stats(info.context.deps, info.context.principal)
        return [t.QueueStats.from_domain(q) for q in found]

    @strawberry.field(description="Live workers (stopped or silent ones drop out).")
    async def workers(self, info: Info) -> list[t.Worker]:
        ctx = info.context
        return [t.Worker.from_domain(w) for w in await ops.workers(ctx.deps, ctx.principal)]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Validate and enqueue a job.", metadata=guard.SERVICE_CHECKS)
    async def submit_job(self, info: Info, input: t.SubmitJobInput) -> t.SubmitJobResult:
        results = await submit.submit_many(
            info.context.deps, info.context.principal, [_request(input)]
        )
        await _warn_unrunnable(info, results)
        return submit_result(results[0])

    @strawberry.mutation(
        description=(
            f"Submit up to {submit.MAX_BATCH} jobs in one round trip: a result per input, "
            "in order. Invalid inputs are reported and stored nowhere."
        ),
        metadata=guard.SERVICE_CHECKS,
    )
    async def submit_jobs(
        self, info: Info, inputs: list[t.SubmitJobInput]
    ) -> list[t.SubmitJobResult]:
        results = await submit.submit_many(
            info.context.deps, info.context.principal, [_request(i) for i in inputs]
        )
        await _warn_unrunnable(info, results)
        return [submit_result(r) for r in results]

    @strawberry.mutation(description="Cancel a waiting job now, or stop a running one.")
    async def cancel_job(self, info: Info, id: strawberry.ID) -> t.CancelJobResult:
        job_id = _uuid(id)
        try:
            if job_id is None:
                raise errors.NotFound(str(id))
            job = await control.cancel(info.context.deps, info.context.principal, job_id)
        except (errors.NotFound, errors.InvalidState) as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return t.Job.from_domain(job)

    @strawberry.mutation(
        description="Send a FAILED or CANCELLED job again, with a fresh attempt budget."
    )
    async def retry_job(self, info: Info, id: strawberry.ID) -> t.RetryJobResult:
        job_id = _uuid(id)
        try:
            if job_id is None:
                raise errors.NotFound(str(id))
            job = await control.retry(info.context.deps, info.context.principal, job_id)
        except (errors.NotFound, errors.InvalidState, errors.PolicyDenied) as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return t.Job.from_domain(job)

    @strawberry.mutation(description="Cancel every visible job matching the filter.")
    async def cancel_jobs(self, info: Info, filter: t.JobFilter) -> t.BulkResult:
        count = await control.cancel_matching(
            info.context.deps, info.context.principal, _filter_args(filter)
        )
        return t.BulkResult(count=count)

    @strawberry.mutation(
        description="Retry every visible FAILED or CANCELLED job matching the filter."
    )
    async def retry_jobs(self, info: Info, filter: t.JobFilter) -> t.BulkResult:
        count = await control.retry_matching(
            info.context.deps, info.context.principal, _filter_args(filter)
        )
        return t.BulkResult(count=count)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "A job's events in seq order, without gaps or duplicates. Without `after`: first a "
            "SNAPSHOT of the current state (carrying the latest seq), then every later event. "
            "With `after`: every stored event with seq > after, then live. Completes after the "
            "terminal event."
        )
    )
    async def job_events(
        self, info: Info, job_id: strawberry.ID, after: int | None = None
    ) -> AsyncGenerator[t.JobEvent, None]:
        parsed = _uuid(job_id)
        if parsed is None:
            raise errors.NotFound(str(job_id))
        ctx = info.context
        async for event in live.follow_job(ctx.deps, ctx.hub, ctx.principal, parsed, after):
            yield t.JobEvent.from_domain(event)

    @strawberry.subscription(
        description=(
            "Every change of every visible job matching the filter (status matched against the "
            "status after the change). Progress is coalesced per job (latest within 100 ms); "
            "other changes are never dropped."
        )
    )
    async def job_updates(
        self,
        info: Info,
        filter: t.JobFilter | None = None,
    ) -> AsyncGenerator[t.JobUpdate, None]:
        ctx = info.context

        async for change in live.follow_updates(
            ctx.deps,
            ctx.hub,
            ctx.principal,
            _filter_args(filter),
            on_overflow=lambda: sockets.close_too_slow(ctx.request),
            internal=ctx.internal,
        ):
            yield t.JobUpdate.from_domain(change)

    @strawberry.subscription(description="Queue statistics every `interval` seconds (0.5 to 60).")
    async def queue_stats(
        self, info: Info, interval: float = 2.0
    ) -> AsyncGenerator[list[t.QueueStats], None]:
        if not 0.5 <= interval <= 60:
            raise errors.InvalidInput(
                "invalid interval", [errors.FieldError(("interval",), "must be between 0.5 and 60")]
            )
        ctx = info.context
        while True:
            found = await ops.queue_stats(ctx.deps, ctx.principal)
            yield [t.QueueStats.from_domain(q) for q in found]
            await asyncio.sleep(interval)
