"""Operational views: queue depths and workers."""

from __future__ import annotations

from conveyor import metrics
from conveyor.db import stats
from conveyor.db.engine import transaction
from conveyor.domain import policy
from conveyor.domain.errors import Forbidden
from conveyor.domain.models import Principal
from conveyor.services.deps import Deps

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
            stale_after_seconds=max(60.0, deps.settings.lease_seconds * 4),
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
