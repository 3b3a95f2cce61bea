"""Statements of run-time limits, throttles, paused queues and parked jobs (ADR-0022).

A claim of jobs that a limit governs runs in one transaction (`services.execution`):
`lock_candidates` locks the jobs (id order, as every claim) and then, in the same statement,
takes a transaction-scoped advisory lock per limited scope in sorted order; `usage` counts
the RUNNING jobs of those scopes in a statement that starts after the locks are held (so it
sees every claim that committed before); `apply` starts the admitted jobs and parks the
others. RUNNING rows are the count: nothing to drift or leak, and an attempt recovered as
LOST stops counting with its job.

Size (~470 lines): the run-time limits' SQL (scopes, usage, parks, wake-ups, queue pauses),
which the claim's one transaction uses together.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import rows
from conveyor.db.rows import EVENT_COLUMNS, JOB_COLUMNS_QUALIFIED
from conveyor.db.sql import typed
from conveyor.domain.limits import Candidate, Limit, Rate
from conveyor.domain.models import Job, JobChange
from conveyor.domain.states import EventType, JobStatus

#: The scopes a job is counted in (`domain.limits.Candidate.count_scopes`), as SQL over a
#: jobs row `j` (and its key `k` for the tenant).
_COUNT_SCOPES = """(VALUES ('kind:' || j.kind, 'kind:' || j.kind),
                       ('queue:' || j.queue, 'queue:' || j.queue),
                       ('tenant:' || k.tenant_id, 'tenant:' || k.tenant_id),
                       ('key:' || j.kind || ':' || j.concurrency_key, 'key:' || j.kind))"""

#: What starting a job sets (shared by the plain claim in `db.execution`).
CLAIM_SET = f"""status = '{JobStatus.RUNNING}', attempt = attempt + 1, last_seq = last_seq + 1,
                started_at = coalesce(started_at, now()), updated_at = now(),
                dispatched_at = NULL, next_run_at = NULL"""

CLAIM_ATTEMPT = """
    INSERT INTO job_attempts (job_id, number, status, worker_id, started_at, lease_expires_at)
    SELECT j.id, j.attempt, 'RUNNING', :worker, now(), now() + make_interval(secs => :lease)
    FROM j"""

CLAIM_EVENT = f"""
    INSERT INTO job_events (job_id, seq, type, status, progress, message, data, at)
    SELECT j.id, j.last_seq, '{EventType.STARTED}', j.status, NULL, NULL,
           jsonb_build_object('attempt', j.attempt, 'workerId', CAST(:worker AS text)), now()
    FROM j
    RETURNING *"""


@dataclass(frozen=True)
class Locked:
    """A claim batch's jobs, locked, with what the limits need."""

    candidates: list[Candidate]
    #: Jobs of the batch that are QUEUED on a paused queue.
    paused: dict[uuid.UUID, str]
    limits: dict[str, Limit]
    #: The counted scopes whose advisory locks this transaction now holds.
    locked_scopes: list[str]
    #: The database's clock once the locks were held.
    now: datetime | None


_LOCK = text(
    """
    WITH c AS MATERIALIZED (
        SELECT j.id, j.status, j.kind, j.queue, j.concurrency_key, j.priority, j.created_at,
               k.tenant_id,
               EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = j.queue) AS paused
        FROM jobs j JOIN api_keys k ON k.id = j.owner_id
        WHERE j.id = ANY(:ids)
        ORDER BY j.id
        FOR UPDATE OF j
    ), s AS MATERIALIZED (
        SELECT DISTINCT v.scope, v.limit_scope
        FROM c CROSS JOIN LATERAL (VALUES
            ('kind:' || c.kind, 'kind:' || c.kind),
            ('queue:' || c.queue, 'queue:' || c.queue),
            ('tenant:' || c.tenant_id, 'tenant:' || c.tenant_id),
            ('key:' || c.kind || ':' || c.concurrency_key, 'key:' || c.kind)
        ) AS v(scope, limit_scope)
        JOIN concurrency_limits l ON l.scope = v.limit_scope
        WHERE c.status = 'QUEUED' AND NOT c.paused AND v.scope IS NOT NULL
    ), x AS MATERIALIZED (
        -- After every row lock above (s reads all of c): one lock per scope, in order.
        SELECT count(pg_advisory_xact_lock(hashtextextended(o.scope, 7))) AS n,
               array_agg(o.scope) AS scopes
        FROM (SELECT DISTINCT scope FROM s ORDER BY scope) AS o
    ), l AS (
        SELECT coalesce(jsonb_object_agg(l.scope, jsonb_build_array(
                   l.max_running, l.rate_count, l.rate_period_seconds)), '{}') AS limits
        FROM concurrency_limits l WHERE l.scope IN (SELECT limit_scope FROM s)
    )
    SELECT c.id, c.status, c.kind, c.queue, c.concurrency_key, c.priority, c.created_at,
           c.tenant_id, c.paused, l.limits, x.scopes, clock_timestamp() AS now
    FROM c, l, x
    """
)


