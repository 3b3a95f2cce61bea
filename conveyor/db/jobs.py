"""Client-facing job reads and writes: submit, look up, list, cancel, retry.

Functions take the connection keyword-only and never commit: the calling service owns the
transaction. Writes that change a job return `JobChange`s to publish after commit.

Size (~480 lines): every statement on `jobs` that the API's use cases run, one table.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import audit as audit_repo
from conveyor.db import policy as policy_repo
from conveyor.db import rows
from conveyor.db.sql import Direct, guard, in_, with_event
from conveyor.db.tenants import TENANT_KEYS
from conveyor.domain.models import Attempt, AuditEntry, DecisionEntry, Event, Job, JobChange
from conveyor.domain.states import (
    CANCEL,
    CANCELLABLE,
    REFUNDED,
    RETRY,
    RETRYABLE,
    WAITING,
    EventType,
    JobStatus,
)


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
    concurrency_key: str | None = None
    schedule_id: uuid.UUID | None = None
    fire_at: datetime | None = None
    parent_id: uuid.UUID | None = None
    #: A workflow step's job (`db.runs.insert_step_jobs`); None for a job on its own.
    run_id: uuid.UUID | None = None
    step_id: uuid.UUID | None = None
    map_index: int | None = None


@dataclass(frozen=True)
class JobFilter:
    statuses: tuple[JobStatus, ...] = ()
    kinds: tuple[str, ...] = ()
    queue: str | None = None
    #: None: every owner; otherwise only this key's jobs.
    owner_id: uuid.UUID | None = None
    updated_since: datetime | None = None
    #: None: every tenant (internal use only); otherwise only jobs of this tenant's keys.
    tenant_id: uuid.UUID | None = None
    #: Only this job (read tokens scoped to one job).
    job_id: uuid.UUID | None = None


_JOB_ROWS = """
    INSERT INTO jobs (id, kind, queue, priority, status, payload, max_attempts, timeout_seconds,
                      backoff_base_seconds, backoff_cap_seconds, owner_id, idempotency_key,
                      last_seq, run_at, next_run_at, created_at, updated_at,
                      concurrency_key, schedule_id, fire_at, parent_id, trace_context)
    SELECT v.id, v.kind, v.queue, v.priority, v.status, v.payload, v.max_attempts, v.timeout,
           v.backoff_base, v.backoff_cap, v.owner_id, v.idempotency_key, 1, v.run_at, v.run_at,
           now(), now(), v.concurrency_key, v.schedule_id, v.fire_at, v.parent_id,
           CAST(:trace AS jsonb)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:kinds AS text[]), CAST(:queues AS text[]),
                CAST(:priorities AS smallint[]), CAST(:statuses AS text[]),
                CAST(:payloads AS jsonb[]), CAST(:max_attempts AS int[]),
                CAST(:timeouts AS float8[]), CAST(:backoff_bases AS float8[]),
                CAST(:backoff_caps AS float8[]), CAST(:owners AS uuid[]),
                CAST(:keys AS text[]), CAST(:run_ats AS timestamptz[]),
                CAST(:concurrency_keys AS text[]), CAST(:schedule_ids AS uuid[]),
                CAST(:fire_ats AS timestamptz[]), CAST(:parents AS uuid[]))
        AS v(id, kind, queue, priority, status, payload, max_attempts, timeout, backoff_base,
             backoff_cap, owner_id, idempotency_key, run_at, concurrency_key, schedule_id,
             fire_at, parent_id)
    {where}
    ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
