"""Operational read models: queue depths and workers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db.tenants import TENANT_KEYS


@dataclass(frozen=True)
class QueueStats:
    queue: str
    waiting: int
    scheduled: int
    running: int
    failed: int
    oldest_waiting_seconds: float | None
    completed_per_minute: int
    failed_per_minute: int
    paused_at: datetime | None = None
    paused_by: str | None = None


async def queues(
    conn: AsyncConnection,
    *,
    owner_id: uuid.UUID | None,
    known: list[str],
    tenant_id: uuid.UUID | None = None,
) -> list[QueueStats]:
    """Per queue counts. Reads the partial indexes on waiting/running jobs plus the last
    minute of finished ones; FAILED is counted through the status index."""
    owner = "AND owner_id = :owner" if owner_id is not None else ""
    if tenant_id is not None:
        owner += f" AND owner_id IN ({TENANT_KEYS})"
    result = await conn.execute(
        text(
            f"""
            SELECT queue,
                count(*) FILTER (WHERE status = 'QUEUED') AS waiting,
                count(*) FILTER (WHERE status IN ('SCHEDULED', 'RETRYING')) AS scheduled,
                count(*) FILTER (WHERE status = 'RUNNING') AS running,
                count(*) FILTER (WHERE status = 'FAILED') AS failed,
                -- A QUEUED job's updated_at is when it became QUEUED (submitted, due after
                -- runAt or a backoff, retried, released): nothing else touches a waiting row.
                extract(epoch FROM now() - min(updated_at) FILTER (WHERE status = 'QUEUED'))
                    AS oldest_waiting_seconds,
                count(*) FILTER (WHERE status = 'SUCCEEDED'
                                 AND finished_at > now() - interval '1 minute') AS completed_pm,
                count(*) FILTER (WHERE status = 'FAILED'
                                 AND finished_at > now() - interval '1 minute') AS failed_pm
            FROM jobs
            WHERE (status IN ('QUEUED', 'SCHEDULED', 'RETRYING', 'RUNNING', 'FAILED')
                   OR finished_at > now() - interval '1 minute') {owner}
            GROUP BY queue
            """
        ),
        {"owner": owner_id, "tenant": tenant_id},
    )
    found = {
        r.queue: QueueStats(
            queue=r.queue,
            waiting=r.waiting,
            scheduled=r.scheduled,
            running=r.running,
            failed=r.failed,
            oldest_waiting_seconds=(
                float(r.oldest_waiting_seconds) if r.oldest_waiting_seconds is not None else None
            ),
            completed_per_minute=r.completed_pm,
            failed_per_minute=r.failed_pm,
        )
        for r in result
    }
    for q in known:
        found.setdefault(q, QueueStats(q, 0, 0, 0, 0, None, 0, 0))
    paused = await conn.execute(text("SELECT queue, paused_at, paused_by FROM paused_queues"))
    for r in paused:
        base = found.get(r.queue, QueueStats(r.queue, 0, 0, 0, 0, None, 0, 0))
        found[r.queue] = replace(base, paused_at=r.paused_at, paused_by=r.paused_by)
    return [found[q] for q in sorted(found)]


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: datetime
    last_heartbeat_at: datetime
    stopped_at: datetime | None
    running_jobs: int


async def workers(
    conn: AsyncConnection, *, stale_after_seconds: float, tenant_id: uuid.UUID | None = None
) -> list[WorkerInfo]:
    """Workers that have not stopped and sent a heartbeat recently (a SIGKILLed worker drops
    out of the list once its heartbeat is older than `stale_after_seconds`). With `tenant_id`,
    `running_jobs` counts only that tenant's jobs: workers are shared, jobs are not."""
    tenant = (
        f"AND a.job_id IN (SELECT j.id FROM jobs j WHERE j.status = 'RUNNING' "
        f"AND j.owner_id IN ({TENANT_KEYS}))"
        if tenant_id is not None
        else ""
    )
    where = (
        "WHERE w.stopped_at IS NULL AND w.last_heartbeat_at > now() - make_interval(secs => :stale)"
    )
    result = await conn.execute(
        text(
            f"""
            SELECT w.*, (SELECT count(*) FROM job_attempts a
                         WHERE a.worker_id = w.id AND a.status = 'RUNNING' {tenant})
                   AS running_jobs
            FROM workers w {where}
            ORDER BY w.started_at DESC
            LIMIT 500
            """
        ),
        {"stale": stale_after_seconds, "tenant": tenant_id},
    )
    return [
        WorkerInfo(
            id=r.id,
            host=r.host,
            pid=r.pid,
            queues=list(r.queues),
            concurrency=r.concurrency,
            started_at=r.started_at,
            last_heartbeat_at=r.last_heartbeat_at,
            stopped_at=r.stopped_at,
            running_jobs=r.running_jobs,
        )
        for r in result
    ]