def _limits(doc: Mapping[str, Any]) -> dict[str, Limit]:
    out: dict[str, Limit] = {}
    for scope, (max_running, count, period) in doc.items():
        rate = Rate(int(count), float(period)) if count is not None else None
        out[scope] = Limit(int(max_running) if max_running is not None else None, rate)
    return out


async def lock_candidates(conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID]) -> Locked:
    """Lock the batch's jobs, then its limited scopes (in one statement, rows first)."""
    result = (await conn.execute(_LOCK, {"ids": list(job_ids)})).mappings().all()
    candidates: list[Candidate] = []
    paused: dict[uuid.UUID, str] = {}
    limits: dict[str, Limit] = {}
    scopes: list[str] = []
    now: datetime | None = None
    for r in result:
        limits = _limits(r["limits"] or {})
        scopes = list(r["scopes"] or [])
        now = r["now"]
        if r["status"] != JobStatus.QUEUED:
            continue
        if r["paused"]:
            paused[r["id"]] = r["queue"]
            continue
        candidates.append(
            Candidate(
                id=r["id"],
                kind=r["kind"],
                queue=r["queue"],
                tenant_id=r["tenant_id"],
                key=r["concurrency_key"],
                priority=r["priority"],
                created_at=r["created_at"],
            )
        )
    return Locked(candidates, paused, limits, sorted(scopes), now)


async def usage(
    conn: AsyncConnection, *, scopes: Sequence[str], throttled: Sequence[str]
) -> tuple[dict[str, int], dict[str, datetime]]:
    """RUNNING jobs per counted scope, and the GCRA state of throttled scopes."""
    running: dict[str, int] = {}
    tats: dict[str, datetime] = {}
    if scopes:
        result = await conn.execute(
            text(
                f"""
                SELECT v.scope, count(*) AS n
                FROM jobs j JOIN api_keys k ON k.id = j.owner_id
                CROSS JOIN LATERAL {_COUNT_SCOPES} AS v(scope, limit_scope)
                WHERE j.status = 'RUNNING' AND v.scope = ANY(:scopes)
                GROUP BY v.scope
                """
            ),
            {"scopes": list(scopes)},
        )
        running = {r.scope: int(r.n) for r in result}
    if throttled:
        result = await conn.execute(
            text("SELECT scope, tat FROM throttles WHERE scope = ANY(:scopes)"),
            {"scopes": list(throttled)},
        )
        tats = {r.scope: r.tat for r in result}
    return running, tats


@dataclass(frozen=True)
class Park:
    job_id: uuid.UUID
    scope: str
    priority: int
    queued_at: datetime
    #: Throttled: when its slot comes (None: until a slot of `scope` frees).
    wake_at: datetime | None = None


_APPLY = typed(
    f"""
    WITH adm AS (
        SELECT unnest(CAST(:admitted AS uuid[])) AS id
    ), j AS (
        UPDATE jobs SET {CLAIM_SET}
        FROM adm WHERE jobs.id = adm.id AND jobs.status = 'QUEUED'
        RETURNING {JOB_COLUMNS_QUALIFIED}
    ), a AS ({CLAIM_ATTEMPT}
    ), e AS ({CLAIM_EVENT}
    ), unparked AS (
        DELETE FROM parked_jobs WHERE job_id IN (SELECT id FROM adm)
    ), parked AS (
        INSERT INTO parked_jobs (job_id, scope, priority, queued_at, wake_at, parked_at)
        SELECT * , now() FROM unnest(CAST(:p_ids AS uuid[]), CAST(:p_scopes AS text[]),
                             CAST(:p_priorities AS bigint[]),
                             CAST(:p_queued AS timestamptz[]), CAST(:p_wake AS timestamptz[]))
        ON CONFLICT (job_id) DO UPDATE SET scope = excluded.scope, wake_at = excluded.wake_at,
                                           parked_at = now()
    ), th AS (
        INSERT INTO throttles (scope, tat)
        SELECT * FROM unnest(CAST(:t_scopes AS text[]), CAST(:t_tats AS timestamptz[]))
        ON CONFLICT (scope) DO UPDATE SET tat = excluded.tat
    )
    SELECT j.*, {EVENT_COLUMNS} FROM j JOIN e ON e.job_id = j.id
    """
)


