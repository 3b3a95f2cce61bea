"""Client-facing job reads and writes: submit, look up, list, cancel, retry.

Functions take the connection keyword-only and never commit: the calling service owns the
transaction. Writes that change a job return `JobChange`s to publish after commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import rows
from app.db.sql import with_event
from app.domain.models import Attempt, Event, Job, JobChange
from app.domain.states import RETRYABLE, WAITING, JobStatus


def _in(statuses: frozenset[JobStatus]) -> str:
    return ", ".join(f"'{s.value}'" for s in sorted(statuses))


@dataclass(frozen=True)
class NewJob:
    kind: str
    queue: str
    priority: int
    payload: dict[str, Any]
    max_attempts: int
    timeout_seconds: float
    backoff_base_seconds: float
    backoff_cap_seconds: float
    owner_id: uuid.UUID
    idempotency_key: str | None
    run_at: datetime | None


@dataclass(frozen=True)
class JobFilter:
    statuses: tuple[JobStatus, ...] = ()
    kinds: tuple[str, ...] = ()
    queue: str | None = None
    #: None: every job (an admin); otherwise only this principal's jobs.
    owner_id: uuid.UUID | None = None


_INSERT = with_event(
    """
    INSERT INTO jobs (id, kind, queue, priority, status, payload, max_attempts, timeout_seconds,
                      backoff_base_seconds, backoff_cap_seconds, owner_id, idempotency_key,
                      last_seq, run_at, next_run_at, created_at, updated_at)
    VALUES (:id, :kind, :queue, :priority, :status, :payload, :max_attempts, :timeout_seconds,
            :backoff_base_seconds, :backoff_cap_seconds, :owner_id, :idempotency_key,
            1, :run_at, :run_at, now(), now())
    ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    """,
    "CASE WHEN j.status = 'SCHEDULED' THEN 'SCHEDULED' ELSE 'SUBMITTED' END",
    json_params=("payload",),
)


async def insert(conn: AsyncConnection, *, new: NewJob) -> JobChange | None:
    """Insert a job and its first event. None when the idempotency key is already taken."""
    scheduled = new.run_at is not None
    params = {
        "id": uuid.uuid4(),
        "kind": new.kind,
        "queue": new.queue,
        "priority": new.priority,
        "status": JobStatus.SCHEDULED if scheduled else JobStatus.QUEUED,
        "payload": new.payload,
        "max_attempts": new.max_attempts,
        "timeout_seconds": new.timeout_seconds,
        "backoff_base_seconds": new.backoff_base_seconds,
        "backoff_cap_seconds": new.backoff_cap_seconds,
        "owner_id": new.owner_id,
        "idempotency_key": new.idempotency_key,
        "run_at": new.run_at,
    }
    row = (await conn.execute(_INSERT, params)).mappings().first()
    return rows.change(row) if row else None


async def get_by_idempotency_key(
    conn: AsyncConnection, *, owner_id: uuid.UUID, key: str
) -> Job | None:
    row = (
        (
            await conn.execute(
                text(
                    f"SELECT {rows.JOB_COLUMNS} FROM jobs "
                    "WHERE owner_id = :owner AND idempotency_key = :key"
                ),
                {"owner": owner_id, "key": key},
            )
        )
        .mappings()
        .first()
    )
    return rows.job(row) if row else None


async def get(
    conn: AsyncConnection, *, job_id: uuid.UUID, owner_id: uuid.UUID | None
) -> Job | None:
    """The job, if it exists and `owner_id` may see it (None: any owner)."""
    sql = f"SELECT {rows.JOB_COLUMNS} FROM jobs WHERE id = :id"
    params: dict[str, Any] = {"id": job_id}
    if owner_id is not None:
        sql += " AND owner_id = :owner"
        params["owner"] = owner_id
    row = (await conn.execute(text(sql), params)).mappings().first()
    return rows.job(row) if row else None


async def get_many(conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Job]:
    result = await conn.execute(
        text(f"SELECT {rows.JOB_COLUMNS} FROM jobs WHERE id = ANY(:ids)"), {"ids": list(job_ids)}
    )
    return {r["id"]: rows.job(r) for r in result.mappings()}


def _where(flt: JobFilter) -> tuple[list[str], dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if flt.owner_id is not None:
        clauses.append("owner_id = :owner")
        params["owner"] = flt.owner_id
    if flt.statuses:
        clauses.append("status = ANY(:statuses)")
        params["statuses"] = [s.value for s in flt.statuses]
    if flt.kinds:
        clauses.append("kind = ANY(:kinds)")
        params["kinds"] = list(flt.kinds)
    if flt.queue is not None:
        clauses.append("queue = :queue")
        params["queue"] = flt.queue
    return clauses, params


async def page(
    conn: AsyncConnection,
    *,
    flt: JobFilter,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[Job], bool]:
    """Newest first, keyset-paginated on (created_at, id): deep pages cost what the first does."""
    clauses, params = _where(flt)
    if after is not None:
        clauses.append("(created_at, id) < (:after_at, :after_id)")
        params["after_at"], params["after_id"] = after
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    params["limit"] = first + 1
    result = await conn.execute(
        text(
            f"SELECT {rows.JOB_COLUMNS} FROM jobs {where} "
            "ORDER BY created_at DESC, id DESC LIMIT :limit"
        ),
        params,
    )
    found = [rows.job(r) for r in result.mappings()]
    return found[:first], len(found) > first


async def count(conn: AsyncConnection, *, flt: JobFilter) -> int:
    clauses, params = _where(flt)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return int(
        (await conn.execute(text(f"SELECT count(*) FROM jobs {where}"), params)).scalar_one()
    )


async def attempts(conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID]) -> list[Attempt]:
    result = await conn.execute(
        text("SELECT * FROM job_attempts WHERE job_id = ANY(:ids) ORDER BY job_id, number"),
        {"ids": list(job_ids)},
    )
    return [rows.attempt(r) for r in result.mappings()]


async def events(
    conn: AsyncConnection, *, job_id: uuid.UUID, after: int = 0, limit: int = 1000
) -> list[Event]:
    result = await conn.execute(
        text(
            "SELECT * FROM job_events WHERE job_id = :id AND seq > :after ORDER BY seq LIMIT :limit"
        ),
        {"id": job_id, "after": after, "limit": limit},
    )
    return [rows.event(r) for r in result.mappings()]


_CANCEL_WAITING = with_event(
    f"""
    UPDATE jobs SET status = 'CANCELLED', cancel_requested_at = now(), finished_at = now(),
                    next_run_at = NULL, last_seq = last_seq + 1, updated_at = now()
    WHERE id = :id AND status IN ({_in(WAITING)})
    """,
    "'CANCELLED'",
    data="jsonb_build_object('by', CAST(:by AS text))",
)

_REQUEST_CANCEL = with_event(
    """
    UPDATE jobs SET cancel_requested_at = now(), last_seq = last_seq + 1, updated_at = now()
    WHERE id = :id AND status = 'RUNNING' AND cancel_requested_at IS NULL
    """,
    "'CANCEL_REQUESTED'",
    data="jsonb_build_object('by', CAST(:by AS text))",
)


async def cancel(conn: AsyncConnection, *, job_id: uuid.UUID, by: str) -> JobChange | None:
    """Cancel a waiting job now, or ask a running job's worker to stop it.

    None when the job is in no cancellable state (or was already asked to stop).
    """
    for statement in (_CANCEL_WAITING, _REQUEST_CANCEL):
        row = (await conn.execute(statement, {"id": job_id, "by": by})).mappings().first()
        if row:
            return rows.change(row)
    return None


_RETRY = with_event(
    f"""
    UPDATE jobs SET status = 'QUEUED', max_attempts = attempt + :budget, error = NULL,
                    result = NULL, progress = 0, progress_message = NULL, finished_at = NULL,
                    cancel_requested_at = NULL, dispatched_at = NULL, next_run_at = NULL,
                    last_seq = last_seq + 1, updated_at = now()
    WHERE id = :id AND status IN ({_in(RETRYABLE)})
    """,
    "'RETRIED'",
    data="jsonb_build_object('by', CAST(:by AS text), 'budget', CAST(:budget AS int))",
)


async def retry(
    conn: AsyncConnection, *, job_id: uuid.UUID, budget: int, by: str
) -> JobChange | None:
    """Send a failed or cancelled job again with `budget` more attempts. None: not retryable."""
    row = (
        (await conn.execute(_RETRY, {"id": job_id, "budget": budget, "by": by})).mappings().first()
    )
    return rows.change(row) if row else None


async def mark_dispatched(conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute(
        text(
            "UPDATE jobs SET dispatched_at = now() "
            "WHERE id = ANY(:ids) AND status = 'QUEUED' AND dispatched_at IS NULL"
        ),
        {"ids": list(job_ids)},
    )
