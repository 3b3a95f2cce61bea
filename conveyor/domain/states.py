"""Job and attempt states, and the transitions between them: the only place they are defined.

Every status change in the database is a guarded UPDATE whose WHERE clause is built from one
`Transition` below (`db.sql.guard`), plus the attempt number for a worker's writes. The table
of allowed moves is derived from those transitions; tests/integration/test_state_guards.py
drives every guarded statement against a job in every status and checks that exactly the
moves this table allows took place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S", bound=enum.StrEnum)


class JobStatus(enum.StrEnum):
    QUEUED = "QUEUED"  #: waiting in its queue for a worker
    SCHEDULED = "SCHEDULED"  #: waiting for its `run_at` time
    RUNNING = "RUNNING"  #: an attempt holds a lease on it
    RETRYING = "RETRYING"  #: an attempt failed; waiting out the backoff until `next_run_at`
    SUCCEEDED = "SUCCEEDED"  #: finished with a result
    FAILED = "FAILED"  #: out of attempts or failed permanently: the dead-letter set
    CANCELLED = "CANCELLED"  #: cancelled by a client

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_waiting(self) -> bool:
        return self in WAITING


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
WAITING = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.RETRYING})
#: States a client may cancel from. RUNNING is cancelled cooperatively by its worker.
CANCELLABLE = frozenset({*WAITING, JobStatus.RUNNING})
#: States `retryJob` accepts.
RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(frozen=True)
class Transition(Generic[S]):
    """One kind of guarded status change: the statuses it may start from (the guard in its
    UPDATE's WHERE clause, see `db.sql.guard`) and those it may end in. Jobs use it with
    `JobStatus`; workflow runs and steps (`domain.runs`) with theirs."""

    name: str
    sources: frozenset[S]
    targets: frozenset[S]


#: A worker takes a QUEUED job under a new leased attempt.
CLAIM = Transition("claim", frozenset({JobStatus.QUEUED}), frozenset({JobStatus.RUNNING}))
#: The current attempt ends (`domain.outcomes`): done, dead-lettered, retrying after a
#: backoff, cancelled, QUEUED again (released by a stopping worker, or its lease expired), or
#: SCHEDULED again (the handler snoozed: `ctx.snooze`).
FINISH = Transition(
    "finish",
    frozenset({JobStatus.RUNNING}),
    frozenset(
        {
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.RETRYING,
            JobStatus.CANCELLED,
            JobStatus.QUEUED,
            JobStatus.SCHEDULED,
        }
    ),
)
#: A SCHEDULED job's `run_at`, or a RETRYING job's backoff, is due.
PROMOTE = Transition(
    "promote",
    frozenset({JobStatus.SCHEDULED, JobStatus.RETRYING}),
    frozenset({JobStatus.QUEUED}),
)
#: A client cancels a waiting job (a running one is asked to stop and ends through FINISH).
CANCEL = Transition("cancel", WAITING, frozenset({JobStatus.CANCELLED}))
#: `retryJob`: a dead-lettered or cancelled job is sent again with a fresh attempt budget.
RETRY = Transition("retry", RETRYABLE, frozenset({JobStatus.QUEUED}))

TRANSITIONS: tuple[Transition[JobStatus], ...] = (CLAIM, FINISH, PROMOTE, CANCEL, RETRY)

_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    status: frozenset(target for t in TRANSITIONS if status in t.sources for target in t.targets)
    for status in JobStatus
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in _TRANSITIONS[current]


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """Every status from which `target` may be reached."""
    return frozenset(s for s, targets in _TRANSITIONS.items() if target in targets)


class AttemptStatus(enum.StrEnum):
    RUNNING = "RUNNING"  #: holds a lease
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  #: the handler raised
    TIMED_OUT = "TIMED_OUT"  #: the handler overran its deadline and was cancelled
    CANCELLED = "CANCELLED"  #: the job was cancelled while this attempt ran
    LOST = "LOST"  #: the lease expired (worker died) or the worker released it on shutdown


#: The error type of a LOST attempt that a stopping worker released. A released attempt does
#: not count against `max_attempts` (the release raises it by one); a crash's does (ADR-0013).
RELEASED = "WorkerShutdown"
#: The error type of a LOST attempt whose handler snoozed (`ctx.snooze`): not counted either.
SNOOZED = "Snoozed"
#: Error types of attempts that gave the job back without counting.
REFUNDED = (RELEASED, SNOOZED)


class EventType(enum.StrEnum):
    SNAPSHOT = "SNAPSHOT"  #: synthetic: the job's current state (never stored)
    SUBMITTED = "SUBMITTED"
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"  #: a scheduled or retrying job became due, or was released
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    LOG = "LOG"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    RETRY_SCHEDULED = "RETRY_SCHEDULED"
    TIMED_OUT = "TIMED_OUT"
    LOST = "LOST"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    CANCELLED = "CANCELLED"
    RETRIED = "RETRIED"  #: a client sent a failed or cancelled job again
    SNOOZED = "SNOOZED"  #: the handler asked to run again after a delay, without using an attempt


class Priority(enum.IntEnum):
    HIGH = 0
    NORMAL = 1
    LOW = 2
