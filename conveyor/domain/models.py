"""Domain values: what a job, an attempt and an event are, independent of storage and API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from conveyor.domain.states import AttemptStatus, EventType, JobStatus, Priority


@dataclass(frozen=True, slots=True)
class Job:
    id: uuid.UUID
    kind: str
    queue: str
    status: JobStatus
    priority: Priority
    payload: dict[str, Any]
    result: Any
    error: dict[str, Any] | None
    progress: float
    progress_message: str | None
    attempt: int
    max_attempts: int
    timeout_seconds: float
    backoff_base_seconds: float
    backoff_cap_seconds: float
    owner_id: uuid.UUID
    idempotency_key: str | None
    last_seq: int
    created_at: datetime
    run_at: datetime | None
    next_run_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    #: The schedule that made the job and the fire time it was made for (ADR-0022).
    schedule_id: uuid.UUID | None = None
    fire_at: datetime | None = None
    #: The key its kind computed from the input (per-key concurrency limits count by it).
    concurrency_key: str | None = None
    #: The job whose handler submitted this one (`ctx.submit`).
    parent_id: uuid.UUID | None = None
    #: A workflow step's job: its run and step (None for a job submitted on its own), and its
    #: item's index in a map step (-1 for a step that is not a map).
    run_id: uuid.UUID | None = None
    step_id: uuid.UUID | None = None
    map_index: int | None = None
    #: True when submitJob returned an existing job for a reused idempotency key.
    deduplicated: bool = False
    #: The W3C trace context the job was submitted under (`traceparent`...), when tracing
    #: is on: its claims and attempts join that trace (ADR-0024).
    trace_context: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    job_id: uuid.UUID
    number: int
    status: AttemptStatus
    worker_id: str | None
    started_at: datetime
    finished_at: datetime | None
    error: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """A progress or log event a running attempt reported, waiting for the batched write."""

    job_id: uuid.UUID
    attempt: int
    type: EventType  # PROGRESS or LOG
    progress: float | None
    message: str | None
    data: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Event:
    job_id: uuid.UUID
    seq: int
    type: EventType
    status: JobStatus
    progress: float | None
    message: str | None
    data: dict[str, Any] | None
    at: datetime

    @property
    def is_terminal(self) -> bool:
        return self.type in TERMINAL_EVENTS

    @classmethod
    def snapshot(cls, job: Job) -> Event:
        """A synthetic event (never stored) carrying the job's current state and its latest
        stored seq: what a subscriber starts from."""
        return cls(
            job_id=job.id,
            seq=job.last_seq,
            type=EventType.SNAPSHOT,
            status=job.status,
            progress=job.progress,
            message=job.progress_message,
            data=None,
            at=datetime.now(UTC),
        )


TERMINAL_EVENTS = frozenset({EventType.SUCCEEDED, EventType.FAILED, EventType.CANCELLED})


#: Keys created before tenants existed, and `--admin` keys from the CLI, belong here.
DEFAULT_TENANT_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key, or a short-lived token minted from one (`token_scope`)."""

    id: uuid.UUID
    name: str
    tenant_id: uuid.UUID = DEFAULT_TENANT_ID
    #: One of `domain.policy.Role`'s values (kept a string so this module stays dependency-free).
    role: str = "submitter"
    #: Platform level: manages tenants (created from the CLI only).
    is_superuser: bool = False
    #: Tokens only: "tenant" (read the tenant) or "job:<uuid>" (read one job); None for keys.
    token_scope: str | None = None
    #: When the credential stops working (the key's expiry; a token's, or its key's if
    #: sooner). None: never. Open WebSockets are closed then.
    expires_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def key_id(self) -> uuid.UUID:
        """The API key behind the call (a token's minting key): what revocation targets."""
        return self.id


@dataclass(frozen=True, slots=True)
class JobChange:
    """A stored event plus the job fields live subscribers filter on: what gets broadcast."""

    event: Event
    kind: str
    queue: str
    owner_id: uuid.UUID
    attempt: int
    #: The job's progress after this event (events other than PROGRESS carry none of their own).
    progress: float
    progress_message: str | None
    priority: Priority = Priority.NORMAL

    @property
    def job_id(self) -> uuid.UUID:
        return self.event.job_id

    @classmethod
    def snapshot(cls, job: Job) -> JobChange:
        """The job's current state as a change (sent after a subscriber may have missed some)."""
        return cls(
            event=Event.snapshot(job),
            kind=job.kind,
            queue=job.queue,
            owner_id=job.owner_id,
            attempt=job.attempt,
            progress=job.progress,
            progress_message=job.progress_message,
            priority=job.priority,
        )


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as anyone may see it: never its secret (only a keyed hash is stored)."""

    id: uuid.UUID
    name: str
    tenant_id: uuid.UUID
    #: One of `domain.policy.Role`'s values.
    role: str
    is_superuser: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def principal(self) -> Principal:
        """The caller this key authenticates."""
        return Principal(
            id=self.id,
            name=self.name,
            tenant_id=self.tenant_id,
            role=self.role,
            is_superuser=self.is_superuser,
            expires_at=self.expires_at,
        )


@dataclass(frozen=True, slots=True)
class Tenant:
    id: uuid.UUID
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A change to record in the append-only audit log, in the transaction of the change."""

    tenant_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    actor_name: str
    action: str
    target: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    client_addr: str | None


@dataclass(frozen=True, slots=True)
class AuditRecord(AuditEntry):
    """An audit entry as stored."""

    id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    """An admission decision to record, in the transaction of its effect."""

    tenant_id: uuid.UUID
    principal_id: uuid.UUID
    principal_name: str
    action: str
    job_kind: str | None
    job_id: uuid.UUID | None
    allowed: bool
    rule: str
    reason: str
    policy_version: int
    request_id: str | None


@dataclass(frozen=True, slots=True)
class DecisionRecord(DecisionEntry):
    """An admission decision as stored."""

    id: int
    at: datetime