"""
_FIRST_EVENT = "CASE WHEN j.status = 'SCHEDULED' THEN 'SCHEDULED' ELSE 'SUBMITTED' END"

_INSERT = with_event(_JOB_ROWS.format(where=""), _FIRST_EVENT)

#: A submit in one statement (ADR-0025): the jobs, their first events, the policy decisions
#: and the audit rows, written only if the tenant's policy is still at the version the
#: decisions were made with (`p`). Decisions of admitted jobs and audit rows are written for
#: the jobs actually inserted (an idempotency key already taken inserts nothing: the caller
#: records that decision with the existing job). The first row says whether the policy was
#: current; each inserted job adds a row (or the first row carries it).
_INSERT_ADMITTED = Direct(
    f"""
    WITH p AS (
        SELECT coalesce(max(version), 0) = :policy_version AS current
        FROM policies WHERE tenant_id = :tenant
    ),
    j AS ({_JOB_ROWS.format(where="WHERE (SELECT current FROM p)")}
          RETURNING {rows.JOB_COLUMNS_QUALIFIED}),
    e AS (
        INSERT INTO job_events (job_id, seq, type, status, progress, message, data, at)
        SELECT j.id, j.last_seq, {_FIRST_EVENT}, j.status, NULL, NULL, NULL, now() FROM j
        RETURNING *
    ),
    d AS ({
        policy_repo.decision_insert(
            "d_", "(SELECT current FROM p) AND (r.job_id IS NULL OR r.job_id IN (SELECT id FROM j))"
        )
    }),
    a AS ({audit_repo.audit_insert("a_", "r.target IN (SELECT 'job:' || id FROM j)")})
    SELECT p.current AS policy_current, j.*, {rows.EVENT_COLUMNS}
    FROM p LEFT JOIN (j JOIN e ON e.job_id = j.id) ON TRUE
    """
)


def _job_params(
    ids: Sequence[uuid.UUID], new: Sequence[NewJob], trace_context: dict[str, str] | None
) -> dict[str, Any]:
    return {
        "ids": list(ids),
        "kinds": [n.kind for n in new],
        "queues": [n.queue for n in new],
        "priorities": [n.priority for n in new],
        "statuses": [first_status(n).value for n in new],
        "payloads": [orjson.dumps(n.payload).decode() for n in new],
        "max_attempts": [n.max_attempts for n in new],
        "timeouts": [n.timeout_seconds for n in new],
        "backoff_bases": [n.backoff_base_seconds for n in new],
        "backoff_caps": [n.backoff_cap_seconds for n in new],
        "owners": [n.owner_id for n in new],
        "keys": [n.idempotency_key for n in new],
        "run_ats": [n.run_at for n in new],
        "concurrency_keys": [n.concurrency_key for n in new],
        "schedule_ids": [n.schedule_id for n in new],
        "fire_ats": [n.fire_at for n in new],
        "parents": [n.parent_id for n in new],
        "trace": None if trace_context is None else orjson.dumps(trace_context).decode(),
    }


def first_status(new: NewJob) -> JobStatus:
    """The status a new job is stored with: SCHEDULED until its `run_at`, else QUEUED."""
    return JobStatus.SCHEDULED if new.run_at is not None else JobStatus.QUEUED


async def insert(
    conn: AsyncConnection,
    *,
    new: Sequence[NewJob],
    trace_context: dict[str, str] | None = None,
) -> list[tuple[Job, JobChange] | None]:
    """Insert jobs and their first events in one statement. Per input, in order: the job and
    its change, or None when its idempotency key is already taken. `trace_context`: the
    submit's W3C trace context, stored with each job (ADR-0024)."""
    ids = [uuid.uuid4() for _ in new]
    result = await conn.execute(_INSERT, _job_params(ids, new, trace_context))
    by_id = {r["id"]: (rows.job(r), rows.change(r)) for r in result.mappings()}
    return [by_id.get(i) for i in ids]


