"""Maintenance statements: promote due jobs, find jobs to resend, forget dispatches after a
Redis data loss, the workers table, and retention."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import rows
from conveyor.db.sql import guard, with_event
from conveyor.domain.models import JobChange
from conveyor.domain.states import PROMOTE, EventType, JobStatus

_PROMOTE = with_event(
    f"""
    UPDATE jobs SET status = '{JobStatus.QUEUED}', next_run_at = NULL, dispatched_at = NULL,
                    last_seq = jobs.last_seq + 1, updated_at = now()
    FROM due WHERE jobs.id = due.id
    """,
    f"'{EventType.QUEUED}'",
    before=f"""due AS (
        SELECT id FROM jobs
        WHERE {guard(PROMOTE)} AND next_run_at <= now()
        ORDER BY next_run_at LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ), """,
)


async def promote_due(conn: AsyncConnection, *, limit: int = 500) -> list[JobChange]:
    """SCHEDULED/RETRYING jobs whose time has come become QUEUED (to be dispatched)."""
    result = await conn.execute(_PROMOTE, {"limit": limit})
    return [rows.change(r) for r in result.mappings()]


async def undispatched(
    conn: AsyncConnection, *, older_than_seconds: float, limit: int = 1000
) -> list[tuple[uuid.UUID, str, int]]:
    """QUEUED jobs whose message was never confirmed sent: (id, queue, priority)."""
    result = await conn.execute(
        text(
            """
            SELECT id, queue, priority FROM jobs
            WHERE status = 'QUEUED' AND dispatched_at IS NULL
              AND updated_at < now() - make_interval(secs => :age)
              -- A parked job is sent again when woken (ADR-0022), not by this sweep.
              AND NOT EXISTS (SELECT 1 FROM parked_jobs p WHERE p.job_id = jobs.id)
            ORDER BY created_at LIMIT :limit
            """
        ),
        {"age": older_than_seconds, "limit": limit},
    )
    return [(r.id, r.queue, r.priority) for r in result]


async def forget_dispatches(conn: AsyncConnection) -> int:
    """Redis lost its data: every QUEUED job must be sent again."""
    result = await conn.execute(
        text(
            "UPDATE jobs SET dispatched_at = NULL "
            "WHERE status = 'QUEUED' AND dispatched_at IS NOT NULL"
        )
    )
    return int(result.rowcount or 0)


async def register_worker(
    conn: AsyncConnection,
    *,
    worker_id: str,
    host: str,
    pid: int,
    queues: Sequence[str],
    concurrency: int,
) -> None:
    await conn.execute(
        text(
            """
            INSERT INTO workers (id, host, pid, queues, concurrency, started_at, last_heartbeat_at)
            VALUES (:id, :host, :pid, :queues, :concurrency, now(), now())
            ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
                queues = excluded.queues, concurrency = excluded.concurrency,
                started_at = now(), last_heartbeat_at = now(), stopped_at = NULL
            """
        ),
        {
            "id": worker_id,
            "host": host,
            "pid": pid,
            "queues": list(queues),
            "concurrency": concurrency,
        },
    )


async def stop_worker(conn: AsyncConnection, *, worker_id: str) -> None:
    await conn.execute(
        text("UPDATE workers SET stopped_at = now() WHERE id = :id"), {"id": worker_id}
    )


async def prune_finished(
    conn: AsyncConnection, *, older_than_days: float, limit: int = 1000
) -> int:
    """Delete a batch of finished jobs (attempts and events cascade). Short, bounded locks."""
    result = await conn.execute(
        text(
            """
            DELETE FROM jobs WHERE id IN (
                SELECT id FROM jobs
                WHERE finished_at < now() - make_interval(days => 0, secs => :age)
                ORDER BY finished_at LIMIT :limit
                FOR UPDATE SKIP LOCKED
            )
            """
        ),
        {"age": older_than_days * 86400.0, "limit": limit},
    )
    return int(result.rowcount or 0)
