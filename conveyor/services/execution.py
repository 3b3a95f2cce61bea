"""Worker use cases: claim, report, finish, and the maintenance sweeps. Each owns one
transaction (most are a single guarded statement) and announces after commit."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence

from sqlalchemy import text

from conveyor import metrics
from conveyor.db import execution as repo
from conveyor.db import maintenance as maintenance_repo
from conveyor.db.engine import statements, transaction
from conveyor.domain import outcomes
from conveyor.domain.models import Job, JobChange, PendingEvent
from conveyor.domain.outcomes import Outcome
from conveyor.domain.states import JobStatus
from conveyor.services import engine, outbox
from conveyor.services.deps import Deps
from conveyor.services.engine import StepRef

#: An attempt's end to record: (job, attempt, outcome, its workflow step or None).
Finish = tuple[uuid.UUID, int, Outcome, StepRef | None]

log = logging.getLogger(__name__)


async def claim_many(deps: Deps, *, worker_id: str, job_ids: list[uuid.UUID]) -> list[Job | None]:
    """QUEUED -> RUNNING under a new leased attempt, per job in order; None where a job is not
    claimable (a duplicate delivery, cancelled, claimed elsewhere, gone)."""
    async with statements(deps.engine) as conn:
        claimed = await repo.claim(
            conn,
            job_ids=job_ids,
            worker_id=worker_id,
            lease_seconds=deps.settings.lease_seconds,
        )
    await outbox.announce(deps, [change for _, change in claimed.values()])
    run_ids = [job.run_id for job, _ in claimed.values() if job.run_id is not None]
    if run_ids:
        await engine.mark_started(deps, run_ids)
    answers: list[Job | None] = []
    for job_id in job_ids:
        # Two deliveries of one job in one batch: only the first runs it.
        found = claimed.pop(job_id, None)
        answers.append(found[0] if found else None)
    return answers


def step_of(job: Job) -> StepRef | None:
    """The workflow step a job runs, if any (what `finish_many` routes on)."""
    if job.run_id is None or job.step_id is None or job.map_index is None:
        return None
    return StepRef(job.run_id, job.step_id, job.map_index)


async def finish_many(deps: Deps, outcomes: list[Finish]) -> list[JobChange | None]:
    """Record how attempts ended, per item in order. None: fenced (lease lost, or cancel
    requested meanwhile for a retry/fail outcome; the caller then records the cancellation).

    Jobs on their own keep the fast path: one autocommit statement for the batch. Step jobs
    go through the engine: their outcomes and everything they unblock in one transaction."""
    plain = [(job_id, attempt, o) for job_id, attempt, o, ref in outcomes if ref is None]
    steps = [(job_id, attempt, o, ref) for job_id, attempt, o, ref in outcomes if ref is not None]
    changes: dict[uuid.UUID, JobChange] = {}
    if plain:
        async with statements(deps.engine) as conn:
            changes = await repo.finish(conn, outcomes=plain)
        await outbox.announce(deps, list(changes.values()))
    if steps:
        step_changes = await engine.finish_steps(deps, steps)
        await outbox.announce(deps, list(step_changes.values()))
        changes.update(step_changes)
    return [changes.get(job_id) for job_id, _, _, _ in outcomes]


async def append(deps: Deps, pending: Sequence[PendingEvent]) -> None:
    async with statements(deps.engine) as conn:
        changes = await repo.append_events(conn, pending=pending)
    await outbox.announce(deps, changes)


async def renew_leases(
    deps: Deps, *, worker_id: str, held: Sequence[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], bool]:
    async with statements(deps.engine) as conn:
        return await repo.renew_leases(
            conn, worker_id=worker_id, held=held, lease_seconds=deps.settings.lease_seconds
        )


async def promote_due(deps: Deps) -> int:
    async with statements(deps.engine) as conn:
        changes = await maintenance_repo.promote_due(conn)
    await outbox.announce(deps, changes)
    return len(changes)


async def recover_expired(deps: Deps) -> int:
    """End the attempts whose worker stopped renewing their lease, as the domain decides
    (`outcomes.after_lost_lease`), through the same guarded statement as any outcome."""
    async with transaction(deps.engine) as conn:
        expired = await repo.expired_attempts(conn)
        stale = [(e.job_id, e.attempt) for e in expired if not e.current]
        if stale:
            await repo.abandon_attempts(conn, held=stale)
        found = await repo.finish(
            conn,
            outcomes=[
                (
                    e.job_id,
                    e.attempt,
                    outcomes.after_lost_lease(
                        attempt=e.attempt,
                        max_attempts=e.max_attempts,
                        cancel_requested=e.cancel_requested,
                    ),
                )
                for e in expired
                if e.current
            ],
        )
    changes = list(found.values())
    for c in changes:
        status = c.event.status
        if status is JobStatus.QUEUED:
            metrics.RETRIES.labels(c.kind).inc()
        elif status is JobStatus.FAILED:
            metrics.DEAD_LETTERED.labels(c.kind).inc()
        log.warning(
            "recovered a job whose worker stopped responding (lease expired)",
            extra={
                "job_id": str(c.job_id),
                "attempt": c.attempt,
                "kind": c.kind,
                "status": status.value,
            },
        )
    metrics.RECOVERED.inc(len(changes))
    await outbox.announce(deps, changes)
    return len(changes) + await engine.recover_expired_steps(deps)


#: Advisory lock keys: one worker at a time runs the resend sweep, and one prunes.
SWEEP_LOCK = 0x636F6E76  # "conv"
PRUNE_LOCK = SWEEP_LOCK + 1


async def sweep(deps: Deps, *, redispatch_after: float, resend_all: bool) -> bool:
    """Resend QUEUED jobs never confirmed sent (all of them at once after Redis lost its
    data). False when another worker holds the sweep lock and nothing was done."""
    async with transaction(deps.engine) as conn:
        got = (
            await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SWEEP_LOCK})
        ).scalar_one()
        if not got:
            return False
        targets = await maintenance_repo.undispatched(
            conn, older_than_seconds=0 if resend_all else redispatch_after
        )
    if targets:
        log.info(
            "resending queued jobs",
            extra={"jobs": len(targets), "job_ids": [str(job_id) for job_id, _, _ in targets]},
        )
        await deps.dispatcher.send(targets)
    return True


async def prune(deps: Deps, *, retention_days: float, batch: int, budget_seconds: float) -> bool:
    """Delete finished jobs older than the retention, `batch` at a time, each batch its own
    short transaction, until a batch comes back short or `budget_seconds` are spent. One
    worker at a time prunes. True when caught up (or another worker is pruning)."""
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + budget_seconds
    pruned = batches = 0
    caught_up = True
    while True:
        async with transaction(deps.engine) as conn:
            got = (
                await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PRUNE_LOCK})
            ).scalar_one()
            n = 0
            if got:
                n = await maintenance_repo.prune_finished(
                    conn, older_than_days=retention_days, limit=batch
                )
        if not got:
            break
        pruned += n
        batches += 1
        if n < batch:
            break
        if loop.time() >= stop_at:
            caught_up = False
            break
    if pruned:
        log.info("pruned finished jobs", extra={"jobs": pruned, "batches": batches})
    return caught_up


async def register_worker(
    deps: Deps, *, worker_id: str, host: str, pid: int, queues: list[str], concurrency: int
) -> None:
    async with transaction(deps.engine) as conn:
        await maintenance_repo.register_worker(
            conn, worker_id=worker_id, host=host, pid=pid, queues=queues, concurrency=concurrency
        )


async def stop_worker(deps: Deps, *, worker_id: str) -> None:
    async with transaction(deps.engine) as conn:
        await maintenance_repo.stop_worker(conn, worker_id=worker_id)