async def live_workers(
    conn: AsyncConnection, *, live_seconds: float
) -> list[tuple[list[str], list[str] | None]]:
    """(queues, kinds) of each live worker; kinds None for a worker from before migration 0005
    (it claims every kind)."""
    result = await conn.execute(
        text(
            """
            SELECT queues, kinds FROM workers
            WHERE stopped_at IS NULL AND last_heartbeat_at > now() - make_interval(secs => :live)
            """
        ),
        {"live": live_seconds},
    )
    return [(list(r.queues), list(r.kinds) if r.kinds is not None else None) for r in result]


async def job_counts(conn: AsyncConnection) -> list[tuple[str, str, int]]:
    result = await conn.execute(
        text("SELECT status, kind, count(*) AS n FROM jobs GROUP BY status, kind")
    )
    return [(r.status, r.kind, r.n) for r in result]


async def waiting_by_reason(conn: AsyncConnection, *, stale_after_seconds: float) -> dict[str, int]:
    """Waiting jobs of every tenant by the code `Job.waitingReason` would give (metrics; the
    per-kind worker check is left out: such jobs count as QUEUED)."""
    row = (
        await conn.execute(
            text(
                """
                WITH live AS (
                    SELECT DISTINCT unnest(queues) AS queue FROM workers
                    WHERE stopped_at IS NULL
                      AND last_heartbeat_at > now() - make_interval(secs => :stale)
                )
                SELECT
                    count(*) FILTER (WHERE j.status = 'SCHEDULED') AS scheduled,
                    count(*) FILTER (WHERE j.status = 'RETRYING') AS retry,
                    count(*) FILTER (WHERE j.status = 'QUEUED' AND pq.queue IS NOT NULL)
                        AS paused,
                    count(*) FILTER (WHERE j.status = 'QUEUED' AND pq.queue IS NULL
                                     AND live.queue IS NULL) AS no_worker,
                    count(*) FILTER (WHERE j.status = 'QUEUED' AND pq.queue IS NULL
                                     AND live.queue IS NOT NULL AND p.wake_at IS NOT NULL)
                        AS throttled,
                    count(*) FILTER (WHERE j.status = 'QUEUED' AND pq.queue IS NULL
                                     AND live.queue IS NOT NULL AND p.job_id IS NOT NULL
                                     AND p.wake_at IS NULL) AS limited,
                    count(*) FILTER (WHERE j.status = 'QUEUED' AND pq.queue IS NULL
                                     AND live.queue IS NOT NULL AND p.job_id IS NULL) AS queued
                FROM jobs j
                LEFT JOIN parked_jobs p ON p.job_id = j.id
                LEFT JOIN paused_queues pq ON pq.queue = j.queue
                LEFT JOIN live ON live.queue = j.queue
                WHERE j.status IN ('SCHEDULED', 'RETRYING', 'QUEUED')
                """
            ),
            {"stale": stale_after_seconds},
        )
    ).one()
    return {
        "SCHEDULED": row.scheduled,
        "RETRY_BACKOFF": row.retry,
        "QUEUE_PAUSED": row.paused,
        "NO_WORKER_FOR_QUEUE": row.no_worker,
        "THROTTLED": row.throttled,
        "CONCURRENCY_LIMIT": row.limited,
        "QUEUED": row.queued,
    }
