"""Worker-side statements: claim, progress, finish, leases, recovery, promotion, workers.

Every write is fenced by (job id, status, attempt number): a duplicate delivery, a stale worker
whose lease was recovered, or a job cancelled meanwhile matches nothing and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import limits as limits_repo
from conveyor.db import rows
from conveyor.db.rows import EVENT_COLUMNS, JOB_COLUMNS_QUALIFIED
from conveyor.db.sql import LEFT_FOR_ANOTHER_WORKER, guard, typed
from conveyor.domain.models import Job, JobChange, PendingEvent
from conveyor.domain.outcomes import Outcome, after_lost_lease
from conveyor.domain.states import CLAIM, FINISH, EventType

_NULL_EVENT = (
    "CAST(NULL AS int), CAST(NULL AS text), CAST(NULL AS text), CAST(NULL AS float8), "
    "CAST(NULL AS text), CAST(NULL AS jsonb), CAST(NULL AS timestamptz)"
)

_CLAIM = text(
    f"""
    WITH c AS (
        -- Rows are locked in id order (no deadlock between batches), and a locked row is
        -- waited for, never skipped: the lock may be a mere `dispatched_at` mark, and skipping
        -- would read as "not claimable" and drop the message. After the wait, the row is
        -- re-checked. Rows are found by primary key alone, and the status guard reads the
        -- locked row (`c`, the latest version once the lock is held): a `jobs.status =
        -- 'QUEUED'` predicate in the UPDATE lets the planner walk the partial QUEUED index for
        -- every claim (with stale statistics it estimates one entry and joins every QUEUED
        -- job against the batch).
        SELECT id, status, kind, queue, concurrency_key, owner_id FROM jobs
        WHERE id = ANY(:ids) ORDER BY id FOR UPDATE
    ), h AS (
        -- Held back for the limited claim (`db.limits`): a paused queue, or a limit that
        -- governs the job. Without any limit row, the one-time EXISTS skips the lookups.
        SELECT c.id FROM c
        WHERE {guard(CLAIM, "c.status")} AND c.kind = ANY(CAST(:kinds AS text[])) AND (
            EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = c.queue)
            OR ((SELECT EXISTS (SELECT 1 FROM concurrency_limits))
                AND EXISTS (
                    SELECT 1 FROM concurrency_limits l
                    WHERE l.scope IN ('kind:' || c.kind, 'queue:' || c.queue,
                                      'key:' || c.kind || CASE WHEN c.concurrency_key IS NULL
                                                               THEN ':' ELSE '' END,
                                      'tenant:' || (SELECT k.tenant_id FROM api_keys k
                                                    WHERE k.id = c.owner_id)))))
    ), j AS (
        UPDATE jobs SET {limits_repo.CLAIM_SET}
        FROM c WHERE jobs.id = c.id AND {guard(CLAIM, "c.status")}
          AND c.kind = ANY(CAST(:kinds AS text[]))  -- others are left (`leave`)
          AND NOT EXISTS (SELECT 1 FROM h WHERE h.id = c.id)
        RETURNING {JOB_COLUMNS_QUALIFIED}
    ), a AS ({limits_repo.CLAIM_ATTEMPT}
    ), e AS ({limits_repo.CLAIM_EVENT}
    )
    SELECT j.*, {EVENT_COLUMNS}, false AS held FROM j JOIN e ON e.job_id = j.id
    UNION ALL
    SELECT {JOB_COLUMNS_QUALIFIED}, {_NULL_EVENT}, true FROM jobs JOIN h ON h.id = jobs.id
    """
)


async def claim(
    conn: AsyncConnection,
    *,
    job_ids: Sequence[uuid.UUID],
    worker_id: str,
    lease_seconds: float,
    kinds: Sequence[str],
) -> dict[uuid.UUID, tuple[Job, JobChange]]:
    """`claim_or_hold`, for callers that only want the jobs it started."""
    claimed, _ = await claim_or_hold(
        conn, job_ids=job_ids, worker_id=worker_id, lease_seconds=lease_seconds, kinds=kinds
    )
    return claimed


async def claim_or_hold(
    conn: AsyncConnection,
    *,
    job_ids: Sequence[uuid.UUID],
    worker_id: str,
    lease_seconds: float,
    kinds: Sequence[str],
) -> tuple[dict[uuid.UUID, tuple[Job, JobChange]], list[uuid.UUID]]:
    """QUEUED -> RUNNING with a new leased attempt, for each job of one of `kinds` that is
    claimable and that no limit or pause governs; and the QUEUED jobs held back for the
    limited claim (`db.limits`). Jobs missing from both were not claimable (a duplicate
    delivery, cancelled, claimed elsewhere, a kind this worker does not know: `leave`)."""
    result = await conn.execute(
        _CLAIM,
        {"ids": list(job_ids), "worker": worker_id, "lease": lease_seconds, "kinds": list(kinds)},
    )
    claimed: dict[uuid.UUID, tuple[Job, JobChange]] = {}
    held: list[uuid.UUID] = []
    for r in result.mappings():
        if r["held"]:
            held.append(r["id"])
        else:
            claimed[r["id"]] = (rows.job(r), rows.change(r))
    return claimed, held


_LEAVE = text(
    f"""
    WITH l AS (SELECT id, status, kind FROM jobs WHERE id = ANY(:ids) ORDER BY id FOR UPDATE)
    UPDATE jobs SET dispatched_at = {LEFT_FOR_ANOTHER_WORKER} FROM l
    WHERE jobs.id = l.id AND l.status = 'QUEUED' AND NOT (l.kind = ANY(CAST(:kinds AS text[])))
    RETURNING jobs.id, jobs.kind
    """
)


async def leave(
    conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID], kinds: Sequence[str]
) -> list[tuple[uuid.UUID, str]]:
    """Give back the QUEUED jobs among `job_ids` whose kind is not among `kinds` (the worker
    whose message it was does not know it): they stay QUEUED, untouched but for the
    `dispatched_at` mark that has the resend sweep send them again to a worker that knows
    the kind (ADR-0019). Returns (id, kind) of each."""
    result = await conn.execute(_LEAVE, {"ids": list(job_ids), "kinds": list(kinds)})
    return [(r.id, r.kind) for r in result]


_APPEND = typed(
    f"""
    WITH v AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS int[]),
                             CAST(:counts AS int[]), CAST(:progress AS float8[]),
                             CAST(:pmessages AS text[]), CAST(:has_progress AS bool[]))
            AS v(id, attempt, n, progress, pmessage, has_progress)
    ),
    j AS (
        UPDATE jobs SET last_seq = jobs.last_seq + v.n, updated_at = now(),
            progress = CASE WHEN v.has_progress THEN v.progress ELSE jobs.progress END,
            progress_message = CASE WHEN v.has_progress THEN v.pmessage
                                    ELSE jobs.progress_message END
        FROM v
        WHERE jobs.id = v.id AND {guard(FINISH, "jobs.status")} AND jobs.attempt = v.attempt
        RETURNING jobs.*, jobs.last_seq - v.n AS base
    ),
    ev AS (
        SELECT * FROM unnest(CAST(:e_ids AS uuid[]), CAST(:e_idx AS int[]),
                             CAST(:e_types AS text[]), CAST(:e_progress AS float8[]),
                             CAST(:e_messages AS text[]), CAST(:e_data AS jsonb[]))
            AS ev(id, idx, type, progress, message, data)
    ),
    e AS (
        INSERT INTO job_events (job_id, seq, type, status, progress, message, data, at)
        SELECT j.id, j.base + ev.idx, ev.type, j.status, ev.progress, ev.message, ev.data, now()
        FROM ev JOIN j ON j.id = ev.id
        RETURNING *
    )
    SELECT j.*, e.seq AS ev_seq, e.type AS ev_type, e.status AS ev_status,
           e.progress AS ev_progress, e.message AS ev_message, e.data AS ev_data, e.at AS ev_at
    FROM e JOIN j ON j.id = e.job_id ORDER BY e.job_id, e.seq
    """
)


async def append_events(
    conn: AsyncConnection, *, pending: Sequence[PendingEvent]
) -> list[JobChange]:
    """Write progress and log events of many running jobs in one statement.

    Per job, events keep their order and get consecutive seqs; the job's progress becomes the
    last PROGRESS value. Jobs no longer running under that attempt are skipped (fenced).
    """
    per_job: dict[uuid.UUID, list[PendingEvent]] = {}
    for p in pending:
        per_job.setdefault(p.job_id, []).append(p)
    ids, attempts, counts, progress, pmessages, has_progress = [], [], [], [], [], []
    e_ids, e_idx, e_types, e_progress, e_messages, e_data = [], [], [], [], [], []
    for job_id, items in per_job.items():
        last_progress = next((p for p in reversed(items) if p.type is EventType.PROGRESS), None)
        ids.append(job_id)
        attempts.append(items[0].attempt)
        counts.append(len(items))
        progress.append(last_progress.progress if last_progress else None)
        pmessages.append(last_progress.message if last_progress else None)
        has_progress.append(last_progress is not None)
        for i, p in enumerate(items, start=1):
            e_ids.append(job_id)
            e_idx.append(i)
            e_types.append(p.type.value)
            e_progress.append(p.progress)
            e_messages.append(p.message)
            e_data.append(_json(p.data))
    result = await conn.execute(
        _APPEND,
        {
            "ids": ids,
            "attempts": attempts,
            "counts": counts,
            "progress": progress,
            "pmessages": pmessages,
            "has_progress": has_progress,
            "e_ids": e_ids,
            "e_idx": e_idx,
            "e_types": e_types,
            "e_progress": e_progress,
            "e_messages": e_messages,
            "e_data": e_data,
        },
    )
    return [rows.change(r) for r in result.mappings()]


_FINISH = typed(
    f"""
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:attempts AS int[]), CAST(:statuses AS text[]),
            CAST(:attempt_statuses AS text[]), CAST(:event_types AS text[]),
            CAST(:results AS jsonb[]), CAST(:errors AS jsonb[]), CAST(:public_errors AS jsonb[]),
            CAST(:delays AS float8[]), CAST(:terminals AS bool[]), CAST(:unless_cancel AS bool[]),
            CAST(:refunds AS bool[]))
        AS v(id, attempt, status, attempt_status, event_type, result, error, public_error,
             delay, terminal, unless_cancel, refund)
    ),
    j AS (
        UPDATE jobs SET status = v.status, result = v.result, error = v.public_error,
            max_attempts = jobs.max_attempts + CASE WHEN v.refund THEN 1 ELSE 0 END,
            progress = CASE WHEN v.status = 'SUCCEEDED' THEN 1 ELSE jobs.progress END,
            next_run_at = CASE WHEN v.delay IS NULL THEN NULL
                               ELSE now() + make_interval(secs => v.delay) END,
            finished_at = CASE WHEN v.terminal THEN now() ELSE NULL END,
            dispatched_at = NULL, last_seq = jobs.last_seq + 1, updated_at = now()
        FROM v
        WHERE jobs.id = v.id AND {guard(FINISH, "jobs.status")} AND jobs.attempt = v.attempt
          AND (NOT v.unless_cancel OR jobs.cancel_requested_at IS NULL)
        RETURNING {JOB_COLUMNS_QUALIFIED}, v.attempt_status, v.event_type, v.error AS full_error,
                  v.public_error, v.delay
    ),
    a AS (
        UPDATE job_attempts SET status = j.attempt_status, finished_at = now(),
                                lease_expires_at = NULL, error = j.full_error
        FROM j
        WHERE job_attempts.job_id = j.id AND job_attempts.number = j.attempt
          AND job_attempts.status = 'RUNNING'
    ),
    e AS (
        INSERT INTO job_events (job_id, seq, type, status, progress, message, data, at)
        SELECT j.id, j.last_seq, j.event_type, j.status, NULL, NULL,
               jsonb_strip_nulls(jsonb_build_object('attempt', j.attempt,
                   'error', j.public_error, 'delaySeconds', j.delay)),
               now()
        FROM j
        RETURNING *
    )
    SELECT j.*, {EVENT_COLUMNS} FROM j JOIN e ON e.job_id = j.id
    """
)


def public_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """What clients may see of an error: never the traceback."""
    if error is None:
        return None
    return {k: v for k, v in error.items() if k in ("type", "message")}


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


async def finish(
    conn: AsyncConnection, *, outcomes: Sequence[tuple[uuid.UUID, int, Outcome]]
) -> dict[uuid.UUID, JobChange]:
    """End running attempts, one statement for all. A job missing from the answer was fenced
    (stale attempt, or a cancel was requested meanwhile for a retry/fail outcome)."""
    result = await conn.execute(
        _FINISH,
        {
            "ids": [job_id for job_id, _, _ in outcomes],
            "attempts": [attempt for _, attempt, _ in outcomes],
            "statuses": [o.job_status.value for _, _, o in outcomes],
            "attempt_statuses": [o.attempt_status.value for _, _, o in outcomes],
            "event_types": [o.event_type.value for _, _, o in outcomes],
            "results": [_json(o.result) for _, _, o in outcomes],
            "errors": [_json(o.error) for _, _, o in outcomes],
            "public_errors": [_json(public_error(o.error)) for _, _, o in outcomes],
            "delays": [o.delay_seconds for _, _, o in outcomes],
            "terminals": [o.job_status.is_terminal for _, _, o in outcomes],
            "unless_cancel": [o.unless_cancel_requested for _, _, o in outcomes],
            "refunds": [o.refund_attempt for _, _, o in outcomes],
        },
    )
    return {r["id"]: rows.change(r) for r in result.mappings()}


async def renew_leases(
    conn: AsyncConnection,
    *,
    worker_id: str,
    held: Sequence[tuple[uuid.UUID, int]],
    lease_seconds: float,
) -> dict[tuple[uuid.UUID, int], bool]:
    """Extend the leases of the attempts this worker is running. Returns {(job, attempt):
    cancel requested}.

    Only attempts the worker really runs are renewed, so one it lost track of expires and is
    recovered. An attempt missing from the answer is no longer this worker's (recovered
    elsewhere): the worker must stop it without writing.
    """
    result = await conn.execute(
        text(
            """
            WITH held AS (
                SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:numbers AS int[]))
                    AS held(job_id, number)
            ), a AS (
                UPDATE job_attempts SET lease_expires_at = now() + make_interval(secs => :lease)
                FROM held
                WHERE job_attempts.job_id = held.job_id AND job_attempts.number = held.number
                  AND worker_id = :worker AND status = 'RUNNING'
                RETURNING job_attempts.job_id, job_attempts.number
            ), w AS (
                UPDATE workers SET last_heartbeat_at = now() WHERE id = :worker
            )
            SELECT a.job_id, a.number, j.cancel_requested_at IS NOT NULL AS cancel
            FROM a JOIN jobs j ON j.id = a.job_id
            """
        ),
        {
            "worker": worker_id,
            "lease": lease_seconds,
            "ids": [h[0] for h in held],
            "numbers": [h[1] for h in held],
        },
    )
    return {(r.job_id, r.number): r.cancel for r in result}


@dataclass(frozen=True)
class Expired:
    """An attempt whose lease ran out, locked with its job until the transaction ends."""

    job_id: uuid.UUID
    attempt: int
    max_attempts: int
    cancel_requested: bool
    #: The job is still RUNNING under this attempt (else only the attempt row is stale).
    current: bool
    #: A workflow step's job: its step and map index (None otherwise).
    step_id: uuid.UUID | None = None
    map_index: int | None = None


async def expired_attempts(
    conn: AsyncConnection, *, limit: int = 200, run_ids: Sequence[uuid.UUID] | None = None
) -> list[Expired]:
    """Attempts whose lease expired, oldest first, locked with their jobs (skipping rows that
    someone, e.g. the worker finishing them, holds): `domain.outcomes.after_lost_lease`
    decides, `finish` applies, in the same transaction. Jobs on their own, or (`run_ids`)
    only the step jobs of these runs, whose rows the caller locked first."""
    which = "j.run_id IS NULL" if run_ids is None else "j.run_id = ANY(:runs)"
    result = await conn.execute(
        text(
            f"""
            SELECT a.job_id, a.number, j.max_attempts, j.step_id, j.map_index,
                   j.cancel_requested_at IS NOT NULL AS cancel_requested,
                   {guard(FINISH, "j.status")} AND j.attempt = a.number AS current
            FROM job_attempts a JOIN jobs j ON j.id = a.job_id
            WHERE a.status = 'RUNNING' AND a.lease_expires_at < now() AND {which}
            ORDER BY a.lease_expires_at LIMIT :limit
            FOR UPDATE OF a, j SKIP LOCKED
            """
        ),
        {"limit": limit, **({} if run_ids is None else {"runs": list(run_ids)})},
    )
    return [
        Expired(
            r.job_id,
            r.number,
            r.max_attempts,
            r.cancel_requested,
            r.current,
            r.step_id,
            r.map_index,
        )
        for r in result
    ]


async def expired_step_runs(conn: AsyncConnection, *, limit: int = 50) -> list[uuid.UUID]:
    """Runs with a step job whose lease expired (read without locks: the recovery then locks
    each run before its jobs)."""
    result = await conn.execute(
        text(
            """
            SELECT DISTINCT j.run_id FROM job_attempts a JOIN jobs j ON j.id = a.job_id
            WHERE a.status = 'RUNNING' AND a.lease_expires_at < now() AND j.run_id IS NOT NULL
            LIMIT :limit
            """
        ),
        {"limit": limit},
    )
    return [r.run_id for r in result]


async def end_expired(
    conn: AsyncConnection, *, run_ids: Sequence[uuid.UUID] | None = None
) -> tuple[list[Expired], dict[uuid.UUID, JobChange]]:
    """Lease recovery in the caller's transaction: lock the expired attempts (`run_ids` as in
    `expired_attempts`), mark LOST those whose job moved on without them, and end the current
    ones as `domain.outcomes.after_lost_lease` decides, through `finish`. Returns the current
    expired attempts and the changes made."""
    expired = await expired_attempts(conn, run_ids=run_ids)
    stale = [(e.job_id, e.attempt) for e in expired if not e.current]
    if stale:
        await abandon_attempts(conn, held=stale)
    current = [e for e in expired if e.current]
    changes = await finish(
        conn,
        outcomes=[
            (
                e.job_id,
                e.attempt,
                after_lost_lease(
                    attempt=e.attempt,
                    max_attempts=e.max_attempts,
                    cancel_requested=e.cancel_requested,
                ),
            )
            for e in current
        ],
    )
    return current, changes


async def abandon_attempts(conn: AsyncConnection, *, held: Sequence[tuple[uuid.UUID, int]]) -> None:
    """Mark expired attempts LOST whose job moved on without them (no job change)."""
    await conn.execute(
        text(
            """
            UPDATE job_attempts SET status = 'LOST', finished_at = now(), lease_expires_at = NULL
            FROM unnest(CAST(:ids AS uuid[]), CAST(:numbers AS int[])) AS h(job_id, number)
            WHERE job_attempts.job_id = h.job_id AND job_attempts.number = h.number
              AND job_attempts.status = 'RUNNING'
            """
        ),
        {"ids": [h[0] for h in held], "numbers": [h[1] for h in held]},
    )