async def apply(
    conn: AsyncConnection,
    *,
    admitted: Sequence[uuid.UUID],
    parks: Sequence[Park],
    tats: Mapping[str, datetime],
    worker_id: str,
    lease_seconds: float,
) -> dict[uuid.UUID, tuple[Job, JobChange]]:
    """Start the admitted jobs (as the plain claim does), park the others, store the rates'
    new state: one statement."""
    result = await conn.execute(
        _APPLY,
        {
            "admitted": list(admitted),
            "worker": worker_id,
            "lease": lease_seconds,
            "p_ids": [p.job_id for p in parks],
            "p_scopes": [p.scope for p in parks],
            "p_priorities": [p.priority for p in parks],
            "p_queued": [p.queued_at for p in parks],
            "p_wake": [p.wake_at for p in parks],
            "t_scopes": list(tats),
            "t_tats": list(tats.values()),
        },
    )
    return {r["id"]: (rows.job(r), rows.change(r)) for r in result.mappings()}


_WAKE = """
    WITH want AS ({want}), x AS (
        SELECT p.job_id FROM want CROSS JOIN LATERAL (
            SELECT job_id FROM parked_jobs p
            WHERE p.scope = want.scope AND p.wake_at IS NULL
            ORDER BY p.priority, p.queued_at, p.job_id
            LIMIT want.n
            FOR UPDATE SKIP LOCKED
        ) AS p
    ), d AS (
        DELETE FROM parked_jobs WHERE job_id IN (SELECT job_id FROM x) RETURNING job_id
    )
    UPDATE jobs SET dispatched_at = NULL FROM d
    WHERE jobs.id = d.job_id AND jobs.status = 'QUEUED'
    RETURNING jobs.id, jobs.queue, jobs.priority
    """

_WAKE_SCOPES = text(
    _WAKE.format(
        want="SELECT * FROM unnest(CAST(:scopes AS text[]), CAST(:counts AS bigint[])) "
        "AS w(scope, n)"
    )
)

#: One slot per finished job in each scope it was counted in.
_WAKE_FREED = text(
    _WAKE.format(
        want=f"""
        SELECT v.scope, count(*) AS n
        FROM jobs j JOIN api_keys k ON k.id = j.owner_id
        CROSS JOIN LATERAL {_COUNT_SCOPES} AS v(scope, limit_scope)
        WHERE j.id = ANY(:ids) AND v.scope IS NOT NULL
        GROUP BY v.scope"""
    )
)


async def wake(
    conn: AsyncConnection, *, wanted: Mapping[str, int]
) -> list[tuple[uuid.UUID, str, int]]:
    """Unpark up to `wanted[scope]` jobs per scope (priority, then oldest first): they are
    to be sent again. Their `dispatched_at` is cleared, so the resend sweep sends them if
    this process fails to."""
    wanted = {s: n for s, n in wanted.items() if n > 0}
    if not wanted:
        return []
    result = await conn.execute(
        _WAKE_SCOPES, {"scopes": list(wanted), "counts": list(wanted.values())}
    )
    return [(r.id, r.queue, r.priority) for r in result]


async def wake_freed(
    conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, str, int]]:
    """These jobs stopped running: wake one parked job per slot they freed."""
    result = await conn.execute(_WAKE_FREED, {"ids": list(job_ids)})
    return [(r.id, r.queue, r.priority) for r in result]


_WAKE_DUE = text(
    """
    WITH d AS (
        DELETE FROM parked_jobs WHERE job_id IN (
            SELECT job_id FROM parked_jobs WHERE wake_at <= now()
            ORDER BY wake_at LIMIT :limit FOR UPDATE SKIP LOCKED
        ) RETURNING job_id
    )
    UPDATE jobs SET dispatched_at = NULL FROM d
    WHERE jobs.id = d.job_id AND jobs.status = 'QUEUED'
    RETURNING jobs.id, jobs.queue, jobs.priority
    """
)


async def wake_due(conn: AsyncConnection, *, limit: int = 1000) -> list[tuple[uuid.UUID, str, int]]:
    """Throttled jobs whose slot has come."""
    result = await conn.execute(_WAKE_DUE, {"limit": limit})
    return [(r.id, r.queue, r.priority) for r in result]


async def drop_stale_parks(conn: AsyncConnection) -> int:
    """Parked rows of jobs no longer QUEUED (cancelled while parked)."""
    result = await conn.execute(
        text(
            "DELETE FROM parked_jobs p USING jobs j WHERE j.id = p.job_id AND j.status <> 'QUEUED'"
        )
    )
    return int(result.rowcount or 0)


async def parked_scopes(conn: AsyncConnection, *, limit: int = 1000) -> dict[str, int]:
    """Scopes holding parked jobs (not throttled ones), with how many each."""
    result = await conn.execute(
        text(
            "SELECT scope, count(*) AS n FROM parked_jobs WHERE wake_at IS NULL "
            "GROUP BY scope ORDER BY min(parked_at) LIMIT :limit"
        ),
        {"limit": limit},
    )
    return {r.scope: int(r.n) for r in result}


