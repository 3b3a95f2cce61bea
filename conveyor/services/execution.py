"""Worker use cases: claim, report, finish, and the maintenance sweeps. Each owns one
transaction (most are a single guarded statement) and announces after commit."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text

from conveyor import metrics
from conveyor.db import execution as repo
from conveyor.db import limits as limits_repo
from conveyor.db import maintenance as maintenance_repo
from conveyor.db.engine import statements, transaction
from conveyor.domain import limits
from conveyor.domain.models import Job, JobChange, PendingEvent
from conveyor.domain.outcomes import Outcome
from conveyor.domain.states import JobStatus
from conveyor.services import engine, outbox
from conveyor.services.deps import Deps
from conveyor.services.engine import StepRef

#: An attempt's end to record: (job, attempt, outcome, its workflow step or None).
Finish = tuple[uuid.UUID, int, Outcome, StepRef | None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    job: Job
    #: Started by the limited claim: its end frees a slot that a parked job may be waiting for.
    limited: bool


async def claim_many(
    deps: Deps, *, worker_id: str, job_ids: list[uuid.UUID]
) -> list[Claimed | None]:
    """QUEUED -> RUNNING under a new leased attempt, per job in order; None where a job is not
    claimable (a duplicate delivery, cancelled, claimed elsewhere, gone, or of a kind this
    process's registry does not know: such a job is left QUEUED for a worker that knows it),
    or is held by a paused queue, a concurrency limit or a throttle (then it is parked,
    ADR-0022: the caller acknowledges its message either way, and a parked job is sent again
    when woken)."""
    kinds = deps.registry.names()
    async with statements(deps.engine) as conn:
        claimed, held = await repo.claim_or_hold(
            conn,
            job_ids=job_ids,
            worker_id=worker_id,
            lease_seconds=deps.settings.lease_seconds,
            kinds=kinds,
        )
        unclaimed = set(job_ids) - claimed.keys()
        left = await repo.leave(conn, job_ids=list(unclaimed), kinds=kinds) if unclaimed else []
    if left:
        log.info(
            "left jobs of kinds this worker does not know, for a worker that knows them",
            extra={
                "job_ids": [str(job_id) for job_id, _ in left],
                "kinds": sorted({kind for _, kind in left}),
            },
        )
    limited: dict[uuid.UUID, tuple[Job, JobChange]] = {}
    if held:
        limited = await _claim_limited(deps, worker_id=worker_id, job_ids=held)
    changes = [change for _, change in claimed.values()] + [c for _, c in limited.values()]
    await outbox.announce(deps, changes)
    run_ids = [job.run_id for job, _ in [*claimed.values(), *limited.values()] if job.run_id]
    if run_ids:
        await engine.mark_started(deps, run_ids)
    answers: list[Claimed | None] = []
    for job_id in job_ids:
        # Two deliveries of one job in one batch: only the first runs it.
        found = claimed.pop(job_id, None)
        if found is not None:
            answers.append(Claimed(found[0], limited=False))
            continue
        found = limited.pop(job_id, None)
        answers.append(Claimed(found[0], limited=True) if found else None)
    return answers


async def _claim_limited(
    deps: Deps, *, worker_id: str, job_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[Job, JobChange]]:
    """The claim of jobs a limit or a pause governs: one transaction that locks the jobs and
    their limited scopes, counts what runs, starts what fits and parks the rest."""
    async with transaction(deps.engine) as conn:
        locked = await limits_repo.lock_candidates(conn, job_ids=job_ids)
        parks = [
            limits_repo.Park(job_id, limits.paused_scope(queue), 0, locked.now or _EPOCH)
            for job_id, queue in locked.paused.items()
        ]
        admitted: list[uuid.UUID] = []
        tats: dict[str, datetime] = {}
        if locked.candidates:
            counted = [
                s
                for s in locked.locked_scopes
                if locked.limits[limits.limit_scope_of(s)].max_running is not None
            ]
            throttled = [
                s
                for s in locked.locked_scopes
                if locked.limits[limits.limit_scope_of(s)].rate is not None
            ]
            running, state = await limits_repo.usage(conn, scopes=counted, throttled=throttled)
            assert locked.now is not None
            decision = limits.decide(locked.candidates, locked.limits, running, state, locked.now)
            admitted, tats = decision.admitted, decision.tats
            by_id = {c.id: c for c in locked.candidates}
            for job_id, scope in decision.blocked.items():
                c = by_id[job_id]
                parks.append(limits_repo.Park(job_id, scope, c.priority, c.created_at))
            for job_id, (scope, until) in decision.deferred.items():
                c = by_id[job_id]
                parks.append(limits_repo.Park(job_id, scope, c.priority, c.created_at, until))
        if not admitted and not parks:
            return {}
        started = await limits_repo.apply(
            conn,
            admitted=admitted,
            parks=parks,
            tats=tats,
            worker_id=worker_id,
            lease_seconds=deps.settings.lease_seconds,
        )
    if parks:
        log.info(
            "jobs held by a limit, a throttle or a paused queue (parked)",
            extra={"jobs": len(parks), "scopes": sorted({p.scope for p in parks})[:20]},
        )
    return started


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


async def wake_freed(deps: Deps, job_ids: list[uuid.UUID]) -> list[None]:
    """Jobs that held limited slots stopped running: send one parked job per freed slot."""
    async with statements(deps.engine) as conn:
        woken = await limits_repo.wake_freed(conn, job_ids=job_ids)
    if woken:
        await deps.dispatcher.send(woken)
    return [None] * len(job_ids)


#: One worker at a time sweeps the parked jobs.
PARK_LOCK = 0x636F6E76 + 2


async def sweep_parked(deps: Deps) -> int:
    """Wake what the wake-ups missed (ADR-0022): throttled jobs whose slot came, jobs of a
    queue no longer paused or a limit removed or raised, and slots freed by a job whose end
    woke nobody (it started before its limit existed, or the wake raced a park). Drops the
    parked rows of jobs cancelled while parked. Returns how many jobs it sent."""
    woken: list[tuple[uuid.UUID, str, int]] = []
    async with transaction(deps.engine) as conn:
        got = (
            await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PARK_LOCK})
        ).scalar_one()
        if not got:
            return 0
        await limits_repo.drop_stale_parks(conn)
        woken += await limits_repo.wake_due(conn)
        scopes = await limits_repo.parked_scopes(conn)
        if scopes:
            paused = await limits_repo.paused_queues(conn)
            governing = {limits.limit_scope_of(s) for s in scopes if not s.startswith("paused:")}
            rows = await limits_repo.get_limits(conn, scopes=sorted(governing))
            found = {r["scope"]: limits_repo.limit_of(r) for r in rows}
            counted = [
                s
                for s in scopes
                if not s.startswith("paused:")
                and (lim := found.get(limits.limit_scope_of(s))) is not None
                and lim.max_running is not None
            ]
            running = await limits_repo.running_per_scope(conn, scopes=counted)
            wanted: dict[str, int] = {}
            for scope, waiting in scopes.items():
                if scope.startswith("paused:"):
                    if scope.removeprefix("paused:") not in paused:
                        wanted[scope] = waiting
                    continue
                lim = found.get(limits.limit_scope_of(scope))
                if lim is None or lim.max_running is None:
                    wanted[scope] = waiting
                else:
                    wanted[scope] = min(waiting, lim.max_running - running.get(scope, 0))
            woken += await limits_repo.wake(conn, wanted=wanted)
    if woken:
        log.info("woke parked jobs", extra={"jobs": len(woken)})
        await deps.dispatcher.send(woken)
    return len(woken)


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
        _, found = await repo.end_expired(conn)
    changes = list(found.values())
    for c in changes:
        log.warning(
            "recovered a job whose worker stopped responding (lease expired)",
            extra={
                "job_id": str(c.job_id),
                "attempt": c.attempt,
                "kind": c.kind,
                "status": c.event.status.value,
            },
        )
    await outbox.announce(deps, changes)
    recovered = changes + await engine.recover_expired_steps(deps)
    for c in recovered:
        if c.event.status is JobStatus.QUEUED:
            metrics.RETRIES.labels(c.kind).inc()
        elif c.event.status is JobStatus.FAILED:
            metrics.DEAD_LETTERED.labels(c.kind).inc()
    metrics.RECOVERED.inc(len(recovered))
    if recovered:
        # A LOST attempt frees its slot (ADR-0022), a step job's too.
        await wake_freed(deps, [c.job_id for c in recovered])
    return len(recovered)


#: Advisory lock keys: one worker at a time runs the resend sweep, and one prunes.
SWEEP_LOCK = 0x636F6E76  # "conv"
PRUNE_LOCK = SWEEP_LOCK + 1


async def sweep(deps: Deps, *, redispatch_after: float, resend_all: bool) -> bool:
    """Resend QUEUED jobs never confirmed sent (all of them at once after Redis lost its
    data) or given back by a worker that did not know their kind, as long as a live worker
    serves the queue and knows the kind. False when another worker holds the sweep lock and
    nothing was done."""
    async with transaction(deps.engine) as conn:
        got = (
            await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SWEEP_LOCK})
        ).scalar_one()
        if not got:
            return False
        targets = await maintenance_repo.undispatched(
            conn,
            older_than_seconds=0 if resend_all else redispatch_after,
            live_seconds=deps.settings.worker_live_seconds,
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
    """Record a starting worker: its queues, and the kinds its registry knows (ADR-0019)."""
    async with transaction(deps.engine) as conn:
        await maintenance_repo.register_worker(
            conn,
            worker_id=worker_id,
            host=host,
            pid=pid,
            queues=queues,
            kinds=deps.registry.names(),
            concurrency=concurrency,
        )


async def stop_worker(deps: Deps, *, worker_id: str) -> None:
    async with transaction(deps.engine) as conn:
        await maintenance_repo.stop_worker(conn, worker_id=worker_id)
