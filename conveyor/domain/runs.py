"""Workflow runs and their steps: states, named transitions, events and values (ADR-0023).

A run is one execution of a workflow (a DAG of steps); a step runs one job, or, for a map
step, one job per item of a parent's result. Every change of a run or step is a guarded
UPDATE built from a `Transition` below (`db.sql.guard`), taken while the run's row is locked,
in the transaction that records the step job's outcome (`services.engine`).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from conveyor.domain.states import JobStatus, Transition


class RunStatus(enum.StrEnum):
    QUEUED = "QUEUED"  #: submitted; no step job has started yet
    RUNNING = "RUNNING"  #: a step job started
    SUCCEEDED = "SUCCEEDED"  #: every step succeeded (maps within their allowed failures)
    FAILED = "FAILED"  #: no step can run any more and one of them failed (or was skipped)
    CANCELLED = "CANCELLED"  #: a client cancelled it

    @property
    def is_terminal(self) -> bool:
        return self in RUN_TERMINAL


RUN_TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
RUN_ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})


class StepStatus(enum.StrEnum):
    BLOCKED = "BLOCKED"  #: waiting for its parents
    RUNNING = "RUNNING"  #: its job (or its map's jobs) exist and are not all finished
    SUCCEEDED = "SUCCEEDED"  #: its job succeeded (a map: all items done, failures allowed)
    FAILED = "FAILED"  #: its job failed for good (a map: more failed items than allowed)
    SKIPPED = "SKIPPED"  #: a parent did not succeed: it will not run (until a retry)
    CANCELLED = "CANCELLED"  #: the run was cancelled before it finished

    @property
    def is_terminal(self) -> bool:
        return self in STEP_TERMINAL


STEP_TERMINAL = frozenset(
    {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED}
)
STEP_OPEN = frozenset({StepStatus.BLOCKED, StepStatus.RUNNING})
#: What `retryWorkflowRun` runs again: everything that did not succeed.
STEP_RETRYABLE = frozenset({StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED})

#: A step job's first claim marks the run started.
RUN_START = Transition("run.start", frozenset({RunStatus.QUEUED}), frozenset({RunStatus.RUNNING}))
#: No step is open any more: the run ends.
RUN_FINISH = Transition(
    "run.finish", RUN_ACTIVE, frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED})
)
RUN_CANCEL = Transition("run.cancel", RUN_ACTIVE, frozenset({RunStatus.CANCELLED}))
RUN_RETRY = Transition(
    "run.retry",
    frozenset({RunStatus.FAILED, RunStatus.CANCELLED}),
    frozenset({RunStatus.RUNNING}),
)
RUN_TRANSITIONS = (RUN_START, RUN_FINISH, RUN_CANCEL, RUN_RETRY)

#: The last parent succeeded: the step's job(s) are created in the same transaction.
STEP_START = Transition(
    "step.start", frozenset({StepStatus.BLOCKED}), frozenset({StepStatus.RUNNING})
)
#: The step's job (or its map's last item) ended.
STEP_FINISH = Transition(
    "step.finish",
    frozenset({StepStatus.RUNNING}),
    frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED}),
)
#: A parent did not succeed.
STEP_SKIP = Transition(
    "step.skip", frozenset({StepStatus.BLOCKED}), frozenset({StepStatus.SKIPPED})
)
STEP_CANCEL = Transition("step.cancel", STEP_OPEN, frozenset({StepStatus.CANCELLED}))
STEP_RETRY = Transition("step.retry", STEP_RETRYABLE, frozenset({StepStatus.BLOCKED}))
STEP_TRANSITIONS = (STEP_START, STEP_FINISH, STEP_SKIP, STEP_CANCEL, STEP_RETRY)


def step_outcome_of(job_status: JobStatus) -> StepStatus:
    """What a single step's job ending in `job_status` makes of the step."""
    return StepStatus.SUCCEEDED if job_status is JobStatus.SUCCEEDED else StepStatus.FAILED


def map_outcome(
    *, expected: int, succeeded: int, failed: int, allow_failures: int
) -> StepStatus | None:
    """A map step after some of its items ended: FAILED as soon as more items failed than
    allowed (fail fast: the rest are cancelled), SUCCEEDED once every item ended within the
    allowance, else still RUNNING (None)."""
    if failed > allow_failures:
        return StepStatus.FAILED
    if succeeded + failed >= expected:
        return StepStatus.SUCCEEDED
    return None


def run_outcome(step_statuses: list[StepStatus]) -> RunStatus | None:
    """The run once no step is open: SUCCEEDED when all succeeded, else FAILED. None while a
    step is open."""
    if any(s in STEP_OPEN for s in step_statuses):
        return None
    if all(s is StepStatus.SUCCEEDED for s in step_statuses):
        return RunStatus.SUCCEEDED
    return RunStatus.FAILED


