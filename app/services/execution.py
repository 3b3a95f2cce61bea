"""Worker use cases: claim, report, finish, and the maintenance sweeps. Each owns one
transaction and publishes after commit."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import metrics, pubsub
from app.db import execution as repo
from app.db.engine import statements, transaction
from app.db.execution import Outcome, PendingEvent
from app.domain.models import Job, JobChange
from app.domain.states import JobStatus
from app.services.batching import Batcher
from app.services.dispatch import Dispatcher

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Runtime:
    engine: AsyncEngine
    redis: Redis
    dispatcher: Dispatcher
    prefix: str
    worker_id: str
    lease_seconds: float
    #: Claims and outcomes of concurrent jobs share statements (see services.batching).
    claims: Batcher[uuid.UUID, Job | None] = field(init=False)
    outcomes: Batcher[tuple[uuid.UUID, int, Outcome], JobChange | None] = field(init=False)

    def __post_init__(self) -> None:
        self.claims = Batcher(self._claim_many)
        self.outcomes = Batcher(self._finish_many)

    async def _claim_many(self, job_ids: list[uuid.UUID]) -> list[Job | None]:
        async with statements(self.engine) as conn:
            claimed = await repo.claim(
                conn, job_ids=job_ids, worker_id=self.worker_id, lease_seconds=self.lease_seconds
            )
        await pubsub.publish(self.redis, self.prefix, [change for _, change in claimed.values()])
        answers: list[Job | None] = []
        for job_id in job_ids:
            # Two deliveries of one job in one batch: only the first runs it.
            found = claimed.pop(job_id, None)
            answers.append(found[0] if found else None)
        return answers

    async def _finish_many(
        self, outcomes: list[tuple[uuid.UUID, int, Outcome]]
    ) -> list[JobChange | None]:
        async with statements(self.engine) as conn:
            changes = await repo.finish(conn, outcomes=outcomes)
        await pubsub.publish(self.redis, self.prefix, changes.values())
        await self.dispatcher.send(
            (c.job_id, c.queue, int(c.priority))
            for c in changes.values()
            if c.event.status is JobStatus.QUEUED
        )
        return [changes.get(job_id) for job_id, _, _ in outcomes]


async def claim(rt: Runtime, job_id: uuid.UUID) -> Job | None:
    """QUEUED -> RUNNING under a new leased attempt; None if not claimable (duplicate, gone)."""
    return await rt.claims.submit(job_id)


async def append(rt: Runtime, pending: Sequence[PendingEvent]) -> None:
    async with statements(rt.engine) as conn:
        changes = await repo.append_events(conn, pending=pending)
    await pubsub.publish(rt.redis, rt.prefix, changes)


async def finish(
    rt: Runtime, job_id: uuid.UUID, attempt: int, outcome: Outcome
) -> JobChange | None:
    """Record how the attempt ended. None: fenced (lease lost, or cancel requested meanwhile
    for a retry/fail outcome; the caller then records the cancellation)."""
    return await rt.outcomes.submit((job_id, attempt, outcome))


async def renew_leases(
    rt: Runtime, held: Sequence[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], bool]:
    async with statements(rt.engine) as conn:
        return await repo.renew_leases(
            conn, worker_id=rt.worker_id, held=held, lease_seconds=rt.lease_seconds
        )


async def _requeued(rt: Runtime, changes: list[JobChange]) -> None:
    await pubsub.publish(rt.redis, rt.prefix, changes)
    await rt.dispatcher.send(
        (c.job_id, c.queue, int(c.priority)) for c in changes if c.event.status is JobStatus.QUEUED
    )


async def promote_due(rt: Runtime) -> int:
    async with statements(rt.engine) as conn:
        changes = await repo.promote_due(conn)
    await _requeued(rt, changes)
    return len(changes)


async def recover_expired(rt: Runtime) -> int:
    async with statements(rt.engine) as conn:
        changes = await repo.recover_expired(conn)
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
    await _requeued(rt, changes)
    return len(changes)


#: Advisory lock keys: one worker at a time runs the resend sweep, and one prunes.
SWEEP_LOCK = 0x636F6E76  # "conv"
PRUNE_LOCK = SWEEP_LOCK + 1


async def forget_dispatches(rt: Runtime) -> int:
    """Redis lost its data: mark every QUEUED job not sent, so that whichever worker sweeps
    next sends it again. One statement, safe to repeat, no lock needed."""
    async with statements(rt.engine) as conn:
        return await repo.forget_dispatches(conn)


async def sweep(rt: Runtime, *, redispatch_after: float, resend_all: bool) -> bool:
    """Resend QUEUED jobs never confirmed sent (all of them at once after Redis lost its
    data). False when another worker holds the sweep lock and nothing was done."""
    async with transaction(rt.engine) as conn:
        got = (
            await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SWEEP_LOCK})
        ).scalar_one()
        if not got:
            return False
        targets = await repo.undispatched(
            conn, older_than_seconds=0 if resend_all else redispatch_after
        )
    if targets:
        log.info(
            "resending queued jobs",
            extra={"jobs": len(targets), "job_ids": [str(job_id) for job_id, _, _ in targets]},
        )
        await rt.dispatcher.send(targets)
    return True


async def prune(rt: Runtime, *, retention_days: float, batch: int, budget_seconds: float) -> bool:
    """Delete finished jobs older than the retention, `batch` at a time, each batch its own
    short transaction, until a batch comes back short or `budget_seconds` are spent. One
    worker at a time prunes. True when caught up (or another worker is pruning)."""
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + budget_seconds
    pruned = batches = 0
    caught_up = True
    while True:
        async with transaction(rt.engine) as conn:
            got = (
                await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PRUNE_LOCK})
            ).scalar_one()
            n = 0
            if got:
                n = await repo.prune_finished(conn, older_than_days=retention_days, limit=batch)
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
    rt: Runtime, *, host: str, pid: int, queues: list[str], concurrency: int
) -> None:
    async with transaction(rt.engine) as conn:
        await repo.register_worker(
            conn, worker_id=rt.worker_id, host=host, pid=pid, queues=queues, concurrency=concurrency
        )


async def stop_worker(rt: Runtime) -> None:
    async with transaction(rt.engine) as conn:
        await repo.stop_worker(conn, worker_id=rt.worker_id)
