"""Operational views: queue depths and workers."""

from __future__ import annotations

import time
from typing import cast

from app import metrics
from app.db import stats
from app.db.engine import transaction
from app.domain.models import Principal
from app.services.jobs import Deps

#: Queue stats are shared by every subscriber of a process for this long.
STATS_TTL_SECONDS = 0.5


async def queue_stats(deps: Deps, principal: Principal) -> list[stats.QueueStats]:
    """Per-queue counts over the jobs the principal may see (cached briefly per scope, so a
    thousand dashboards cost one query per TTL)."""
    scope = None if principal.is_admin else principal.id
    key = ("queue_stats", scope)
    now = time.monotonic()
    cached = deps.cache.get(key)
    if cached is not None and cached[0] > now:
        return cast(list[stats.QueueStats], cached[1])
    async with transaction(deps.engine) as conn:
        found = await stats.queues(conn, owner_id=scope, known=deps.registry.queues())
    deps.cache[key] = (now + STATS_TTL_SECONDS, found)
    return found


async def workers(deps: Deps) -> list[stats.WorkerInfo]:
    async with transaction(deps.engine) as conn:
        return await stats.workers(
            conn, stale_after_seconds=max(60.0, deps.settings.lease_seconds * 4)
        )


async def refresh_metrics(deps: Deps, subscriptions: int, shared_feeds: int) -> None:
    """Set the API's gauges from PostgreSQL (called when /metrics is scraped)."""
    async with transaction(deps.engine) as conn:
        counts = await stats.job_counts(conn)
        queues = await stats.queues(conn, owner_id=None, known=deps.registry.queues())
    metrics.JOBS.clear()
    for status, kind, n in counts:
        metrics.JOBS.labels(status, kind).set(n)
    for q in queues:
        metrics.QUEUE_WAITING.labels(q.queue).set(q.waiting)
        metrics.QUEUE_LAG.labels(q.queue).set(q.oldest_waiting_seconds or 0.0)
    metrics.SUBSCRIPTIONS.set(subscriptions)
    metrics.SHARED_FEEDS.set(shared_feeds)
