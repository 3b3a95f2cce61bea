"""Why a job is not running: the answer of `Job.waitingReason`, from facts read in one place
(`services.waiting`), decided here (pure). ADR-0022."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conveyor.domain.limits import Limit
from conveyor.domain.states import JobStatus, Priority

#: Jobs ahead are counted up to this many ("1,000+").
AHEAD_BOUND = 1000


class WaitCode(enum.StrEnum):
    SCHEDULED = "SCHEDULED"  #: runAt (or a schedule's jitter) is later
    RETRY_BACKOFF = "RETRY_BACKOFF"  #: an attempt failed; waiting out the backoff
    QUEUE_PAUSED = "QUEUE_PAUSED"  #: its queue is paused
    CONCURRENCY_LIMIT = "CONCURRENCY_LIMIT"  #: a limit's slots are all held
    THROTTLED = "THROTTLED"  #: a rate defers it to its slot
    NO_WORKER_FOR_QUEUE = "NO_WORKER_FOR_QUEUE"  #: no live worker serves its queue
    NO_WORKER_FOR_KIND = "NO_WORKER_FOR_KIND"  #: workers serve the queue, none knows the kind
    QUEUED = "QUEUED"  #: ready; waiting its turn behind the jobs ahead of it


@dataclass(frozen=True)
class LimitState:
    scope: str
    limit: Limit
    running: int
    #: RUNNING jobs holding its slots (the first few).
    holders: list[uuid.UUID] = field(default_factory=list)


@dataclass(frozen=True)
class Facts:
    status: JobStatus
    queue: str
    kind: str
    priority: Priority
    now: datetime
    run_at: datetime | None
    next_run_at: datetime | None
    paused: tuple[datetime, str | None] | None = None
    #: The parked row: (scope, wake_at).
    parked: tuple[str, datetime | None] | None = None
    #: Limits governing the job, with their use now.
    limits: list[LimitState] = field(default_factory=list)
    workers_serving: int = 0
    #: Live workers of the queue that report their kinds, and those that know this one
    #: (None: no worker reports kinds).
    workers_knowing_kind: int | None = None
    ahead: int = 0


@dataclass(frozen=True)
class WaitingReason:
    code: WaitCode
    message: str
    until: datetime | None = None
    scope: str | None = None
    limit: int | None = None
    running: int | None = None
    holders: list[uuid.UUID] = field(default_factory=list)
    ahead: int | None = None
    ahead_exact: bool = True
    details: dict[str, Any] = field(default_factory=dict)


def _ahead(n: int) -> str:
    return f"{AHEAD_BOUND:,}+" if n >= AHEAD_BOUND else f"{n:,}"


def decide(f: Facts) -> WaitingReason | None:
    """The reason that holds the job now, the most decisive first; None when it runs or
    is finished."""
    if f.status is JobStatus.SCHEDULED:
        until = f.next_run_at or f.run_at
        return WaitingReason(
            WaitCode.SCHEDULED,
            f"scheduled to run at {until.isoformat() if until else 'a later time'}",
            until=until,
        )
    if f.status is JobStatus.RETRYING:
        return WaitingReason(
            WaitCode.RETRY_BACKOFF,
            "an attempt failed; the next one starts after the retry backoff, at "
            f"{f.next_run_at.isoformat() if f.next_run_at else 'a later time'}",
            until=f.next_run_at,
        )
    if f.status is not JobStatus.QUEUED:
        return None
    if f.paused is not None:
        at, by = f.paused
        return WaitingReason(
            WaitCode.QUEUE_PAUSED,
            f"queue {f.queue} is paused (since {at.isoformat()}{f' by {by}' if by else ''}); "
            "it starts when the queue is resumed",
            details={"pausedAt": at.isoformat(), "pausedBy": by},
        )
    if f.workers_serving == 0:
        return WaitingReason(
            WaitCode.NO_WORKER_FOR_QUEUE,
            f"no live worker serves queue {f.queue}: start one with "
            f"`conveyor worker --queues {f.queue}`",
        )
    if f.workers_knowing_kind == 0:
        return WaitingReason(
            WaitCode.NO_WORKER_FOR_KIND,
            f"the live workers of queue {f.queue} do not know kind {f.kind}: deploy a worker "
            "whose code registers it",
        )
    if f.parked is not None and f.parked[1] is not None:
        scope, until = f.parked
        state = next((s for s in f.limits if s.scope == scope), None)
        rate = state.limit.rate if state else None
        return WaitingReason(
            WaitCode.THROTTLED,
            f"throttled by {scope}{f' ({rate})' if rate else ''}: it starts at its slot, "
            f"{until.isoformat() if until else 'soon'}",
            until=until,
            scope=scope,
            details={"rate": str(rate) if rate else None},
        )
    full = [
        s for s in f.limits if s.limit.max_running is not None and s.running >= s.limit.max_running
    ]
    parked_on = f.parked[0] if f.parked else None
    full.sort(key=lambda s: s.scope != parked_on)
    if full:
        s = full[0]
        return WaitingReason(
            WaitCode.CONCURRENCY_LIMIT,
            f"limit {s.scope} allows {s.limit.max_running} running at once and "
            f"{s.running} run now; it starts as soon as one of them ends",
            scope=s.scope,
            limit=s.limit.max_running,
            running=s.running,
            holders=s.holders,
        )
    ahead = f.ahead
    where = f"queue {f.queue} (priority {f.priority.name} or higher)"
    return WaitingReason(
        WaitCode.QUEUED,
        f"next in line in {where}" if ahead == 0 else f"{_ahead(ahead)} jobs ahead in {where}",
        ahead=min(ahead, AHEAD_BOUND),
        ahead_exact=ahead < AHEAD_BOUND,
    )