class RunEventType(enum.StrEnum):
    SNAPSHOT = "SNAPSHOT"  #: synthetic: the run's current state (never stored)
    SUBMITTED = "SUBMITTED"
    STARTED = "STARTED"  #: the first step job was claimed
    STEP_STARTED = "STEP_STARTED"  #: a step's job(s) were created
    MAP_EXPANDED = "MAP_EXPANDED"  #: a chunk of a map's item jobs was created
    MAP_PROGRESS = "MAP_PROGRESS"  #: items of a map ended (counts in `data`)
    STEP_SUCCEEDED = "STEP_SUCCEEDED"
    STEP_FAILED = "STEP_FAILED"
    STEP_SKIPPED = "STEP_SKIPPED"
    STEP_CANCELLED = "STEP_CANCELLED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    RETRIED = "RETRIED"  #: a client ran the steps that did not succeed again


RUN_TERMINAL_EVENTS = frozenset(
    {RunEventType.SUCCEEDED, RunEventType.FAILED, RunEventType.CANCELLED}
)
STEP_EVENT = {
    StepStatus.RUNNING: RunEventType.STEP_STARTED,
    StepStatus.SUCCEEDED: RunEventType.STEP_SUCCEEDED,
    StepStatus.FAILED: RunEventType.STEP_FAILED,
    StepStatus.SKIPPED: RunEventType.STEP_SKIPPED,
    StepStatus.CANCELLED: RunEventType.STEP_CANCELLED,
}
RUN_EVENT = {
    RunStatus.RUNNING: RunEventType.STARTED,
    RunStatus.SUCCEEDED: RunEventType.SUCCEEDED,
    RunStatus.FAILED: RunEventType.FAILED,
    RunStatus.CANCELLED: RunEventType.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class Run:
    id: uuid.UUID
    workflow: str
    status: RunStatus
    input: dict[str, Any]
    owner_id: uuid.UUID
    idempotency_key: str | None
    generation: int
    last_seq: int
    open_steps: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: dict[str, Any] | None
    #: True when submitWorkflow returned an existing run for a reused idempotency key.
    deduplicated: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    id: uuid.UUID
    run_id: uuid.UUID
    key: str
    kind: str
    is_map: bool
    status: StepStatus
    pending_parents: int
    allow_failures: int
    #: Map steps: how many items (None until the parent's result is known).
    expected: int | None
    #: Map steps: item jobs created so far (expansion runs in chunks).
    expanded: int
    succeeded: int
    failed: int
    started_at: datetime | None
    finished_at: datetime | None
    error: dict[str, Any] | None

    @property
    def units(self) -> int:
        """Jobs this step stands for, for progress: its items (a map), else one."""
        return (self.expected if self.expected is not None else 1) if self.is_map else 1

    @property
    def units_done(self) -> int:
        if self.is_map and self.expected is not None:
            return (
                min(self.expected, self.succeeded + self.failed)
                if not (self.status.is_terminal)
                else self.expected
            )
        return 1 if self.status.is_terminal else 0


def progress(steps: list[Step]) -> float:
    """Fraction of the run's jobs that ended (a map counts its items)."""
    total = sum(s.units for s in steps)
    return sum(s.units_done for s in steps) / total if total else 0.0


@dataclass(frozen=True, slots=True)
class RunEvent:
    run_id: uuid.UUID
    seq: int
    type: RunEventType
    #: The run's status after the event.
    status: RunStatus
    step: str | None
    step_status: StepStatus | None
    data: dict[str, Any] | None
    at: datetime

    @property
    def is_terminal(self) -> bool:
        return self.type in RUN_TERMINAL_EVENTS

    @classmethod
    def snapshot(cls, run: Run) -> RunEvent:
        return cls(
            run_id=run.id,
            seq=run.last_seq,
            type=RunEventType.SNAPSHOT,
            status=run.status,
            step=None,
            step_status=None,
            data=None,
            at=datetime.now(UTC),
        )


@dataclass(frozen=True, slots=True)
class PendingRunEvent:
    """A run event decided inside the engine's transaction, numbered when written."""

    type: RunEventType
    step: str | None = None
    step_status: StepStatus | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RunChange:
    """A stored run event plus who may see it: what gets broadcast."""

    event: RunEvent
    owner_id: uuid.UUID
    workflow: str

    @property
    def run_id(self) -> uuid.UUID:
        return self.event.run_id


@dataclass(frozen=True)
class RunFilterArgs:
    statuses: tuple[RunStatus, ...] = ()
    workflows: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
