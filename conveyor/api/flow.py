"""GraphQL of schedules and flow control (ADR-0022): schedules, paused queues, run-time
concurrency limits. Merged into the Query and Mutation roots by `api.schema`.

Size (~500 lines): the types, queries and mutations of one area of the schema (schedules,
paused queues, limits), merged into the roots together.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from conveyor.api import types as t
from conveyor.api import user_errors as ue
from conveyor.api.context import Context
from conveyor.domain import errors
from conveyor.domain import schedules as sched
from conveyor.domain import states as st
from conveyor.services import limits as limits_service
from conveyor.services import schedules as schedules_service

Info = strawberry.Info[Context, None]

ScheduleMisfire = strawberry.enum(
    sched.Misfire,
    name="ScheduleMisfire",
    description="What a schedule does with fire times missed by more than its grace period.",
)
ScheduleSource = strawberry.enum(
    sched.Source, name="ScheduleSource", description="Who owns a schedule's definition."
)
#: Fires shown per schedule.
RECENT_FIRES = 10
MAX_NEXT_FIRES = 50


@strawberry.type(description="One fire time of a schedule and the job it made.")
class ScheduleFire:
    fire_at: datetime
    created_at: datetime = strawberry.field(description="When its job was made.")
    lag_seconds: float = strawberry.field(description="From the fire time to the job.")
    manual: bool = strawberry.field(description="Made by triggerSchedule.")
    job_id: strawberry.ID | None
    job_status: st.JobStatus | None = strawberry.field(
        description="The job's status now (null: no job was made, or it was pruned)."
    )
    error: str | None = strawberry.field(description="Why no job was made.")

    @classmethod
    def from_domain(cls, f: sched.Fire) -> ScheduleFire:
        return cls(
            fire_at=f.fire_at,
            created_at=f.created_at,
            lag_seconds=max(0.0, (f.created_at - f.fire_at).total_seconds()),
            manual=f.manual,
            job_id=strawberry.ID(str(f.job_id)) if f.job_id else None,
            job_status=st.JobStatus(f.job_status) if f.job_status else None,
            error=f.error,
        )


@strawberry.type(
    description="A recurring job: cron (5 fields, or 6 with seconds first) or a "
    "fixed interval, in a time zone."
)
class Schedule:
    id: strawberry.ID
    name: str
    kind: str
    input: JSON
    cron: str | None
    every_seconds: float | None
    timezone: str
    jitter_seconds: float
    misfire: sched.Misfire
    misfire_grace_seconds: float
    max_catchup: int
    priority: st.Priority | None
    max_attempts: int | None
    timeout_seconds: float | None
    source: sched.Source
    paused: bool
    paused_at: datetime | None
    paused_by: str | None
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    skipped_fires: int = strawberry.field(
        description="Missed fire times its misfire policy dropped."
    )
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    recent_fires: list[ScheduleFire] = strawberry.field(
        description=f"The latest {RECENT_FIRES} fires, newest first, with their jobs' status."
    )
    domain_: strawberry.Private[sched.Schedule]

    @strawberry.field(description="The next fire times (at most 50), from the next one on.")
    def next_fire_times(self, count: int = 5) -> list[datetime]:
        if not 1 <= count <= MAX_NEXT_FIRES:
            raise errors.InvalidInput(
                "invalid count",
                [errors.FieldError(("count",), f"must be between 1 and {MAX_NEXT_FIRES}")],
            )
        s = self.domain_
        if s.paused_at is not None or s.next_fire_at is None:
            return []
        return [s.next_fire_at, *s.timing.upcoming(s.next_fire_at, count - 1)]

    @classmethod
    def from_domain(cls, s: sched.Schedule, fires: list[sched.Fire] | None = None) -> Schedule:
        o = s.spec.options
        return cls(
            id=strawberry.ID(str(s.id)),
            name=s.name,
            kind=s.kind,
            input=cast(JSON, s.spec.input),
            cron=s.spec.cron,
            every_seconds=s.spec.every_seconds,
            timezone=s.spec.timezone,
            jitter_seconds=s.spec.jitter_seconds,
            misfire=s.spec.misfire,
            misfire_grace_seconds=s.spec.misfire_grace_seconds,
            max_catchup=s.spec.max_catchup,
            priority=st.Priority(o.priority) if o.priority is not None else None,
            max_attempts=o.max_attempts,
            timeout_seconds=o.timeout_seconds,
            source=s.source,
            paused=s.paused_at is not None,
            paused_at=s.paused_at,
            paused_by=s.paused_by,
            next_fire_at=None if s.paused_at else s.next_fire_at,
            last_fire_at=s.last_fire_at,
            skipped_fires=s.skipped_fires,
            created_by=s.created_by,
            created_at=s.created_at,
            updated_at=s.updated_at,
            recent_fires=[ScheduleFire.from_domain(f) for f in fires or []],
            domain_=s,
        )


@strawberry.input(description="A new schedule: give exactly one of `cron` and `everySeconds`.")
class CreateScheduleInput:
    kind: str
    input: JSON | None = strawberry.field(
        default=None, description="The payload of every job it makes ({} when null)."
    )
    cron: str | None = strawberry.field(
        default=None,
        description="5 fields (minute hour day-of-month month day-of-week), or 6 with seconds "
        "first; evaluated in `timezone`, DST-correct.",
    )
    every_seconds: float | None = strawberry.field(
        default=None, description="A fixed interval (>= 1 s), counted in UTC from creation."
    )
    timezone: str | None = strawberry.field(default=None, description="IANA name; UTC if null.")
    name: str | None = strawberry.field(
        default=None, description="Unique in the tenant (generated from the kind if null)."
    )
    jitter_seconds: float | None = strawberry.field(
        default=None, description="Each job runs a random 0..jitter seconds after its fire time."
    )
    misfire: sched.Misfire | None = None
    misfire_grace_seconds: float | None = strawberry.field(
        default=None,
        description="Fire times at most this late always run (default 60); older ones are "
        "missed and handled by `misfire`.",
    )
    max_catchup: int | None = strawberry.field(
        default=None, description="RUN_ALL: at most this many missed fire times (default 100)."
    )
    priority: st.Priority | None = None
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    paused: bool | None = strawberry.field(default=None, description="Create it paused.")


@strawberry.input(description="What to change; fields left null stay as they are.")
class UpdateScheduleInput:
    name: str | None = None
    input: JSON | None = None
    cron: str | None = strawberry.field(default=None, description="Switches to cron timing.")
    every_seconds: float | None = strawberry.field(
        default=None, description="Switches to interval timing."
    )
    timezone: str | None = None
    jitter_seconds: float | None = None
    misfire: sched.Misfire | None = None
    misfire_grace_seconds: float | None = None
    max_catchup: int | None = None
    priority: st.Priority | None = None
    max_attempts: int | None = None
    timeout_seconds: float | None = None


@strawberry.type
class DeletedSchedule:
    id: strawberry.ID
    name: str


@strawberry.type(description="A queue's pause state.")
class QueuePause:
    queue: str
    paused: bool
    changed: bool = strawberry.field(description="False when it already was in that state.")


@strawberry.type(description="A run-time concurrency limit or throttle (ADR-0022).")
class ConcurrencyLimit:
    scope: str = strawberry.field(
        description="`kind:K`, `key:K` (each key of kind K), `queue:Q` or `tenant:T`."
    )
    max_running: int | None
    rate: str | None = strawberry.field(description="Starts per period, e.g. `10/m`.")
    source: str = strawberry.field(description="`code`, `api` or `policy` (maxRunningJobs).")
    updated_by: str | None
    updated_at: datetime
    running: int | None = strawberry.field(
        description="Jobs running under it now (null for per-key limits)."
    )
    waiting: int = strawberry.field(description="Jobs it holds back now (parked).")

    @classmethod
    def from_domain(cls, v: limits_service.LimitView) -> ConcurrencyLimit:
        return cls(
            scope=v.scope,
            max_running=v.limit.max_running,
            rate=str(v.limit.rate) if v.limit.rate else None,
            source=v.source,
            updated_by=v.updated_by,
            updated_at=v.updated_at,
            running=v.running,
            waiting=v.waiting,
        )


@strawberry.input(
    description="Name one scope (kind, queue or perKeyOf); null maxRunning and rate remove "
    "the limit set over the API (a kind's own, from code, applies again)."
)
class SetConcurrencyLimitInput:
    kind: str | None = None
    queue: str | None = None
    per_key_of: str | None = strawberry.field(
        default=None, description="A kind: the limit applies to each of its concurrency keys."
    )
    max_running: int | None = None
    rate: str | None = strawberry.field(default=None, description="e.g. `10/m`, `5/s`.")


CreateScheduleResult = Annotated[
    Schedule | ue.InvalidInput | ue.UnknownJobKind | ue.NameTaken,
    strawberry.union("CreateScheduleResult"),
]
UpdateScheduleResult = Annotated[
    Schedule | ue.InvalidInput | ue.NotFound | ue.NameTaken | ue.ManagedInCode,
    strawberry.union("UpdateScheduleResult"),
]
ScheduleResult = Annotated[Schedule | ue.NotFound, strawberry.union("ScheduleResult")]
DeleteScheduleResult = Annotated[
    DeletedSchedule | ue.NotFound | ue.ManagedInCode, strawberry.union("DeleteScheduleResult")
]
TriggerScheduleResult = Annotated[
    t.Job | ue.NotFound | ue.InvalidInput | ue.UnknownJobKind | ue.PolicyDenied | ue.Conflict,
    strawberry.union("TriggerScheduleResult"),
]
PauseQueueResult = Annotated[QueuePause | ue.InvalidInput, strawberry.union("PauseQueueResult")]
SetConcurrencyLimitResult = Annotated[
    ConcurrencyLimit | ue.InvalidInput, strawberry.union("SetConcurrencyLimitResult")
]


def _id(value: strawberry.ID) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _spec(i: CreateScheduleInput) -> sched.ScheduleSpec:
    defaults = sched.ScheduleSpec(name="")
    return sched.ScheduleSpec(
        name=i.name if i.name is not None else f"{i.kind}-{uuid.uuid4().hex[:8]}",
        cron=i.cron,
        every_seconds=i.every_seconds,
        timezone=i.timezone or "UTC",
        input=cast(dict, i.input) if i.input is not None else {},  # type: ignore[type-arg]
        jitter_seconds=(defaults.jitter_seconds if i.jitter_seconds is None else i.jitter_seconds),
        misfire=i.misfire or defaults.misfire,
        misfire_grace_seconds=(
            defaults.misfire_grace_seconds
            if i.misfire_grace_seconds is None
            else i.misfire_grace_seconds
        ),
        max_catchup=defaults.max_catchup if i.max_catchup is None else i.max_catchup,
        options=sched.Options(
            priority=int(i.priority) if i.priority is not None else None,
            max_attempts=i.max_attempts,
            timeout_seconds=i.timeout_seconds,
        ),
    )


def _or(value: object, default: object) -> object:
    return default if value is None else value


async def _view(info: Info, s: sched.Schedule) -> Schedule:
    fires = await schedules_service.recent_fires(info.context.deps, [s.id], RECENT_FIRES)
    return Schedule.from_domain(s, fires.get(s.id))


@strawberry.type
class FlowQuery:
    @strawberry.field(description="The tenant's schedules, by name, with their next fire times.")
    async def schedules(self, info: Info) -> list[Schedule]:
        ctx = info.context
        found = await schedules_service.list_schedules(ctx.deps, ctx.principal)
        fires = await schedules_service.recent_fires(ctx.deps, [s.id for s in found], RECENT_FIRES)
        return [Schedule.from_domain(s, fires.get(s.id)) for s in found]

    @strawberry.field(description="A schedule, or null.")
    async def schedule(self, info: Info, id: strawberry.ID) -> Schedule | None:
        schedule_id = _id(id)
        if schedule_id is None:
            return None
        found = await schedules_service.get(info.context.deps, info.context.principal, schedule_id)
        return await _view(info, found) if found else None

    @strawberry.field(
        description="Run-time concurrency limits and throttles, with what runs and waits "
        "under each."
    )
    async def concurrency_limits(self, info: Info) -> list[ConcurrencyLimit]:
        ctx = info.context
        found = await limits_service.list_limits(ctx.deps, ctx.principal)
        return [ConcurrencyLimit.from_domain(v) for v in found]


@strawberry.type
class FlowMutation:
    @strawberry.mutation(description="Create a schedule (admins and operators).")
    async def create_schedule(self, info: Info, input: CreateScheduleInput) -> CreateScheduleResult:
        ctx = info.context
        try:
            created = await schedules_service.create(
                ctx.deps, ctx.principal, input.kind, _spec(input)
            )
            if input.paused:
                created = await schedules_service.set_paused(
                    ctx.deps, ctx.principal, created.id, True
                )
        except (errors.InvalidInput, errors.UnknownJobKind, errors.NameTaken) as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return await _view(info, created)

    @strawberry.mutation(
        description="Change an API-defined schedule; a new timing takes effect from now."
    )
    async def update_schedule(
        self, info: Info, id: strawberry.ID, input: UpdateScheduleInput
    ) -> UpdateScheduleResult:
        ctx = info.context
        try:
            schedule_id = _id(id)
            if schedule_id is None:
                raise errors.NotFound(str(id), "schedule")
            options = None
            if (
                input.priority is not None
                or input.max_attempts is not None
                or (input.timeout_seconds is not None)
            ):
                current = await schedules_service.get(ctx.deps, ctx.principal, schedule_id)
                base = current.spec.options if current else sched.Options()
                options = sched.Options(
                    priority=int(input.priority) if input.priority is not None else base.priority,
                    max_attempts=_or(input.max_attempts, base.max_attempts),  # type: ignore[arg-type]
                    timeout_seconds=_or(input.timeout_seconds, base.timeout_seconds),  # type: ignore[arg-type]
                    backoff_base_seconds=base.backoff_base_seconds,
                    backoff_cap_seconds=base.backoff_cap_seconds,
                )
            updated = await schedules_service.update(
                ctx.deps,
                ctx.principal,
                schedule_id,
                schedules_service.Changes(
                    name=input.name,
                    input=cast(dict, input.input) if input.input is not None else None,  # type: ignore[type-arg]
                    cron=input.cron,
                    every_seconds=input.every_seconds,
                    timezone=input.timezone,
                    jitter_seconds=input.jitter_seconds,
                    misfire=input.misfire,
                    misfire_grace_seconds=input.misfire_grace_seconds,
                    max_catchup=input.max_catchup,
                    options=options,
                ),
            )
        except (
            errors.InvalidInput,
            errors.NotFound,
            errors.NameTaken,
            errors.ManagedInCode,
        ) as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return await _view(info, updated)

    @strawberry.mutation(description="Pause a schedule: it makes no jobs until resumed.")
    async def pause_schedule(self, info: Info, id: strawberry.ID) -> ScheduleResult:
        return await _set_paused(info, id, True)

    @strawberry.mutation(
        description="Resume a schedule: it fires from now on (nothing for the paused time)."
    )
    async def resume_schedule(self, info: Info, id: strawberry.ID) -> ScheduleResult:
        return await _set_paused(info, id, False)

    @strawberry.mutation(
        description="Delete an API-defined schedule (its jobs stay; code-defined ones are "
        "removed from the code)."
    )
    async def delete_schedule(self, info: Info, id: strawberry.ID) -> DeleteScheduleResult:
        ctx = info.context
        try:
            schedule_id = _id(id)
            if schedule_id is None:
                raise errors.NotFound(str(id), "schedule")
            deleted = await schedules_service.delete(ctx.deps, ctx.principal, schedule_id)
        except (errors.NotFound, errors.ManagedInCode) as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return DeletedSchedule(id=strawberry.ID(str(deleted.id)), name=deleted.name)

    @strawberry.mutation(
        description="Fire now: one job, as any fire makes it (its fire time is now)."
    )
    async def trigger_schedule(self, info: Info, id: strawberry.ID) -> TriggerScheduleResult:
        ctx = info.context
        try:
            schedule_id = _id(id)
            if schedule_id is None:
                raise errors.NotFound(str(id), "schedule")
            job = await schedules_service.trigger(ctx.deps, ctx.principal, schedule_id)
        except errors.UserError as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return t.Job.from_domain(job)

    @strawberry.mutation(
        description="Pause a queue (admins and operators): nothing new starts on it, running "
        "jobs finish, submits are still accepted."
    )
    async def pause_queue(self, info: Info, queue: str) -> PauseQueueResult:
        return await _queue(info, queue, True)

    @strawberry.mutation(description="Resume a queue: the jobs it held start again.")
    async def resume_queue(self, info: Info, queue: str) -> PauseQueueResult:
        return await _queue(info, queue, False)

    @strawberry.mutation(
        description="Set a kind's, a queue's or a kind's per-key limit at run time (admins): "
        "in force for the next claim in every worker."
    )
    async def set_concurrency_limit(
        self, info: Info, input: SetConcurrencyLimitInput
    ) -> SetConcurrencyLimitResult:
        ctx = info.context
        try:
            view = await limits_service.set_limit(
                ctx.deps,
                ctx.principal,
                kind=input.kind,
                queue=input.queue,
                per_key_of=input.per_key_of,
                max_running=input.max_running,
                rate=input.rate,
            )
        except errors.InvalidInput as exc:
            return ue.user_error(exc)  # type: ignore[return-value]
        return ConcurrencyLimit.from_domain(view)


async def _set_paused(info: Info, id: strawberry.ID, paused: bool) -> ScheduleResult:
    ctx = info.context
    try:
        schedule_id = _id(id)
        if schedule_id is None:
            raise errors.NotFound(str(id), "schedule")
        found = await schedules_service.set_paused(ctx.deps, ctx.principal, schedule_id, paused)
    except errors.NotFound as exc:
        return ue.user_error(exc)  # type: ignore[return-value]
    return await _view(info, found)


async def _queue(info: Info, queue: str, paused: bool) -> PauseQueueResult:
    ctx = info.context
    try:
        changed = await limits_service.set_queue_paused(ctx.deps, ctx.principal, queue, paused)
    except errors.InvalidInput as exc:
        return ue.user_error(exc)  # type: ignore[return-value]
    return QueuePause(queue=queue, paused=paused, changed=changed)
