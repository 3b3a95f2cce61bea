"""The transactional outbox in PostgreSQL: jobs committed by producers without a call to
Redis, and the relay that sends them (ADR-0021).

A producer's transaction inserts its jobs QUEUED with `dispatched_at` NULL (the outbox rows
are the jobs themselves) and `pg_notify`s their ids on `CHANNEL`. PostgreSQL delivers a
notification only when, and after, its transaction commits: a rolled-back submit wakes nobody.
Every API and worker process LISTENs (one dedicated connection each); the relay locks the
named jobs that are still QUEUED and unsent (`FOR UPDATE SKIP LOCKED`, so processes share the
work instead of each sending everything), sends them, and marks them in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

import asyncpg
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import rows
from conveyor.domain.models import JobChange

#: One channel per database: a database holds one Conveyor deployment's jobs.
CHANNEL = "conveyor_outbox"
#: How the relays' listening sessions show in `pg_stat_activity`.
APPLICATION_NAME = "conveyor-relay"
#: Ids per notification: 36 characters and a comma each, under PostgreSQL's 8,000-byte payload.
IDS_PER_NOTIFICATION = 200


async def notify(conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID]) -> None:
    """Announce `job_ids` to the relays when (if) the caller's transaction commits."""
    for i in range(0, len(job_ids), IDS_PER_NOTIFICATION):
        payload = ",".join(str(j) for j in job_ids[i : i + IDS_PER_NOTIFICATION])
        await conn.execute(
            text("SELECT pg_notify(:channel, :ids)"), {"channel": CHANNEL, "ids": payload}
        )


def parse(payload: str) -> list[uuid.UUID]:
    """The ids of a notification; anything else on the channel is ignored."""
    found: list[uuid.UUID] = []
    for part in payload.split(","):
        try:
            found.append(uuid.UUID(part))
        except ValueError:
            continue
    return found


_LOCK_UNSENT = f"""
    SELECT {rows.JOB_COLUMNS_QUALIFIED}, {rows.EVENT_COLUMNS}
    FROM jobs JOIN job_events e ON e.job_id = jobs.id AND e.seq = jobs.last_seq
    WHERE jobs.status = 'QUEUED' AND jobs.dispatched_at IS NULL {{which}}
    ORDER BY jobs.created_at LIMIT :limit
    FOR UPDATE OF jobs SKIP LOCKED
"""


async def lock_unsent(
    conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID] | None, limit: int, age: float = 0.0
) -> list[JobChange]:
    """Lock, until the transaction ends, the jobs among `job_ids` (None: any unchanged for
    `age` seconds) that are QUEUED and not yet sent, skipping those another relay holds. Each
    comes with its latest event (a producer's fresh job: SUBMITTED), to publish once sent."""
    params: dict[str, object] = {"limit": limit}
    if job_ids is not None:
        which = "AND jobs.id = ANY(:ids)"
        params["ids"] = list(job_ids)
    else:
        which = "AND jobs.updated_at < now() - make_interval(secs => :age)"
        params["age"] = age
    result = await conn.execute(text(_LOCK_UNSENT.format(which=which)), params)
    return [rows.change(r) for r in result.mappings()]


async def mark_sent(conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID]) -> None:
    """Record that the locked jobs were sent (`lock_unsent` holds their rows)."""
    await conn.execute(
        text("UPDATE jobs SET dispatched_at = now() WHERE id = ANY(:ids)"), {"ids": list(job_ids)}
    )


async def listen(
    database_url: str, on_ids: Callable[[list[uuid.UUID]], None], *, timeout: float = 5.0
) -> asyncpg.Connection:
    """A connection of its own (LISTEN holds a session: not one of the pool's) that calls
    `on_ids` with the ids of every notification on `CHANNEL`."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn: asyncpg.Connection = await asyncpg.connect(
        dsn, timeout=timeout, server_settings={"application_name": APPLICATION_NAME}
    )

    def received(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        on_ids(parse(payload))

    try:
        await conn.add_listener(CHANNEL, received)
    except BaseException:
        await conn.close()
        raise
    return conn
