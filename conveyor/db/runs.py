"""Workflow runs, steps, edges and run events (ADR-0023).

Functions take the connection keyword-only and never commit: `services.engine` and
`services.workflows` own the transactions. Every change of a run or a step is guarded by a
transition of `domain.runs` and made while the run's row is locked (`lock`): the caller
takes that lock first, before any job row, so run-level work never deadlocks with itself.

Size (over ~400 lines on purpose): the SQL of the four workflow tables, used together by the
engine's one transaction under the run's lock; split by table, every caller would import all
four.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import rows
from conveyor.db.jobs import NewJob
from conveyor.db.sql import guard, typed, with_event
from conveyor.db.tenants import TENANT_KEYS
from conveyor.domain.models import Job, JobChange
from conveyor.domain.runs import (
    RUN_CANCEL,
    RUN_FINISH,
    RUN_RETRY,
    RUN_START,
    STEP_CANCEL,
    STEP_FINISH,
    STEP_RETRY,
    STEP_SKIP,
    STEP_START,
    PendingRunEvent,
    Run,
    RunEvent,
    RunStatus,
    Step,
    StepStatus,
)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


@dataclass(frozen=True)
class NewStep:
    id: uuid.UUID
    key: str
    kind: str
    is_map: bool
    pending_parents: int
    allow_failures: int


async def insert_run(
    conn: AsyncConnection,
    *,
    workflow: str,
    input: dict[str, Any],
    owner_id: uuid.UUID,
    idempotency_key: str | None,
    steps: Sequence[NewStep],
    edges: Sequence[tuple[uuid.UUID, uuid.UUID]],
) -> Run | None:
    """A new QUEUED run with its steps (all BLOCKED) and edges; None when the owner already
    used the idempotency key."""
    row = (
        (
            await conn.execute(
                typed(
                    """
                    INSERT INTO workflow_runs (id, workflow, status, input, owner_id,
                                               idempotency_key, open_steps)
                    VALUES (:id, :workflow, 'QUEUED', :input, :owner, :key, :open)
                    ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL
                    DO NOTHING
                    RETURNING *
                    """,
                    ("input",),
                ),
                {
                    "id": uuid.uuid4(),
                    "workflow": workflow,
                    "input": input,
                    "owner": owner_id,
                    "key": idempotency_key,
                    "open": len(steps),
                },
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    run = rows.run(row)
    await conn.execute(
        text(
            """
            INSERT INTO workflow_steps (id, run_id, key, kind, is_map, status, pending_parents,
                                        allow_failures)
            SELECT v.id, :run, v.key, v.kind, v.is_map, 'BLOCKED', v.pending, v.allow
            FROM unnest(CAST(:ids AS uuid[]), CAST(:keys AS text[]), CAST(:kinds AS text[]),
                        CAST(:maps AS bool[]), CAST(:pending AS bigint[]),
                        CAST(:allow AS bigint[]))
                AS v(id, key, kind, is_map, pending, allow)
            """
        ),
        {
            "run": run.id,
            "ids": [s.id for s in steps],
            "keys": [s.key for s in steps],
            "kinds": [s.kind for s in steps],
            "maps": [s.is_map for s in steps],
            "pending": [s.pending_parents for s in steps],
            "allow": [s.allow_failures for s in steps],
        },
    )
    if edges:
        await conn.execute(
            text(
                "INSERT INTO workflow_edges (parent_id, child_id) "
                "SELECT * FROM unnest(CAST(:parents AS uuid[]), CAST(:children AS uuid[]))"
            ),
            {"parents": [p for p, _ in edges], "children": [c for _, c in edges]},
        )
    return run


async def lock(conn: AsyncConnection, *, run_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Run]:
    """Lock runs (in id order: no deadlock between transactions locking several) until the
    transaction ends. Every change to a run or its steps happens under this lock."""
    result = await conn.execute(
        text("SELECT * FROM workflow_runs WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE"),
        {"ids": sorted(set(run_ids))},
    )
    return {r["id"]: rows.run(r) for r in result.mappings()}


def _scoped(
    sql: str, params: dict[str, Any], owner_id: uuid.UUID | None, tenant_id: uuid.UUID | None
) -> str:
    if owner_id is not None:
        sql += " AND owner_id = :owner"
        params["owner"] = owner_id
    if tenant_id is not None:
        sql += f" AND owner_id IN ({TENANT_KEYS})"
        params["tenant"] = tenant_id
    return sql


async def get(
    conn: AsyncConnection,
    *,
    run_id: uuid.UUID,
    owner_id: uuid.UUID | None = None,
    tenant_id: uuid.UUID | None = None,
) -> Run | None:
    params: dict[str, Any] = {"id": run_id}
    sql = _scoped("SELECT * FROM workflow_runs WHERE id = :id", params, owner_id, tenant_id)
    row = (await conn.execute(text(sql), params)).mappings().first()
    return rows.run(row) if row else None


async def get_by_idempotency_key(
    conn: AsyncConnection, *, owner_id: uuid.UUID, key: str
) -> Run | None:
    row = (
        (
            await conn.execute(
                text(
                    "SELECT * FROM workflow_runs WHERE owner_id = :owner AND idempotency_key = :k"
                ),
                {"owner": owner_id, "k": key},
            )
        )
        .mappings()
        .first()
    )
    return rows.run(row) if row else None


async def page(
    conn: AsyncConnection,
    *,
    owner_id: uuid.UUID | None,
    tenant_id: uuid.UUID | None,
    statuses: Sequence[RunStatus],
    workflows: Sequence[str],
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[Run], bool]:
    """Newest first, keyset-paginated on (created_at, id)."""
    params: dict[str, Any] = {"limit": first + 1}
    sql = _scoped("SELECT * FROM workflow_runs WHERE true", params, owner_id, tenant_id)
    if statuses:
        sql += " AND status = ANY(:statuses)"
        params["statuses"] = [s.value for s in statuses]
    if workflows:
        sql += " AND workflow = ANY(:workflows)"
        params["workflows"] = list(workflows)
    if after is not None:
        sql += " AND (created_at, id) < (:after_at, :after_id)"
        params["after_at"], params["after_id"] = after
    sql += " ORDER BY created_at DESC, id DESC LIMIT :limit"
    found = [rows.run(r) for r in (await conn.execute(text(sql), params)).mappings()]
    return found[:first], len(found) > first


async def steps(conn: AsyncConnection, *, run_ids: Sequence[uuid.UUID]) -> list[Step]:
    result = await conn.execute(
        text("SELECT * FROM workflow_steps WHERE run_id = ANY(:ids) ORDER BY run_id, key"),
        {"ids": list(run_ids)},
    )
    return [rows.step(r) for r in result.mappings()]


async def steps_by_id(conn: AsyncConnection, *, step_ids: Sequence[uuid.UUID]) -> list[Step]:
    result = await conn.execute(
        text("SELECT * FROM workflow_steps WHERE id = ANY(:ids)"), {"ids": list(step_ids)}
    )
    return [rows.step(r) for r in result.mappings()]


async def edges(conn: AsyncConnection, *, run_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID]]:
    result = await conn.execute(
        text(
            "SELECT e.parent_id, e.child_id FROM workflow_edges e "
            "JOIN workflow_steps s ON s.id = e.child_id WHERE s.run_id = :run"
        ),
        {"run": run_id},
    )
    return [(r.parent_id, r.child_id) for r in result]


async def transition_steps(
    conn: AsyncConnection,
    *,
    step_ids: Sequence[uuid.UUID],
    source: frozenset[StepStatus],
    target: StepStatus,
    error: dict[str, Any] | None = None,
    expected: int | None = None,
) -> list[Step]:
    """Guarded status change of steps (`source`: the transition's sources). Steps not in a
    source status are left and not returned: the caller reads that as stale or duplicate."""
    quoted = ", ".join(sorted(f"'{s.value}'" for s in source))
    result = await conn.execute(
        typed(
            f"""
            UPDATE workflow_steps SET status = CAST(:target AS text),
                error = CASE WHEN CAST(:target AS text) = 'FAILED' THEN CAST(:error AS jsonb)
                             WHEN CAST(:target AS text) = 'BLOCKED' THEN NULL ELSE error END,
                expected = coalesce(CAST(:expected AS bigint), expected),
                started_at = CASE WHEN CAST(:target AS text) = 'RUNNING' THEN now()
                                  ELSE started_at END,
                finished_at = CASE WHEN CAST(:target AS text) IN ('BLOCKED', 'RUNNING') THEN NULL
                                   ELSE now() END
            WHERE id = ANY(:ids) AND status IN ({quoted})
            RETURNING *
            """,
            ("error",),
        ),
        {"ids": list(step_ids), "target": target.value, "error": error, "expected": expected},
    )
    return [rows.step(r) for r in result.mappings()]


# The guarded moves, named after their transitions (sources from `domain.runs`).
START_SOURCES = STEP_START.sources
FINISH_SOURCES = STEP_FINISH.sources
SKIP_SOURCES = STEP_SKIP.sources
CANCEL_SOURCES = STEP_CANCEL.sources
RETRY_SOURCES = STEP_RETRY.sources


async def release_children(conn: AsyncConnection, *, parent_ids: Sequence[uuid.UUID]) -> list[Step]:
    """A parent succeeded: its BLOCKED children have one parent fewer to wait for. Returns the
    children now waiting for none (to start). `pending_parents >= 0` is a CHECK: a parent
    released twice would fail the transaction instead of starting a child early."""
    result = await conn.execute(
        text(
            f"""
            WITH e AS (
                SELECT child_id, count(*) AS n FROM workflow_edges
                WHERE parent_id = ANY(:ids) GROUP BY child_id
            )
            UPDATE workflow_steps c SET pending_parents = c.pending_parents - e.n
            FROM e WHERE c.id = e.child_id AND {guard(STEP_START, "c.status")}
            RETURNING c.*
            """
        ),
        {"ids": list(parent_ids)},
    )
    return [s for s in (rows.step(r) for r in result.mappings()) if s.pending_parents == 0]


async def skip_descendants(conn: AsyncConnection, *, step_ids: Sequence[uuid.UUID]) -> list[Step]:
    """Every BLOCKED step downstream of these (which did not succeed) becomes SKIPPED."""
    result = await conn.execute(
        text(
            f"""
            WITH RECURSIVE d(id) AS (
                SELECT child_id FROM workflow_edges WHERE parent_id = ANY(:ids)
                UNION
                SELECT e.child_id FROM workflow_edges e JOIN d ON e.parent_id = d.id
            )
            UPDATE workflow_steps s SET status = 'SKIPPED', finished_at = now()
            FROM d WHERE s.id = d.id AND {guard(STEP_SKIP, "s.status")}
            RETURNING s.*
            """
        ),
        {"ids": list(step_ids)},
    )
    return [rows.step(r) for r in result.mappings()]


async def count_items(
    conn: AsyncConnection, *, counts: Mapping[uuid.UUID, tuple[int, int]]
) -> list[Step]:
    """Add ended items (succeeded, failed) to RUNNING map steps; returns the steps counted.
    Only items whose own guarded FINISH took effect are counted, and the CHECK on the counts
    refuses more than the map has."""
    ids = list(counts)
    result = await conn.execute(
        text(
            f"""
            UPDATE workflow_steps s SET succeeded = s.succeeded + v.ok, failed = s.failed + v.bad
            FROM unnest(CAST(:ids AS uuid[]), CAST(:ok AS bigint[]), CAST(:bad AS bigint[]))
                AS v(id, ok, bad)
            WHERE s.id = v.id AND {guard(STEP_FINISH, "s.status")}
            RETURNING s.*
            """
        ),
        {"ids": ids, "ok": [counts[i][0] for i in ids], "bad": [counts[i][1] for i in ids]},
    )
    return [rows.step(r) for r in result.mappings()]


async def advance_expansion(
    conn: AsyncConnection, *, step_id: uuid.UUID, from_: int, to: int
) -> bool:
    """Move a map's expansion cursor, only from where the caller read it (idempotent chunks)."""
    result = await conn.execute(
        text(
            "UPDATE workflow_steps SET expanded = :to "
            "WHERE id = :id AND expanded = :from_ AND status = 'RUNNING'"
        ),
        {"id": step_id, "from_": from_, "to": to},
    )
    return bool(result.rowcount)


async def expanding(conn: AsyncConnection, *, limit: int = 100) -> list[uuid.UUID]:
    """Runs with a map whose expansion was interrupted (by a crash between chunks)."""
    result = await conn.execute(
        text(
            "SELECT DISTINCT run_id FROM workflow_steps "
            "WHERE status = 'RUNNING' AND expanded < expected LIMIT :limit"
        ),
        {"limit": limit},
    )
    return [r.run_id for r in result]


async def results(conn: AsyncConnection, *, steps: Sequence[Step]) -> dict[uuid.UUID, Any]:
    """Each step's result: its job's, or for a map the list of its items' results in item
    order (None for an item that did not succeed)."""
    if not steps:
        return {}
    result = await conn.execute(
        text(
            """
            SELECT l.step_id, l.map_index, j.status, j.result
            FROM workflow_step_jobs l JOIN jobs j ON j.id = l.job_id
            WHERE l.step_id = ANY(:ids) ORDER BY l.step_id, l.map_index
            """
        ),
        {"ids": [s.id for s in steps]},
    )
    found: dict[uuid.UUID, Any] = {
        s.id: ([None] * (s.expected or 0) if s.is_map else None) for s in steps
    }
    maps = {s.id for s in steps if s.is_map}
    for r in result:
        value = r.result if r.status == "SUCCEEDED" else None
        if r.step_id in maps:
            items = found[r.step_id]
            if 0 <= r.map_index < len(items):
                items[r.map_index] = value
        else:
            found[r.step_id] = value
    return found


_INSERT_STEP_JOBS = with_event(
    """
    INSERT INTO jobs (id, kind, queue, priority, status, payload, max_attempts, timeout_seconds,
                      backoff_base_seconds, backoff_cap_seconds, owner_id, last_seq,
                      run_id, step_id, map_index, concurrency_key, created_at, updated_at)
    SELECT v.id, v.kind, v.queue, v.priority, 'QUEUED', v.payload, v.max_attempts, v.timeout,
           v.backoff_base, v.backoff_cap, v.owner_id, 1, v.run_id, v.step_id, v.map_index,
           v.concurrency_key, now(), now()
    FROM v JOIN l ON l.job_id = v.id
    """,
    "'SUBMITTED'",
    before="""v AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:kinds AS text[]),
                CAST(:queues AS text[]), CAST(:priorities AS smallint[]),
                CAST(:payloads AS jsonb[]), CAST(:max_attempts AS int[]),
                CAST(:timeouts AS float8[]), CAST(:backoff_bases AS float8[]),
                CAST(:backoff_caps AS float8[]), CAST(:owners AS uuid[]),
                CAST(:runs AS uuid[]), CAST(:steps AS uuid[]), CAST(:indexes AS bigint[]),
                CAST(:concurrency_keys AS text[]))
            AS v(id, kind, queue, priority, payload, max_attempts, timeout, backoff_base,
                 backoff_cap, owner_id, run_id, step_id, map_index, concurrency_key)
    ), l AS (
        -- The constraint that a step (or a map item) never starts twice: its key is taken
        -- once, and a job is only inserted for a key this statement took.
        INSERT INTO workflow_step_jobs (step_id, map_index, job_id)
        SELECT step_id, map_index, id FROM v
        ON CONFLICT (step_id, map_index) DO NOTHING
        RETURNING job_id
    ), """,
)


async def insert_step_jobs(
    conn: AsyncConnection, *, new: Sequence[NewJob]
) -> list[tuple[Job, JobChange]]:
    """Insert step jobs (QUEUED) with their first events and their `workflow_step_jobs` keys;
    a (step, index) that already has a job is left alone and not returned."""
    if not new:
        return []
    result = await conn.execute(
        _INSERT_STEP_JOBS,
        {
            "ids": [uuid.uuid4() for _ in new],
            "kinds": [n.kind for n in new],
            "queues": [n.queue for n in new],
            "priorities": [n.priority for n in new],
            "payloads": [orjson.dumps(n.payload).decode() for n in new],
            "max_attempts": [n.max_attempts for n in new],
            "timeouts": [n.timeout_seconds for n in new],
            "backoff_bases": [n.backoff_base_seconds for n in new],
            "backoff_caps": [n.backoff_cap_seconds for n in new],
            "owners": [n.owner_id for n in new],
            "runs": [n.run_id for n in new],
            "steps": [n.step_id for n in new],
            "indexes": [n.map_index for n in new],
            "concurrency_keys": [n.concurrency_key for n in new],
        },
    )
    return [(rows.job(r), rows.change(r)) for r in result.mappings()]


async def step_jobs(
    conn: AsyncConnection,
    *,
    step_id: uuid.UUID,
    statuses: Sequence[str] = (),
    after_index: int = -2,
    limit: int = 100,
) -> list[Job]:
    """A step's jobs in item order (a map's drill-down), from `after_index` on."""
    params: dict[str, Any] = {"step": step_id, "after": after_index, "limit": limit}
    sql = (
        f"SELECT {rows.JOB_COLUMNS_QUALIFIED} FROM workflow_step_jobs l "
        "JOIN jobs ON jobs.id = l.job_id WHERE l.step_id = :step AND l.map_index > :after"
    )
    if statuses:
        sql += " AND jobs.status = ANY(:statuses)"
        params["statuses"] = list(statuses)
    sql += " ORDER BY l.map_index LIMIT :limit"
    return [rows.job(r) for r in (await conn.execute(text(sql), params)).mappings()]


async def job_counts(
    conn: AsyncConnection, *, step_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """Per step, its jobs counted by status (a map's counts)."""
    result = await conn.execute(
        text(
            "SELECT l.step_id, j.status, count(*) AS n FROM workflow_step_jobs l "
            "JOIN jobs j ON j.id = l.job_id WHERE l.step_id = ANY(:ids) "
            "GROUP BY l.step_id, j.status"
        ),
        {"ids": list(step_ids)},
    )
    found: dict[uuid.UUID, dict[str, int]] = {}
    for r in result:
        found.setdefault(r.step_id, {})[r.status] = int(r.n)
    return found


async def open_job_ids(
    conn: AsyncConnection, *, step_ids: Sequence[uuid.UUID], statuses: Sequence[str]
) -> list[uuid.UUID]:
    """Jobs of these steps in one of `statuses` (to cancel or retry them)."""
    result = await conn.execute(
        text(
            "SELECT j.id FROM workflow_step_jobs l JOIN jobs j ON j.id = l.job_id "
            "WHERE l.step_id = ANY(:ids) AND j.status = ANY(:statuses) ORDER BY j.id"
        ),
        {"ids": list(step_ids), "statuses": list(statuses)},
    )
    return [r.id for r in result]


async def reset_map_counts(conn: AsyncConnection, *, step_id: uuid.UUID, failed: int) -> None:
    """A retried map: its failed items run again, so they no longer count as failed."""
    await conn.execute(
        text("UPDATE workflow_steps SET failed = failed - :n WHERE id = :id"),
        {"id": step_id, "n": failed},
    )


async def set_pending(conn: AsyncConnection, *, step_ids: Sequence[uuid.UUID]) -> list[Step]:
    """Recompute `pending_parents` of BLOCKED steps from their parents that did not succeed
    (a retried run). Returns them."""
    result = await conn.execute(
        text(
            """
            UPDATE workflow_steps s SET pending_parents = (
                SELECT count(*) FROM workflow_edges e JOIN workflow_steps p ON p.id = e.parent_id
                WHERE e.child_id = s.id AND p.status <> 'SUCCEEDED')
            WHERE s.id = ANY(:ids) AND s.status = 'BLOCKED'
            RETURNING s.*
            """
        ),
        {"ids": list(step_ids)},
    )
    return [rows.step(r) for r in result.mappings()]


_RUN_UPDATE = typed(
    """
    WITH r AS (
        UPDATE workflow_runs SET
            status = coalesce(CAST(:status AS text), status),
            open_steps = open_steps + CAST(:open_delta AS bigint),
            generation = generation + CASE WHEN CAST(:retried AS bool) THEN 1 ELSE 0 END,
            last_seq = last_seq + CAST(:n AS bigint),
            error = CASE WHEN CAST(:status AS text) IS NULL THEN error
                         ELSE CAST(:error AS jsonb) END,
            started_at = CASE WHEN CAST(:status AS text) = 'RUNNING'
                              THEN coalesce(started_at, now()) ELSE started_at END,
            finished_at = CASE
                WHEN CAST(:status AS text) IN ('SUCCEEDED', 'FAILED', 'CANCELLED') THEN now()
                WHEN CAST(:status AS text) IS NULL THEN finished_at ELSE NULL END,
            updated_at = now()
        WHERE id = :id AND (CAST(:status AS text) IS NULL OR status IN (SELECT unnest(
            CAST(:sources AS text[]))))
        RETURNING *
    ), e AS (
        INSERT INTO workflow_events (run_id, seq, type, status, step, step_status, data, at)
        SELECT r.id, r.last_seq - CAST(:n AS bigint) + v.i, v.type, r.status, v.step,
               v.step_status, v.data, now()
        FROM r, unnest(CAST(:types AS text[]), CAST(:steps AS text[]),
                       CAST(:step_statuses AS text[]), CAST(:datas AS jsonb[]))
            WITH ORDINALITY AS v(type, step, step_status, data, i)
        RETURNING *
    )
    SELECT r.*, (SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.seq), '[]') FROM e) AS events
    FROM r
    """,
    ("error",),
)

_SOURCES = {
    None: frozenset(),
    RunStatus.RUNNING: RUN_START.sources | RUN_RETRY.sources,
    RunStatus.SUCCEEDED: RUN_FINISH.sources,
    RunStatus.FAILED: RUN_FINISH.sources,
    RunStatus.CANCELLED: RUN_CANCEL.sources,
}


async def update(
    conn: AsyncConnection,
    *,
    run: Run,
    events: Sequence[PendingRunEvent],
    status: RunStatus | None = None,
    open_delta: int = 0,
    error: dict[str, Any] | None = None,
    retried: bool = False,
) -> tuple[Run, list[RunEvent]] | None:
    """Append events (numbered from the run's `last_seq`, which the run's lock keeps gapless)
    and change the run, guarded by the transition into `status`. None: the guard refused."""
    result = await conn.execute(
        _RUN_UPDATE,
        {
            "id": run.id,
            "status": status.value if status is not None else None,
            "sources": sorted(s.value for s in _SOURCES[status]),
            "open_delta": open_delta,
            "retried": retried,
            "n": len(events),
            "error": error,
            "types": [e.type.value for e in events],
            "steps": [e.step for e in events],
            "step_statuses": [e.step_status.value if e.step_status else None for e in events],
            "datas": [_json(e.data) for e in events],
        },
    )
    row = result.mappings().first()
    if row is None:
        return None
    return rows.run(row), [rows.run_event(e) for e in row["events"]]


async def events(
    conn: AsyncConnection, *, run_id: uuid.UUID, after: int, limit: int
) -> list[RunEvent]:
    result = await conn.execute(
        text(
            "SELECT * FROM workflow_events WHERE run_id = :id AND seq > :after "
            "ORDER BY seq LIMIT :limit"
        ),
        {"id": run_id, "after": after, "limit": limit},
    )
    return [rows.run_event(r) for r in result.mappings()]