async def get_limits(conn: AsyncConnection, *, scopes: Sequence[str] | None = None) -> list[Any]:
    """Limit rows (all, or these scopes)."""
    where = "WHERE scope = ANY(:scopes)" if scopes is not None else ""
    result = await conn.execute(
        text(f"SELECT * FROM concurrency_limits {where} ORDER BY scope"),
        {"scopes": list(scopes or [])},
    )
    return list(result.mappings())


def limit_of(row: Mapping[str, Any]) -> Limit:
    rate = (
        Rate(int(row["rate_count"]), float(row["rate_period_seconds"]))
        if row["rate_count"] is not None
        else None
    )
    return Limit(row["max_running"], rate)


async def set_limit(
    conn: AsyncConnection,
    *,
    scope: str,
    limit: Limit | None,
    source: str,
    by: str | None,
    unless_source: str | None = None,
) -> None:
    """Store (or, with None, remove) a limit. `unless_source`: leave a row from that source
    alone (code sync does not overwrite what the API set)."""
    guard = "WHERE concurrency_limits.source <> :unless" if unless_source else ""
    if limit is None or (limit.max_running is None and limit.rate is None):
        await conn.execute(
            text(
                "DELETE FROM concurrency_limits WHERE scope = :scope"
                + (" AND source <> :unless" if unless_source else "")
            ),
            {"scope": scope, "unless": unless_source},
        )
        return
    await conn.execute(
        text(
            f"""
            INSERT INTO concurrency_limits (scope, max_running, rate_count, rate_period_seconds,
                                            source, updated_by, updated_at)
            VALUES (:scope, :max, :count, :period, :source, :by, now())
            ON CONFLICT (scope) DO UPDATE SET max_running = excluded.max_running,
                rate_count = excluded.rate_count,
                rate_period_seconds = excluded.rate_period_seconds,
                source = excluded.source, updated_by = excluded.updated_by, updated_at = now()
            {guard}
            """
        ),
        {
            "scope": scope,
            "max": limit.max_running,
            "count": limit.rate.count if limit.rate else None,
            "period": limit.rate.period_seconds if limit.rate else None,
            "source": source,
            "by": by,
            "unless": unless_source,
        },
    )


async def running_per_scope(conn: AsyncConnection, *, scopes: Sequence[str]) -> dict[str, int]:
    running, _ = await usage(conn, scopes=scopes, throttled=())
    return running


async def holders(conn: AsyncConnection, *, scope: str, limit: int = 10) -> list[uuid.UUID]:
    """RUNNING jobs counted in `scope` (the ones holding its slots), oldest first."""
    result = await conn.execute(
        text(
            f"""
            SELECT j.id FROM jobs j JOIN api_keys k ON k.id = j.owner_id
            CROSS JOIN LATERAL {_COUNT_SCOPES} AS v(scope, limit_scope)
            WHERE j.status = 'RUNNING' AND v.scope = :scope
            ORDER BY j.started_at LIMIT :limit
            """
        ),
        {"scope": scope, "limit": limit},
    )
    return [r.id for r in result]


# Paused queues.


async def pause_queue(conn: AsyncConnection, *, queue: str, by: str) -> bool:
    """True when the queue was not paused before."""
    result = await conn.execute(
        text(
            "INSERT INTO paused_queues (queue, paused_by) VALUES (:q, :by) "
            "ON CONFLICT (queue) DO NOTHING"
        ),
        {"q": queue, "by": by},
    )
    return result.rowcount == 1


async def resume_queue(conn: AsyncConnection, *, queue: str) -> bool:
    result = await conn.execute(text("DELETE FROM paused_queues WHERE queue = :q"), {"q": queue})
    return result.rowcount == 1


async def paused_queues(conn: AsyncConnection) -> dict[str, tuple[datetime, str | None]]:
    result = await conn.execute(text("SELECT queue, paused_at, paused_by FROM paused_queues"))
    return {r.queue: (r.paused_at, r.paused_by) for r in result}


async def wake_all(
    conn: AsyncConnection, *, scope: str, limit: int = 1000
) -> list[tuple[uuid.UUID, str, int]]:
    """Unpark up to `limit` jobs of one scope (a resumed queue, a removed limit)."""
    return await wake(conn, wanted={scope: limit})


async def parked(conn: AsyncConnection, *, job_id: uuid.UUID) -> Park | None:
    row = (
        await conn.execute(text("SELECT * FROM parked_jobs WHERE job_id = :id"), {"id": job_id})
    ).first()
    if row is None:
        return None
    return Park(row.job_id, row.scope, row.priority, row.queued_at, row.wake_at)
