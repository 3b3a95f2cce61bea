"""Operational views: queue depths, workers, and which queues and kinds live workers cover."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor import metrics
from conveyor.db import stats
from conveyor.db.engine import transaction
from conveyor.domain import policy
from conveyor.domain.errors import Forbidden
from conveyor.domain.models import Job, Principal
from conveyor.domain.states import JobStatus
from conveyor.services.deps import Deps
from conveyor.settings import Settings

log = logging.getLogger(__name__)

#: Statuses of a job that waits for a worker.
WAITING = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.RETRYING})

#: Queue stats are shared by every subscriber of a process for this long.
STATS_TTL_SECONDS = 0.5


async def queue_stats(deps: Deps, principal: Principal) -> list[stats.QueueStats]:
    """Per-queue counts over the jobs the principal may see (cached briefly per scope, so a
    thousand dashboards cost one query per TTL)."""
    scope = policy.read_scope(principal)
    if scope.job_id is not None:
        raise Forbidden("a token for one job cannot read queue statistics")
    key = ("queue_stats", scope.tenant_id, scope.owner_id)
    cached = deps.cache.get(key)
    if isinstance(cached, list):
        return cached
    async with transaction(deps.engine) as conn:
        found = await stats.queues(
            conn,
            owner_id=scope.owner_id,
            tenant_id=scope.tenant_id,
            known=deps.registry.queues(),
        )
    deps.cache.put(key, found, STATS_TTL_SECONDS)
    return found


async def workers(deps: Deps, principal: Principal) -> list[stats.WorkerInfo]:
    """Workers are shared by every tenant; `running_jobs` counts only the caller's tenant."""
    if principal.token_scope is not None and principal.token_scope != "tenant":
        raise Forbidden("a token for one job cannot list workers")
    async with transaction(deps.engine) as conn:
        return await stats.workers(
            conn,
            stale_after_seconds=deps.settings.worker_live_seconds,
            tenant_id=principal.tenant_id,
        )


async def refresh_metrics(deps: Deps, subscriptions: int, shared_feeds: int) -> None:
    """Set the API's gauges (called when /metrics is scraped). Job and queue counts come from
    PostgreSQL at most once per `metrics_cache_seconds`, however often anyone scrapes."""
    metrics.SUBSCRIPTIONS.set(subscriptions)
    metrics.SHARED_FEEDS.set(shared_feeds)
    key = ("metrics",)
    if deps.cache.get(key) is not None:
        return
    # Marked before the reads: concurrent scrapes do not all go to PostgreSQL.
    deps.cache.put(key, True, deps.settings.metrics_cache_seconds)
    async with transaction(deps.engine) as conn:
        counts = await stats.job_counts(conn)
        queues = await stats.queues(conn, owner_id=None, known=deps.registry.queues())
        waiting = await stats.waiting_by_reason(
            conn, stale_after_seconds=max(2 * deps.settings.lease_seconds, 10.0)
        )
    metrics.JOBS.clear()
    for status, kind, n in counts:
        metrics.JOBS.labels(status, kind).set(n)
    for reason, n in waiting.items():
        metrics.JOBS_WAITING.labels(reason).set(n)
    for q in queues:
        metrics.QUEUE_WAITING.labels(q.queue).set(q.waiting)
        metrics.QUEUE_LAG.labels(q.queue).set(q.oldest_waiting_seconds or 0.0)


#: Which queues and kinds live workers cover is shared by a process's requests this long.
COVERAGE_TTL_SECONDS = 2.0


@dataclass(frozen=True)
class Coverage:
    """What the live workers serve: per worker, its queues and the kinds it knows (None: a
    worker from before migration 0005, which runs every kind)."""

    workers: tuple[tuple[frozenset[str], frozenset[str] | None], ...]

    def workers_for(self, kind: str, queue: str) -> int:
        """Live workers that would run a job of `kind` on `queue`."""
        return sum(
            1
            for queues, kinds in self.workers
            if queue in queues and (kinds is None or kind in kinds)
        )

    def serves_queue(self, queue: str) -> bool:
        return any(queue in queues for queues, _ in self.workers)

    def warning(self, kind: str, queue: str) -> str | None:
        """Why a job of `kind` on `queue` would not run now, or None."""
        if self.workers_for(kind, queue):
            return None
        if not self.serves_queue(queue):
            return (
                f"no live worker serves queue {queue!r}: the job waits, QUEUED, until one "
                f"starts (`conveyor worker --queues {queue}`)"
            )
        return (
            f"no live worker on queue {queue!r} knows kind {kind!r}: the job waits, QUEUED, "
            "until one whose job modules define it starts"
        )


async def read_coverage(engine: AsyncEngine, settings: Settings) -> Coverage:
    async with transaction(engine) as conn:
        found = await stats.live_workers(conn, live_seconds=settings.worker_live_seconds)
    return Coverage(
        tuple(
            (frozenset(queues), frozenset(kinds) if kinds is not None else None)
            for queues, kinds in found
        )
    )


async def coverage(deps: Deps) -> Coverage:
    """The live workers' coverage, read at most once per COVERAGE_TTL_SECONDS per process."""
    key = ("coverage",)
    cached = deps.cache.get(key)
    if isinstance(cached, Coverage):
        return cached
    found = await read_coverage(deps.engine, deps.settings)
    deps.cache.put(key, found, COVERAGE_TTL_SECONDS)
    return found


#: A process logs the same "nobody will run this" warning at most once per this many seconds.
UNRUNNABLE_LOG_SECONDS = 60.0


async def unrunnable(deps: Deps, jobs: list[Job]) -> list[str]:
    """Why waiting jobs among `jobs` would not run now (no live worker serves their queue, or
    none there knows their kind): one message per kind and queue, also logged (at most once a
    minute each). Submitting them is fine: they wait, QUEUED, for such a worker (ADR-0019)."""
    waiting = {(j.kind, j.queue) for j in jobs if j.status in WAITING}
    if not waiting:
        return []
    found = await coverage(deps)
    messages = []
    for kind, queue in sorted(waiting):
        message = found.warning(kind, queue)
        if message is None:
            continue
        messages.append(f"{kind}: {message}")
        key = ("unrunnable-logged", kind, queue)
        if deps.cache.get(key) is None:
            deps.cache.put(key, True, UNRUNNABLE_LOG_SECONDS)
            log.warning(
                "jobs submitted that no live worker will run now: %s",
                message,
                extra={"kind": kind, "queue": queue},
            )
    return messages
