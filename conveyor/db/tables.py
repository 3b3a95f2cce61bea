"""The schema as the code expects it, declared once (SQLAlchemy 2 typed declarative).

Nothing at run time reads it: the repository modules write their own SQL (conveyor/db/sql.py;
ADR-0012). It is what migrations are checked against. migrations/env.py hands it to Alembic
(`alembic revision --autogenerate` drafts a revision from the difference), and
tests/integration/test_migrations.py fails when the chain, applied from base, produces
another schema (pytest-alembic's model-vs-DDL check). Change it together with a new revision
(ADR-0016); migrations, never `create_all`, create the tables.

Size: every table, declared once in one place by design (what migrations are checked against).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from conveyor.domain.runs import RunStatus, StepStatus
from conveyor.domain.states import AttemptStatus, JobStatus

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TZ = DateTime(timezone=True)


def _in(
    values: type[JobStatus] | type[AttemptStatus] | type[RunStatus] | type[StepStatus],
) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: Public half of the key, used to find the row; the secret half is only stored hashed.
    lookup: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: `hmac` (HMAC-SHA256 keyed with SECRET_KEY) or `sha256` (keys made before 0002; upgraded
    #: to `hmac` on their first successful use).
    hash_scheme: Mapped[str] = mapped_column(String(16), server_default=text("'hmac'"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    is_superuser: Mapped[bool] = mapped_column(server_default=text("false"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    expires_at: Mapped[datetime | None] = mapped_column(TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(JobStatus)})", name="status"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        CheckConstraint("attempt >= 0 AND max_attempts >= 1", name="attempts"),
        CheckConstraint("priority BETWEEN 0 AND 2", name="priority"),
        # Listing: newest first, per owner and overall, optionally by status or kind.
        Index("ix_jobs_created", text("created_at DESC"), text("id DESC")),
        Index("ix_jobs_owner_created", "owner_id", text("created_at DESC"), text("id DESC")),
        Index("ix_jobs_status_created", "status", text("created_at DESC"), text("id DESC")),
        Index("ix_jobs_kind_created", "kind", text("created_at DESC"), text("id DESC")),
        # Maintenance: due scheduled/retrying jobs, and queued jobs whose message is unconfirmed.
        Index(
            "ix_jobs_due",
            "next_run_at",
            postgresql_where=text("status IN ('SCHEDULED', 'RETRYING')"),
        ),
        Index(
            "ix_jobs_undispatched",
            "created_at",
            postgresql_where=text("status = 'QUEUED' AND dispatched_at IS NULL"),
        ),
        Index("ix_jobs_queued", "queue", "created_at", postgresql_where=text("status = 'QUEUED'")),
        # Queued jobs a worker that did not know their kind gave back (ADR-0019; migration 0006).
        Index(
            "ix_jobs_left",
            "created_at",
            postgresql_where=text("status = 'QUEUED' AND dispatched_at = '-infinity'::timestamptz"),
        ),
        Index("ix_jobs_finished", "finished_at", postgresql_where=text("finished_at IS NOT NULL")),
        Index(
            "uq_jobs_owner_idempotency_key",
            "owner_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    status: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    result: Mapped[Any | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    progress: Mapped[float] = mapped_column(Float, server_default=text("0"))
    progress_message: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer)
    timeout_seconds: Mapped[float] = mapped_column(Float)
    backoff_base_seconds: Mapped[float] = mapped_column(Float)
    backoff_cap_seconds: Mapped[float] = mapped_column(Float)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("api_keys.id", ondelete="RESTRICT")
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    #: Events get gapless per-job sequence numbers from this counter, in the same statement.
    last_seq: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    run_at: Mapped[datetime | None] = mapped_column(TZ)
    next_run_at: Mapped[datetime | None] = mapped_column(TZ)
    #: Set once the Redis message for the current QUEUED period was confirmed sent.
    dispatched_at: Mapped[datetime | None] = mapped_column(TZ)
    started_at: Mapped[datetime | None] = mapped_column(TZ)
    finished_at: Mapped[datetime | None] = mapped_column(TZ)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(TZ)
    #: The schedule that made this job, and the fire time it was made for (ADR-0022).
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    fire_at: Mapped[datetime | None] = mapped_column(TZ)
    #: What the kind's `concurrency_key` computed from the input: the per-key limit's key.
    concurrency_key: Mapped[str | None] = mapped_column(Text)
    #: The job whose handler submitted this one (`ctx.submit`); no foreign key: retention
    #: may prune a parent before its children (migration 0007).
    parent_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    #: A workflow step's job: its run and step, and its item's index in a map (-1: not a map).
    #: No foreign keys on this hot table; `workflow_step_jobs` holds the constraint.
    run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    step_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    map_index: Mapped[int | None] = mapped_column(BigInteger)
    #: The W3C trace context (`traceparent`, `tracestate`) of the submit, when tracing is on:
    #: every claim and attempt of the job joins that trace (ADR-0024).
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSONB)


class JobAttempt(Base):
    __tablename__ = "job_attempts"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(AttemptStatus)})", name="status"),
        Index(
            "ix_job_attempts_lease",
            "lease_expires_at",
            postgresql_where=text("status = 'RUNNING'"),
        ),
        Index("ix_job_attempts_worker", "worker_id", postgresql_where=text("status = 'RUNNING'")),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    worker_id: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    finished_at: Mapped[datetime | None] = mapped_column(TZ)
    lease_expires_at: Mapped[datetime | None] = mapped_column(TZ)
    #: {type, message, traceback}; the traceback never leaves the server.
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class JobEvent(Base):
    __tablename__ = "job_events"

    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[str]] = mapped_column(ARRAY(Text))
    #: The job kinds the worker's job modules define (migration 0005). NULL: a worker of a
    #: release before it, which claims every kind.
    kinds: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    last_heartbeat_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    stopped_at: Mapped[datetime | None] = mapped_column(TZ)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class PolicyVersion(Base):
    """Every version of every tenant's admission policy; the highest version is in force."""

    __tablename__ = "policies"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class PolicyDecision(Base):
    __tablename__ = "policy_decisions"
    __table_args__ = (
        CheckConstraint("decision IN ('allow', 'deny')", name="decision"),
        Index("ix_policy_decisions_tenant", "tenant_id", text("id DESC")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    principal_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    principal_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    job_kind: Mapped[str | None] = mapped_column(String(200))
    job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    decision: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    policy_version: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(64))


class AuditEntry(Base):
    """Append-only (a trigger refuses UPDATE, DELETE and TRUNCATE): migration 0002."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant", "tenant_id", text("id DESC")),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(300))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_addr: Mapped[str | None] = mapped_column(String(100))


class Schedule(Base):
    """A recurring job (ADR-0022): cron or a fixed interval, fired by the scheduler lease."""

    __tablename__ = "schedules"
    __table_args__ = (
        CheckConstraint("(cron IS NULL) <> (every_seconds IS NULL)", name="timing"),
        CheckConstraint("misfire IN ('SKIP', 'RUN_ONCE', 'RUN_ALL')", name="misfire"),
        CheckConstraint("source IN ('API', 'CODE')", name="source"),
        UniqueConstraint("tenant_id", "name"),
        Index("ix_schedules_due", "next_fire_at", postgresql_where=text("paused_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="RESTRICT")
    )
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    input: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    cron: Mapped[str | None] = mapped_column(Text)
    every_seconds: Mapped[float | None] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(Text, server_default=text("'UTC'"))
    #: Intervals count from here (UTC): fire times are anchor + k x every.
    anchor_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    jitter_seconds: Mapped[float] = mapped_column(Float, server_default=text("0"))
    misfire: Mapped[str] = mapped_column(Text, server_default=text("'RUN_ONCE'"))
    misfire_grace_seconds: Mapped[float] = mapped_column(Float, server_default=text("60"))
    max_catchup: Mapped[int] = mapped_column(BigInteger, server_default=text("100"))
    #: Submit options of the jobs it makes (priority, maxAttempts, timeoutSeconds, backoff).
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    source: Mapped[str] = mapped_column(Text, server_default=text("'API'"))
    #: Code-defined schedules: a hash of the definition the last sync wrote.
    definition_hash: Mapped[str | None] = mapped_column(Text)
    #: The key its jobs belong to: the tenant's scheduler key.
    owner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("api_keys.id", ondelete="RESTRICT")
    )
    created_by: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[datetime | None] = mapped_column(TZ)
    paused_by: Mapped[str | None] = mapped_column(Text)
    #: The next nominal fire time (UTC).
    next_fire_at: Mapped[datetime | None] = mapped_column(TZ)
    last_fire_at: Mapped[datetime | None] = mapped_column(TZ)
    skipped_fires: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class ScheduleFire(Base):
    """One fire time of a schedule: the primary key is the exactly-once constraint."""

    __tablename__ = "schedule_fires"
    __table_args__ = (Index("ix_schedule_fires_created", "created_at"),)

    schedule_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True
    )
    fire_at: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    #: The job made for it (no foreign key: the fire outlives its job's retention).
    job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    manual: Mapped[bool] = mapped_column(server_default=text("false"))
    #: Why no job was made (the kind's input no longer valid, a policy denial).
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class Lease(Base):
    """A named lease held by one process at a time (the scheduler's)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    holder: Mapped[str] = mapped_column(Text)
    term: Mapped[int] = mapped_column(BigInteger, server_default=text("1"))
    acquired_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    expires_at: Mapped[datetime] = mapped_column(TZ)


class ConcurrencyLimit(Base):
    """A run-time limit: `kind:K`, `key:K` (per key of kind K), `queue:Q`, `tenant:T`."""

    __tablename__ = "concurrency_limits"
    __table_args__ = (
        CheckConstraint("max_running IS NULL OR max_running > 0", name="max"),
        CheckConstraint(
            "(rate_count IS NULL) = (rate_period_seconds IS NULL) "
            "AND (rate_count IS NULL OR (rate_count > 0 AND rate_period_seconds > 0))",
            name="rate",
        ),
        CheckConstraint("source IN ('code', 'api', 'policy')", name="source"),
    )

    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    max_running: Mapped[int | None] = mapped_column(BigInteger)
    rate_count: Mapped[int | None] = mapped_column(BigInteger)
    rate_period_seconds: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class Throttle(Base):
    """GCRA state of a rate: the theoretical arrival time of the next start."""

    __tablename__ = "throttles"

    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    tat: Mapped[datetime] = mapped_column(TZ)


class ParkedJob(Base):
    """A QUEUED job a limit (or a paused queue, or a throttle until `wake_at`) holds; its
    Redis message was acknowledged, and it is sent again when woken."""

    __tablename__ = "parked_jobs"
    __table_args__ = (
        Index("ix_parked_jobs_scope", "scope", "priority", "queued_at", "job_id"),
        Index("ix_parked_jobs_wake", "wake_at", postgresql_where=text("wake_at IS NOT NULL")),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(BigInteger)
    queued_at: Mapped[datetime] = mapped_column(TZ)
    wake_at: Mapped[datetime | None] = mapped_column(TZ)
    parked_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class PausedQueue(Base):
    __tablename__ = "paused_queues"

    queue: Mapped[str] = mapped_column(Text, primary_key=True)
    paused_by: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class WorkflowRun(Base):
    """One execution of a workflow. Its row is the run's lock: every change of the run or its
    steps takes it first (ADR-0023), and `last_seq` numbers its events without gaps."""

    __tablename__ = "workflow_runs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(RunStatus)})", name="status"),
        CheckConstraint("open_steps >= 0", name="open_steps"),
        Index("ix_workflow_runs_created", text("created_at DESC"), text("id DESC")),
        Index(
            "ix_workflow_runs_owner_created", "owner_id", text("created_at DESC"), text("id DESC")
        ),
        Index(
            "uq_workflow_runs_owner_idempotency_key",
            "owner_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    workflow: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    input: Mapped[dict[str, Any]] = mapped_column(JSONB)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("api_keys.id", ondelete="RESTRICT")
    )
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(BigInteger, server_default=text("1"))
    last_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    #: Steps not yet terminal: the run ends when it reaches 0.
    open_steps: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    started_at: Mapped[datetime | None] = mapped_column(TZ)
    finished_at: Mapped[datetime | None] = mapped_column(TZ)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class WorkflowStep(Base):
    __tablename__ = "workflow_steps"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(StepStatus)})", name="status"),
        CheckConstraint("pending_parents >= 0", name="pending_parents"),
        CheckConstraint("allow_failures >= 0", name="allow_failures"),
        # A map's items: never more created, nor ended, than it has.
        CheckConstraint(
            "expected IS NULL OR (expanded <= expected AND succeeded + failed <= expected)",
            name="map_counts",
        ),
        CheckConstraint("succeeded >= 0 AND failed >= 0 AND expanded >= 0", name="counts"),
        Index("uq_workflow_steps_run_id_key", "run_id", "key", unique=True),
        # Maps whose expansion a crash interrupted (the sweep continues them).
        Index(
            "ix_workflow_steps_expanding",
            "run_id",
            postgresql_where=text("status = 'RUNNING' AND expanded < expected"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workflow_runs.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    is_map: Mapped[bool] = mapped_column(server_default=text("false"))
    status: Mapped[str] = mapped_column(Text)
    pending_parents: Mapped[int] = mapped_column(BigInteger)
    allow_failures: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    expected: Mapped[int | None] = mapped_column(BigInteger)
    expanded: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    succeeded: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    failed: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    started_at: Mapped[datetime | None] = mapped_column(TZ)
    finished_at: Mapped[datetime | None] = mapped_column(TZ)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class WorkflowEdge(Base):
    __tablename__ = "workflow_edges"
    __table_args__ = (Index("ix_workflow_edges_child_id", "child_id"),)

    parent_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workflow_steps.id", ondelete="CASCADE"), primary_key=True
    )
    child_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workflow_steps.id", ondelete="CASCADE"), primary_key=True
    )


class WorkflowStepJob(Base):
    """The constraint that a step never starts twice: one job per (step, map index), -1 for a
    step that is not a map. A second start of the same step or item violates the key."""

    __tablename__ = "workflow_step_jobs"
    __table_args__ = (Index("uq_workflow_step_jobs_job_id", "job_id", unique=True),)

    step_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workflow_steps.id", ondelete="CASCADE"), primary_key=True
    )
    map_index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="CASCADE")
    )


class WorkflowEvent(Base):
    __tablename__ = "workflow_events"

    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workflow_runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    step: Mapped[str | None] = mapped_column(Text)
    step_status: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


jobs = Job.__table__
job_attempts = JobAttempt.__table__
job_events = JobEvent.__table__
api_keys = ApiKey.__table__
workers = Worker.__table__
tenants = Tenant.__table__
policies = PolicyVersion.__table__
policy_decisions = PolicyDecision.__table__
audit_log = AuditEntry.__table__
