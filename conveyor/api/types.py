"""GraphQL types. Domain values become GraphQL objects here (`from_domain`), nowhere else.

Size (~800 lines, over STYLE's ~400 on purpose): one GraphQL type per domain value, each with
its one conversion. They reference each other across areas (a job's run and step, a run's
jobs, an error's job), which strawberry resolves within one module without lazy annotations;
splitting by area (jobs, security, workflows) with `strawberry.lazy` is the step to take when it
grows further."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from conveyor.api import user_errors as ue
from conveyor.db import stats as db_stats
from conveyor.domain import errors, models, policy, runs
from conveyor.domain import states as st
from conveyor.domain import waiting as wait
from conveyor.kinds.registry import JobKind as DomainJobKind
from conveyor.kinds.workflows import Map as MapDefinition
from conveyor.kinds.workflows import Workflow as DomainWorkflow
from conveyor.services import jobs as jobs_service
from conveyor.services import ops, waiting
from conveyor.services import workflows as workflows_service

if TYPE_CHECKING:
    from conveyor.api.context import Context

JobStatus = strawberry.enum(st.JobStatus, name="JobStatus")
AttemptStatus = strawberry.enum(st.AttemptStatus, name="AttemptStatus")
JobEventType = strawberry.enum(st.EventType, name="JobEventType")
Priority = strawberry.enum(st.Priority, name="Priority")
Role = strawberry.enum(policy.Role, name="Role", description="What a key may do in its tenant.")
WorkflowRunStatus = strawberry.enum(runs.RunStatus, name="WorkflowRunStatus")
WorkflowStepStatus = strawberry.enum(runs.StepStatus, name="WorkflowStepStatus")
WorkflowEventType = strawberry.enum(runs.RunEventType, name="WorkflowEventType")


@strawberry.type(
    description="What went wrong, as clients may see it (tracebacks stay on the server)."
)
class JobError:
    type: str
    message: str

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> JobError | None:
        if not d:
            return None
        return cls(type=str(d.get("type", "Error")), message=str(d.get("message", "")))


@strawberry.type
class JobAttempt:
    number: int
    status: st.AttemptStatus
    worker_id: str | None
    started_at: datetime
    finished_at: datetime | None
    error: JobError | None

    @classmethod
    def from_domain(cls, a: models.Attempt) -> JobAttempt:
        return cls(
            number=a.number,
            status=a.status,
            worker_id=a.worker_id,
            started_at=a.started_at,
            finished_at=a.finished_at,
            error=JobError.from_dict(a.error),
        )


#: Largest `Job.events(first:)`.
MAX_EVENTS_PAGE = 1000
DEFAULT_EVENTS_PAGE = 100
#: Page size of a connection when `first` is absent or null.
DEFAULT_PAGE = 50


@strawberry.type
class JobEvent:
    seq: int
    type: st.EventType
    status: st.JobStatus
    progress: float | None
    message: str | None
    data: JSON | None
    at: datetime
    job_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The job as it is now (read when asked for).")
    async def job(self, info: strawberry.Info[Context, None]) -> Job | None:
        found = await info.context.jobs.load(self.job_id)
        return Job.from_domain(found) if found else None

    @classmethod
    def from_domain(cls, e: models.Event) -> JobEvent:
        return cls(
            seq=e.seq,
            type=e.type,
            status=e.status,
            progress=e.progress,
            message=e.message,
            data=cast(JSON, e.data),
            at=e.at,
            job_id=e.job_id,
        )


@strawberry.type
class Job:
    id: strawberry.ID
    kind: str
    queue: str
    status: st.JobStatus
    priority: st.Priority
    payload: JSON
    result: JSON | None
    error: JobError | None
    progress: float
    progress_message: str | None
    attempt: int
    max_attempts: int
    timeout_seconds: float
    backoff_base_seconds: float
    backoff_cap_seconds: float
    deduplicated: bool = strawberry.field(
        description="True when submitJob returned an existing job for a reused idempotency key."
    )
    created_at: datetime
    run_at: datetime | None
    next_run_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    schedule_id: strawberry.ID | None = strawberry.field(
        description="The schedule that made this job (null: submitted)."
    )
    fire_at: datetime | None = strawberry.field(
        description="The fire time of its schedule this job was made for."
    )
    concurrency_key: str | None = strawberry.field(
        description="The key its kind computed from the input (per-key limits count by it)."
    )
    parent_id: strawberry.ID | None = strawberry.field(
        description="The job whose handler submitted this one (`ctx.submit`)."
    )
    uuid_: strawberry.Private[uuid.UUID]
    run_id: strawberry.Private[uuid.UUID | None]
    step_id: strawberry.Private[uuid.UUID | None]
    map_index: int | None = strawberry.field(
        description="A map step's item: its index in the map (null for other jobs)."
    )
    parent_uuid: strawberry.Private[uuid.UUID | None]
    domain_: strawberry.Private[models.Job]

    @strawberry.field(
        description="The job whose handler submitted this one: null for jobs submitted by a "
        "client, and once the parent was pruned."
    )
    async def parent(self, info: strawberry.Info[Context, None]) -> Job | None:
        if self.parent_uuid is None:
            return None
        found = await info.context.jobs.load(self.parent_uuid)
        return Job.from_domain(found) if found else None

    @strawberry.field(
        description=(
            "Why the job is not running, from the real state now: null while it runs and "
            "once it ended. Read per job (one query each): ask for it on one job, not on "
            "pages."
        )
    )
    async def waiting_reason(self, info: strawberry.Info[Context, None]) -> WaitingReason | None:
        found = await waiting.reason(info.context.deps, self.domain_)
        return WaitingReason.from_domain(found) if found else None

    @strawberry.field(
        description=(
            "Whether a live worker serves this job's queue and knows its kind. False: a "
            "waiting job stays QUEUED until such a worker starts (none is lost meanwhile)."
        )
    )
    async def queue_served(self, info: strawberry.Info[Context, None]) -> bool:
        found = await ops.coverage(info.context.deps)
        return found.workers_for(self.kind, self.queue) > 0

    @strawberry.field(description="The workflow run this job is a step of (null: on its own).")
    async def run(self, info: strawberry.Info[Context, None]) -> WorkflowRun | None:
        if self.run_id is None:
            return None
        found = await workflows_service.get(info.context.deps, info.context.principal, self.run_id)
        return WorkflowRun.from_domain(found) if found else None

    @strawberry.field(description="The workflow step this job runs (null: on its own).")
    async def step(self, info: strawberry.Info[Context, None]) -> WorkflowStep | None:
        if self.step_id is None or self.run_id is None:
            return None
        run = await workflows_service.get(info.context.deps, info.context.principal, self.run_id)
        found = await workflows_service.step_of(info.context.deps, self.step_id)
        return WorkflowStep.from_domain(found) if found and run else None

    @strawberry.field(description="Every attempt, oldest first.")
    async def attempts(self, info: strawberry.Info[Context, None]) -> list[JobAttempt]:
        found = await info.context.attempts.load(self.uuid_)
        return [JobAttempt.from_domain(a) for a in found]

    @strawberry.field(description="Stored events with seq > after, in seq order.")
    async def events(
        self,
        info: strawberry.Info[Context, None],
        after: int | None = 0,
        first: int | None = DEFAULT_EVENTS_PAGE,
    ) -> list[JobEvent]:
        after = after or 0  # null means the default, as for every page argument
        first = DEFAULT_EVENTS_PAGE if first is None else first
        if not 1 <= first <= MAX_EVENTS_PAGE:
            raise errors.InvalidInput(
                "invalid page size",
                [errors.FieldError(("first",), f"must be between 1 and {MAX_EVENTS_PAGE}")],
            )
        found = await jobs_service.events_after(info.context.deps, self.uuid_, after, first)
        return [JobEvent.from_domain(e) for e in found]

    @classmethod
    def from_domain(cls, j: models.Job) -> Job:
        return cls(
            id=strawberry.ID(str(j.id)),
            kind=j.kind,
            queue=j.queue,
            status=j.status,
            priority=j.priority,
            payload=cast(JSON, j.payload),
            result=cast(JSON, j.result),
            error=JobError.from_dict(j.error),
            progress=j.progress,
            progress_message=j.progress_message,
            attempt=j.attempt,
            max_attempts=j.max_attempts,
            timeout_seconds=j.timeout_seconds,
            backoff_base_seconds=j.backoff_base_seconds,
            backoff_cap_seconds=j.backoff_cap_seconds,
            deduplicated=j.deduplicated,
            created_at=j.created_at,
            run_at=j.run_at,
            next_run_at=j.next_run_at,
            started_at=j.started_at,
            finished_at=j.finished_at,
            schedule_id=strawberry.ID(str(j.schedule_id)) if j.schedule_id else None,
            fire_at=j.fire_at,
            concurrency_key=j.concurrency_key,
            parent_id=strawberry.ID(str(j.parent_id)) if j.parent_id else None,
            uuid_=j.id,
            parent_uuid=j.parent_id,
            domain_=j,
            run_id=j.run_id,
            step_id=j.step_id,
            map_index=j.map_index if j.map_index is not None and j.map_index >= 0 else None,
        )


WaitingReasonCode = strawberry.enum(
    wait.WaitCode, name="WaitingReasonCode", description="Why a job is not running."
)


@strawberry.type(description="Why a job is not running, and what it waits for.")
class WaitingReason:
    code: wait.WaitCode
    message: str = strawberry.field(description="For people: what holds it, and until when.")
    until: datetime | None = strawberry.field(
        description="When it starts by itself (scheduled, backoff, throttle), if known."
    )
    scope: str | None = strawberry.field(
        description="The limit or throttle that holds it: `kind:K`, `key:K:<key>`, "
        "`queue:Q`, `tenant:T`."
    )
    limit: int | None = strawberry.field(description="The limit's running maximum.")
    running: int | None = strawberry.field(description="How many run under the limit now.")
    holders: list[strawberry.ID] = strawberry.field(
        description="Running jobs holding the limit's slots (the first 10)."
    )
    ahead: int | None = strawberry.field(
        description="QUEUED jobs ahead of it in its queue (same or higher priority)."
    )
    ahead_exact: bool = strawberry.field(
        description="False when `ahead` is the counting bound (1,000+)."
    )
    details: JSON | None

    @classmethod
    def from_domain(cls, r: wait.WaitingReason) -> WaitingReason:
        return cls(
            code=r.code,
            message=r.message,
            until=r.until,
            scope=r.scope,
            limit=r.limit,
            running=r.running,
            holders=[strawberry.ID(str(h)) for h in r.holders],
            ahead=r.ahead,
            ahead_exact=r.ahead_exact,
            details=cast(JSON, r.details or None),
        )


@strawberry.type
class JobEdge:
    cursor: str
    node: Job


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class JobConnection:
    edges: list[JobEdge]
    page_info: PageInfo
    count_filter: strawberry.Private[Any]

    @strawberry.field(
        description=(
            "Jobs matching the filter (counted only when asked for). Counting is a scan of "
            "every matching index entry; with `atMost`, it stops there, and an answer equal to "
            "`atMost` means 'at least that many' (dashboards ask for `atMost: 10000`)."
        )
    )
    async def total_count(
        self, info: strawberry.Info[Context, None], at_most: int | None = None
    ) -> int:
        if at_most is not None and at_most < 1:
            raise errors.InvalidInput(
                "invalid count bound", [errors.FieldError(("atMost",), "must be at least 1")]
            )
        return await jobs_service.count(info.context.deps, self.count_filter, at_most=at_most)


@strawberry.type
class JobKind:
    name: str
    queue: str
    description: str
    input_schema: JSON = strawberry.field(description="JSON Schema of the payload.")
    max_attempts: int
    timeout_seconds: float

    @classmethod
    def from_domain(cls, k: DomainJobKind) -> JobKind:
        return cls(
            name=k.name,
            queue=k.queue,
            description=k.description,
            input_schema=cast(JSON, k.json_schema()),
            max_attempts=k.max_attempts,
            timeout_seconds=k.timeout_seconds,
        )


@strawberry.type(description="The caller: an API key, or a read-only token minted from one.")
class Principal:
    id: strawberry.ID
    name: str
    is_admin: bool
    role: policy.Role
    tenant_id: strawberry.ID
    is_superuser: bool
    token_scope: str | None = strawberry.field(
        description="Tokens only: `tenant` or `job:<id>`; null for API keys."
    )

    @classmethod
    def from_domain(cls, p: models.Principal) -> Principal:
        return cls(
            id=strawberry.ID(str(p.id)),
            name=p.name,
            is_admin=p.is_admin,
            role=policy.Role(p.role),
            tenant_id=strawberry.ID(str(p.tenant_id)),
            is_superuser=p.is_superuser,
            token_scope=p.token_scope,
        )


SubmitJobResult = Annotated[
    Job | ue.InvalidInput | ue.UnknownJobKind | ue.Conflict | ue.PolicyDenied,
    strawberry.union("SubmitJobResult"),
]
CancelJobResult = Annotated[
    Job | ue.NotFound | ue.InvalidState, strawberry.union("CancelJobResult")
]
RetryJobResult = Annotated[
    Job | ue.NotFound | ue.InvalidState | ue.PolicyDenied, strawberry.union("RetryJobResult")
]


@strawberry.input
class JobFilter:
    status: list[st.JobStatus] | None = None
    kind: list[str] | None = None
    queue: str | None = None


@strawberry.input
class SubmitJobInput:
    kind: str
    payload: JSON
    idempotency_key: str | None = None
    run_at: datetime | None = strawberry.field(
        default=None, description="Run no earlier than this time (SCHEDULED until then)."
    )
    priority: st.Priority | None = None
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    backoff_base_seconds: float | None = strawberry.field(
        default=None,
        description="Retry backoff base for this job (the kind's, or the deployment's, if null).",
    )
    backoff_cap_seconds: float | None = strawberry.field(
        default=None, description="Longest wait between two attempts of this job."
    )


@strawberry.input(
    description=(
        "How a job of a typed mutation (`submit<Kind>`) is run; every field is optional, as "
        "in SubmitJobInput."
    )
)
class SubmitOptions:
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="A reused key returns the same job (`deduplicated`), or Conflict when the "
        "kind or input differs.",
    )
    run_at: datetime | None = strawberry.field(
        default=None, description="Run no earlier than this time (SCHEDULED until then)."
    )
    priority: st.Priority | None = None
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    backoff_base_seconds: float | None = strawberry.field(
        default=None,
        description="Retry backoff base for this job (the kind's, or the deployment's, if null).",
    )
    backoff_cap_seconds: float | None = strawberry.field(
        default=None, description="Longest wait between two attempts of this job."
    )


@strawberry.type
class QueueStats:
    queue: str
    waiting: int
    scheduled: int = strawberry.field(description="SCHEDULED and RETRYING jobs.")
    running: int
    failed: int
    oldest_waiting_seconds: float | None
    completed_per_minute: int
    failed_per_minute: int
    paused: bool = strawberry.field(description="Paused: nothing new starts (pauseQueue).")
    paused_at: datetime | None
    paused_by: str | None

    @classmethod
    def from_domain(cls, s: db_stats.QueueStats) -> QueueStats:
        return cls(
            queue=s.queue,
            waiting=s.waiting,
            scheduled=s.scheduled,
            running=s.running,
            failed=s.failed,
            oldest_waiting_seconds=s.oldest_waiting_seconds,
            completed_per_minute=s.completed_per_minute,
            failed_per_minute=s.failed_per_minute,
            paused=s.paused_at is not None,
            paused_at=s.paused_at,
            paused_by=s.paused_by,
        )


@strawberry.type
class Worker:
    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: datetime
    last_heartbeat_at: datetime
    running_jobs: int

    @classmethod
    def from_domain(cls, w: db_stats.WorkerInfo) -> Worker:
        return cls(
            id=w.id,
            host=w.host,
            pid=w.pid,
            queues=w.queues,
            concurrency=w.concurrency,
            started_at=w.started_at,
            last_heartbeat_at=w.last_heartbeat_at,
            running_jobs=w.running_jobs,
        )


@strawberry.type
class BulkResult:
    count: int = strawberry.field(description="How many jobs the operation changed.")


@strawberry.type(description="One live change to a job, flat so dashboards need no extra reads.")
class JobUpdate:
    job_id: strawberry.ID
    seq: int
    type: st.EventType
    kind: str
    queue: str
    status: st.JobStatus
    progress: float
    progress_message: str | None
    attempt: int
    at: datetime

    @classmethod
    def from_domain(cls, c: models.JobChange) -> JobUpdate:
        return cls(
            job_id=strawberry.ID(str(c.job_id)),
            seq=c.event.seq,
            type=c.event.type,
            kind=c.kind,
            queue=c.queue,
            status=c.event.status,
            progress=c.progress,
            progress_message=c.progress_message,
            attempt=c.attempt,
            at=c.event.at,
        )


# Workflows (ADR-0023). Here with `Job`, which links to its run and step both ways.


@strawberry.type(description="One step of a workflow definition.")
class WorkflowStepDefinition:
    key: str
    kind: str
    is_map: bool
    after: list[str] = strawberry.field(description="The steps it waits for.")
    over: str | None = strawberry.field(description="A map: the step whose result it fans out.")
    allow_failures: int = strawberry.field(
        description="A map: items that may fail while its dependents still run."
    )


@strawberry.type(description="An edge of a workflow's DAG: `to` waits for `from`.")
class WorkflowEdge:
    from_: str = strawberry.field(name="from")
    to: str


@strawberry.type(description="A workflow definition: its steps and edges, for drawing.")
class Workflow:
    name: str
    description: str
    input_schema: JSON = strawberry.field(description="JSON Schema of the run's input.")
    steps: list[WorkflowStepDefinition]
    edges: list[WorkflowEdge]

    @classmethod
    def from_domain(cls, w: DomainWorkflow) -> Workflow:
        return cls(
            name=w.name,
            description=w.description,
            input_schema=cast(JSON, w.json_schema()),
            steps=[
                WorkflowStepDefinition(
                    key=s.key,
                    kind=s.kind,
                    is_map=isinstance(s, MapDefinition),
                    after=list(w.parents[s.key]),
                    over=s.over if isinstance(s, MapDefinition) else None,
                    allow_failures=s.allow_failures if isinstance(s, MapDefinition) else 0,
                )
                for s in w.steps
            ],
            edges=[WorkflowEdge(from_=p, to=s.key) for s in w.steps for p in w.parents[s.key]],
        )


@strawberry.type(description="Jobs of a step with one status (a map's counts).")
class StatusCount:
    status: st.JobStatus
    count: int


@strawberry.type
class WorkflowStep:
    id: strawberry.ID
    key: str
    kind: str
    is_map: bool
    status: runs.StepStatus
    pending_parents: int = strawberry.field(description="Parents it still waits for.")
    allow_failures: int
    expected: int | None = strawberry.field(
        description="A map: its items (null until its parent succeeded)."
    )
    expanded: int = strawberry.field(description="A map: item jobs created so far.")
    succeeded: int = strawberry.field(description="A map: items that succeeded.")
    failed: int = strawberry.field(description="A map: items that failed.")
    started_at: datetime | None
    finished_at: datetime | None
    error: JobError | None
    uuid_: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The step's job (not a map; null until it started).")
    async def job(self, info: strawberry.Info[Context, None]) -> Job | None:
        if self.is_map:
            return None
        found = await workflows_service.step_jobs(
            info.context.deps, self.uuid_, statuses=(), after_index=-2, first=1
        )
        return Job.from_domain(found[0]) if found else None

    @strawberry.field(
        description=(
            "The step's jobs in item order (a map's drill-down): with `status`, only those; "
            "`afterIndex` pages on the item index."
        )
    )
    async def jobs(
        self,
        info: strawberry.Info[Context, None],
        status: list[st.JobStatus] | None = None,
        after_index: int | None = None,
        first: int | None = DEFAULT_PAGE,
    ) -> list[Job]:
        first = DEFAULT_PAGE if first is None else first
        if not 1 <= first <= MAX_EVENTS_PAGE:
            raise errors.InvalidInput(
                "invalid page size",
                [errors.FieldError(("first",), f"must be between 1 and {MAX_EVENTS_PAGE}")],
            )
        found = await workflows_service.step_jobs(
            info.context.deps,
            self.uuid_,
            statuses=tuple(s.value for s in status or ()),
            after_index=-2 if after_index is None else after_index,
            first=first,
        )
        return [Job.from_domain(j) for j in found]

    @strawberry.field(description="The step's jobs counted by status (a map's counts).")
    async def counts(self, info: strawberry.Info[Context, None]) -> list[StatusCount]:
        found = (await workflows_service.job_counts(info.context.deps, [self.uuid_])).get(
            self.uuid_, {}
        )
        return [StatusCount(status=st.JobStatus(k), count=v) for k, v in sorted(found.items())]

    @classmethod
    def from_domain(cls, s: runs.Step) -> WorkflowStep:
        return cls(
            id=strawberry.ID(str(s.id)),
            key=s.key,
            kind=s.kind,
            is_map=s.is_map,
            status=s.status,
            pending_parents=s.pending_parents,
            allow_failures=s.allow_failures,
            expected=s.expected,
            expanded=s.expanded,
            succeeded=s.succeeded,
            failed=s.failed,
            started_at=s.started_at,
            finished_at=s.finished_at,
            error=JobError.from_dict(s.error),
            uuid_=s.id,
        )


@strawberry.type(description="One execution of a workflow.")
class WorkflowRun:
    id: strawberry.ID
    workflow: str
    status: runs.RunStatus
    input: JSON
    generation: int = strawberry.field(description="1, plus one per retryWorkflowRun.")
    last_seq: int = strawberry.field(description="The seq of its latest event.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: JobError | None
    deduplicated: bool = strawberry.field(
        description="True when submitWorkflow returned an existing run for a reused key."
    )
    uuid_: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Its steps, in definition order.")
    async def steps(self, info: strawberry.Info[Context, None]) -> list[WorkflowStep]:
        found = await workflows_service.steps(info.context.deps, [self.uuid_])
        wf = info.context.deps.registry.workflows.get(self.workflow)
        order = {s.key: i for i, s in enumerate(wf.steps)} if wf else {}
        found.sort(key=lambda s: (order.get(s.key, len(order)), s.key))
        return [WorkflowStep.from_domain(s) for s in found]

    @strawberry.field(
        description="Fraction of its jobs that ended (a map counts its items), 0 to 1."
    )
    async def progress(self, info: strawberry.Info[Context, None]) -> float:
        return runs.progress(await workflows_service.steps(info.context.deps, [self.uuid_]))

    @classmethod
    def from_domain(cls, r: runs.Run) -> WorkflowRun:
        return cls(
            id=strawberry.ID(str(r.id)),
            workflow=r.workflow,
            status=r.status,
            input=cast(JSON, r.input),
            generation=r.generation,
            last_seq=r.last_seq,
            created_at=r.created_at,
            started_at=r.started_at,
            finished_at=r.finished_at,
            error=JobError.from_dict(r.error),
            deduplicated=r.deduplicated,
            uuid_=r.id,
        )


@strawberry.type
class WorkflowRunEdge:
    cursor: str
    node: WorkflowRun


@strawberry.type
class WorkflowRunConnection:
    edges: list[WorkflowRunEdge]
    page_info: PageInfo


@strawberry.input
class WorkflowRunFilter:
    status: list[runs.RunStatus] | None = None
    workflow: list[str] | None = None


@strawberry.input
class SubmitWorkflowInput:
    workflow: str
    input: JSON | None = None
    idempotency_key: str | None = None


@strawberry.input(description="Options of a typed per-workflow submit mutation.")
class WorkflowOptions:
    idempotency_key: str | None = None


@strawberry.type
class WorkflowEvent:
    seq: int
    type: runs.RunEventType
    status: runs.RunStatus = strawberry.field(description="The run's status after the event.")
    step: str | None = strawberry.field(description="The step it is about, if any.")
    step_status: runs.StepStatus | None
    data: JSON | None
    at: datetime

    @classmethod
    def from_domain(cls, e: runs.RunEvent) -> WorkflowEvent:
        return cls(
            seq=e.seq,
            type=e.type,
            status=e.status,
            step=e.step,
            step_status=e.step_status,
            data=cast(JSON, e.data),
            at=e.at,
        )


SubmitWorkflowResult = Annotated[
    WorkflowRun | ue.InvalidInput | ue.UnknownWorkflow | ue.Conflict | ue.PolicyDenied,
    strawberry.union("SubmitWorkflowResult"),
]
CancelWorkflowRunResult = Annotated[
    WorkflowRun | ue.NotFound | ue.InvalidState, strawberry.union("CancelWorkflowRunResult")
]
RetryWorkflowRunResult = Annotated[
    WorkflowRun | ue.NotFound | ue.InvalidState | ue.PolicyDenied,
    strawberry.union("RetryWorkflowRunResult"),
]