async def insert_admitted(
    conn: AsyncConnection,
    *,
    ids: Sequence[uuid.UUID],
    new: Sequence[NewJob],
    decisions: Sequence[DecisionEntry],
    audit: Sequence[AuditEntry],
    tenant_id: uuid.UUID,
    policy_version: int,
    trace_context: dict[str, str] | None = None,
) -> list[tuple[Job, JobChange] | None] | None:
    """`insert` (with the given ids) plus the decisions and the audit rows of the inserted
    jobs, in one statement, if the tenant's policy is still at `policy_version`; None when it
    is not (nothing was written: decide again). Decisions naming a job id are written only
    when that job was inserted, audit rows only when their target (`job:<id>`) was."""
    params = _job_params(ids, new, trace_context)
    params.update(policy_repo.decision_params("d_", decisions))
    params.update(audit_repo.audit_params("a_", audit))
    params.update(tenant=tenant_id, policy_version=policy_version)
    found = await _INSERT_ADMITTED.rows(conn, params)
    if not found[0]["policy_current"]:
        return None
    by_id = {r["id"]: (rows.job(r), rows.change(r)) for r in found if r["id"] is not None}
    return [by_id.get(i) for i in ids]


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
    conn: AsyncConnection,
    *,
    job_id: uuid.UUID,
    owner_id: uuid.UUID | None,
    tenant_id: uuid.UUID | None = None,
) -> Job | None:
    """The job, if it exists and belongs to `owner_id` and `tenant_id` (None: any)."""
    sql = f"SELECT {rows.JOB_COLUMNS} FROM jobs WHERE id = :id"
    params: dict[str, Any] = {"id": job_id}
    if owner_id is not None:
        sql += " AND owner_id = :owner"
        params["owner"] = owner_id
    if tenant_id is not None:
        sql += f" AND owner_id IN ({TENANT_KEYS})"
        params["tenant"] = tenant_id
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
    if flt.tenant_id is not None:
        clauses.append(f"owner_id IN ({TENANT_KEYS})")
        params["tenant"] = flt.tenant_id
    if flt.job_id is not None:
        clauses.append("id = :job_id")
        params["job_id"] = flt.job_id
    if flt.statuses:
        clauses.append("status = ANY(:statuses)")
        params["statuses"] = [s.value for s in flt.statuses]
    if flt.kinds:
        clauses.append("kind = ANY(:kinds)")
        params["kinds"] = list(flt.kinds)
    if flt.queue is not None:
        clauses.append("queue = :queue")
        params["queue"] = flt.queue
    if flt.updated_since is not None:
        clauses.append("updated_at >= :updated_since")
        params["updated_since"] = flt.updated_since
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


