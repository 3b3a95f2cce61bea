"""Maintenance statements: promote due jobs, find jobs to resend, forget dispatches after a
Redis data loss, the workers table, and retention."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import rows
from conveyor.db.sql import LEFT_FOR_ANOTHER_WORKER, guard, with_event
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


#: A live worker that serves the job's queue and knows its kind (a worker of a release before
#: migration 0005 has no `kinds` and claims every kind).
_RUNNABLE = """
    EXISTS (SELECT 1 FROM workers w
            WHERE w.stopped_at IS NULL
              AND w.last_heartbeat_at > now() - make_interval(secs => :live)
              AND j.queue = ANY(w.queues) AND (w.kinds IS NULL OR j.kind = ANY(w.kinds)))
"""

_UNDISPATCHED = text(
    f"""
    WITH t AS (
        (SELECT j.id, j.queue, j.priority, j.created_at, false AS left_ FROM jobs j
         WHERE j.status = 'QUEUED' AND j.dispatched_at IS NULL
           AND j.updated_at < now() - make_interval(secs => :age) AND {_RUNNABLE}
           -- A parked job is sent again when woken (ADR-0022), not by this sweep.
           AND NOT EXISTS (SELECT 1 FROM parked_jobs p WHERE p.job_id = j.id)
         ORDER BY j.created_at LIMIT :limit)
        UNION ALL
        (SELECT j.id, j.queue, j.priority, j.created_at, true FROM jobs j
         WHERE j.status = 'QUEUED' AND j.dispatched_at = {LEFT_FOR_ANOTHER_WORKER}
           AND j.updated_at < now() - make_interval(secs => :age) AND {_RUNNABLE}
         ORDER BY j.created_at LIMIT :limit)
    ),
    -- Left jobs are unmarked before they are sent again, so that the sender's mark lands.
    r AS (
        UPDATE jobs SET dispatched_at = NULL FROM t
        WHERE jobs.id = t.id AND t.left_ AND jobs.status = 'QUEUED'
          AND jobs.dispatched_at = {LEFT_FOR_ANOTHER_WORKER}
    )
    SELECT id, queue, priority FROM t ORDER BY created_at LIMIT :limit
    """
)


async def undispatched(
    conn: AsyncConnection, *, older_than_seconds: float, live_seconds: float, limit: int = 1000
) -> list[tuple[uuid.UUID, str, int]]:
    """QUEUED jobs to send again, (id, queue, priority): those whose message was never
    confirmed sent, and those a worker that did not know their kind gave back (`execution.
    leave`), in both cases only while a live worker (heartbeat within `live_seconds`) serves
    the queue and knows the kind. The others wait, QUEUED and unsent (ADR-0019)."""
    result = await conn.execute(
        _UNDISPATCHED, {"age": older_than_seconds, "live": live_seconds, "limit": limit}
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
    kinds: Sequence[str],
    concurrency: int,
) -> None:
    await conn.execute(
        text(
            """
            INSERT INTO workers (id, host, pid, queues, kinds, concurrency, started_at,
                                 last_heartbeat_at)
            VALUES (:id, :host, :pid, :queues, :kinds, :concurrency, now(), now())
            ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
                queues = excluded.queues, kinds = excluded.kinds,
                concurrency = excluded.concurrency,
                started_at = now(), last_heartbeat_at = now(), stopped_at = NULL
            """
        ),
        {
            "id": worker_id,
            "host": host,
            "pid": pid,
            "queues": list(queues),
            "kinds": list(kinds),
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