async def count(conn: AsyncConnection, *, flt: JobFilter, at_most: int | None = None) -> int:
    """Jobs matching `flt`; with `at_most`, counting stops there (a bounded index scan)."""
    clauses, params = _where(flt)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT count(*) FROM jobs {where}"
    if at_most is not None:
        sql = f"SELECT count(*) FROM (SELECT 1 FROM jobs {where} LIMIT :at_most) AS bounded"
        params["at_most"] = at_most
    return int((await conn.execute(text(sql), params)).scalar_one())


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
    UPDATE jobs SET status = '{JobStatus.CANCELLED}', cancel_requested_at = now(),
                    finished_at = now(),
                    next_run_at = NULL, last_seq = last_seq + 1, updated_at = now()
    WHERE id = ANY(:ids) AND {guard(CANCEL)}
    """,
    f"'{EventType.CANCELLED}'",
    data="jsonb_build_object('by', CAST(:by AS text))",
)

_REQUEST_CANCEL = with_event(
    f"""
    UPDATE jobs SET cancel_requested_at = now(), last_seq = last_seq + 1, updated_at = now()
    WHERE id = ANY(:ids) AND {in_("status", CANCELLABLE - WAITING)}
      AND cancel_requested_at IS NULL
    """,
    f"'{EventType.CANCEL_REQUESTED}'",
    data="jsonb_build_object('by', CAST(:by AS text))",
)


async def cancel(
    conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID], by: str
) -> list[JobChange]:
    """Cancel waiting jobs now, and ask running jobs' workers to stop them (CANCEL_REQUESTED).

    Jobs in no cancellable state (or already asked to stop) are left alone and not returned.
    """
    changes: list[JobChange] = []
    for statement in (_CANCEL_WAITING, _REQUEST_CANCEL):
        result = await conn.execute(statement, {"ids": list(job_ids), "by": by})
        changes += [rows.change(r) for r in result.mappings()]
    return changes


#: A job's own attempt budget: what its last retry gave it, else the maxAttempts it was
#: submitted with (`max_attempts` less the attempts released at shutdown or snoozed, which each
#: raised it by one).
_OWN_BUDGET = """coalesce(
        (SELECT CAST(e.data ->> 'budget' AS int) FROM job_events e
         WHERE e.job_id = jobs.id AND e.type = 'RETRIED' ORDER BY e.seq DESC LIMIT 1),
        jobs.max_attempts - (SELECT count(*) FROM job_attempts a
                             WHERE a.job_id = jobs.id AND a.error ->> 'type' = ANY(:refunded)))"""

_RETRY = with_event(
    f"""
    UPDATE jobs SET status = '{JobStatus.QUEUED}',
                    max_attempts = attempt + coalesce(CAST(:budget AS int), {_OWN_BUDGET}),
                    error = NULL,
                    result = NULL, progress = 0, progress_message = NULL, finished_at = NULL,
                    cancel_requested_at = NULL, dispatched_at = NULL, next_run_at = NULL,
                    last_seq = last_seq + 1, updated_at = now()
    WHERE id = ANY(:ids) AND {guard(RETRY)}
    """,
    f"'{EventType.RETRIED}'",
    data="jsonb_build_object('by', CAST(:by AS text), 'budget', j.max_attempts - j.attempt)",
)


async def retry(
    conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID], budget: int | None, by: str
) -> list[JobChange]:
    """Send failed or cancelled jobs again with `budget` more attempts each (None: each job's
    own budget, see `_OWN_BUDGET`); others are left."""
    result = await conn.execute(
        _RETRY, {"ids": list(job_ids), "budget": budget, "by": by, "refunded": list(REFUNDED)}
    )
    return [rows.change(r) for r in result.mappings()]


async def ids_matching(
    conn: AsyncConnection, *, flt: JobFilter, statuses: frozenset[JobStatus], limit: int
) -> list[tuple[uuid.UUID, str]]:
    """Ids (and kinds) of jobs matching `flt` whose status is in `statuses`, locked for update
    in id order (waiting for short locks such as a dispatch mark, never skipping them)."""
    clauses, params = _where(flt)
    clauses.append("status = ANY(:wanted)")
    clauses.append("run_id IS NULL")  # steps change with their run (services.workflows)
    params["wanted"] = [s.value for s in statuses]
    params["limit"] = limit
    result = await conn.execute(
        text(
            f"SELECT id, kind FROM jobs WHERE {' AND '.join(clauses)} "
            "ORDER BY id LIMIT :limit FOR UPDATE"
        ),
        params,
    )
    return [(r.id, r.kind) for r in result]


@dataclass(frozen=True)
class RetryCandidate:
    id: uuid.UUID
    kind: str
    #: Bytes of the payload as PostgreSQL prints it: at least its compact JSON size, which
    #: `payload_bytes` measures exactly when it matters.
    stored_bytes: int


async def retry_candidates(
    conn: AsyncConnection, *, flt: JobFilter, after: uuid.UUID | None, limit: int
) -> list[RetryCandidate]:
    """FAILED/CANCELLED jobs matching `flt` with an id above `after`, in id order, locked for
    update (a keyset page: jobs refused by the admission policy are not visited again)."""
    clauses, params = _where(flt)
    clauses.append("status = ANY(:wanted)")
    clauses.append("run_id IS NULL")  # steps change with their run (services.workflows)
    params["wanted"] = [s.value for s in RETRYABLE]
    if after is not None:
        clauses.append("id > :after")
        params["after"] = after
    params["limit"] = limit
    result = await conn.execute(
        text(
            "SELECT id, kind, octet_length(CAST(payload AS text)) AS stored_bytes FROM jobs "
            f"WHERE {' AND '.join(clauses)} ORDER BY id LIMIT :limit FOR UPDATE"
        ),
        params,
    )
    return [RetryCandidate(r.id, r.kind, r.stored_bytes) for r in result]


async def payload_bytes(
    conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Compact JSON size of each job's payload, as admission measures it at submit."""
    result = await conn.execute(
        text("SELECT id, payload FROM jobs WHERE id = ANY(:ids)"), {"ids": list(job_ids)}
    )
    return {r.id: len(orjson.dumps(r.payload)) for r in result}


async def mark_dispatched(conn: AsyncConnection, *, job_ids: Sequence[uuid.UUID]) -> None:
    """Record that these jobs' messages were sent. Rows locked by someone else (a worker's
    claim, a cancel) are skipped, never waited for: the mark is only an optimisation against
    resending, and a job it misses that is still QUEUED later is merely sent twice (claims are
    guarded). Waiting here made claims queue behind a mark of a whole batch."""
    await conn.execute(
        # Found by primary key, guarded on the locked row `l`: see `execution._CLAIM`.
        text(
            "WITH l AS (SELECT id, status, dispatched_at FROM jobs WHERE id = ANY(:ids) "
            "FOR UPDATE SKIP LOCKED) "
            "UPDATE jobs SET dispatched_at = now() FROM l "
            "WHERE jobs.id = l.id AND l.status = 'QUEUED' AND l.dispatched_at IS NULL"
        ),
        {"ids": list(job_ids)},
    )
