"""`Job.waitingReason`: the facts about one waiting job, read from PostgreSQL in one
transaction (its queue's pause, its parked row, the limits that govern it and what runs under
them, the live workers of its queue, the jobs ahead of it), decided by `domain.waiting`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text

from conveyor.db import limits as limits_repo
from conveyor.db.engine import transaction
from conveyor.domain import limits
from conveyor.domain import waiting as w
from conveyor.domain.models import Job
from conveyor.domain.states import JobStatus
from conveyor.services.deps import Deps

_FACTS = text(
    """
    SELECT now() AS now,
        (SELECT tenant_id FROM api_keys WHERE id = :owner) AS tenant_id,
        (SELECT jsonb_build_array(paused_at, paused_by) FROM paused_queues
         WHERE queue = :queue) AS paused,
        (SELECT jsonb_build_array(scope, wake_at) FROM parked_jobs WHERE job_id = :id) AS parked,
        (SELECT count(*) FROM workers wk
         WHERE wk.stopped_at IS NULL AND wk.queues @> ARRAY[CAST(:queue AS text)]
           AND wk.last_heartbeat_at > now() - make_interval(secs => :stale)) AS serving,
        -- `workers.kinds` is read through to_jsonb, so this works with and without the
        -- column (it comes with the user-code work): workers that do not report kinds are
        -- not counted either way.
        (SELECT count(*) FILTER (WHERE to_jsonb(wk) -> 'kinds' ? :kind) FROM workers wk
         WHERE wk.stopped_at IS NULL AND wk.queues @> ARRAY[CAST(:queue AS text)]
           AND wk.last_heartbeat_at > now() - make_interval(secs => :stale)
           AND jsonb_typeof(to_jsonb(wk) -> 'kinds') = 'array') AS knowing,
        (SELECT count(*) FROM workers wk
         WHERE wk.stopped_at IS NULL AND wk.queues @> ARRAY[CAST(:queue AS text)]
           AND wk.last_heartbeat_at > now() - make_interval(secs => :stale)
           AND jsonb_typeof(to_jsonb(wk) -> 'kinds') = 'array') AS reporting,
        (SELECT count(*) FROM (
            SELECT 1 FROM jobs a
            WHERE a.status = 'QUEUED' AND a.queue = :queue AND a.id <> :id
              AND (a.priority < :priority
                   OR (a.priority = :priority AND a.created_at <= :created))
              AND NOT EXISTS (SELECT 1 FROM parked_jobs p WHERE p.job_id = a.id)
            LIMIT :bound) AS ahead) AS ahead
    """
)


def _ts(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


async def reason(deps: Deps, job: Job) -> w.WaitingReason | None:
    """Why `job` (as the caller read it) is not running now; None when it runs or ended."""
    if job.status not in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.RETRYING):
        return None
    async with transaction(deps.engine) as conn:
        row = (
            (
                await conn.execute(
                    _FACTS,
                    {
                        "id": job.id,
                        "owner": job.owner_id,
                        "queue": job.queue,
                        "kind": job.kind,
                        "priority": int(job.priority),
                        "created": job.created_at,
                        "stale": max(2 * deps.settings.lease_seconds, 10.0),
                        "bound": w.AHEAD_BOUND,
                    },
                )
            )
            .mappings()
            .one()
        )
        states: list[w.LimitState] = []
        if job.status is JobStatus.QUEUED and row["paused"] is None:
            tenant_id: uuid.UUID = row["tenant_id"]
            candidate = limits.Candidate(
                job.id,
                job.kind,
                job.queue,
                tenant_id,
                job.concurrency_key,
                int(job.priority),
                job.created_at,
            )
            scopes = candidate.count_scopes()
            found = {
                r["scope"]: limits_repo.limit_of(r)
                for r in await limits_repo.get_limits(
                    conn, scopes=[limits.limit_scope_of(s) for s in scopes]
                )
            }
            governed = [s for s in scopes if limits.limit_scope_of(s) in found]
            running = await limits_repo.running_per_scope(conn, scopes=governed)
            for scope in governed:
                limit = found[limits.limit_scope_of(scope)]
                n = running.get(scope, 0)
                full = limit.max_running is not None and n >= limit.max_running
                holders = await limits_repo.holders(conn, scope=scope) if full else []
                states.append(w.LimitState(scope, limit, n, holders))
    paused = row["paused"]
    parked = row["parked"]
    facts = w.Facts(
        status=job.status,
        queue=job.queue,
        kind=job.kind,
        priority=job.priority,
        now=row["now"],
        run_at=job.run_at,
        next_run_at=job.next_run_at,
        paused=(_ts(paused[0]), paused[1]) if paused else None,
        parked=(parked[0], _ts(parked[1])) if parked else None,
        limits=states,
        workers_serving=int(row["serving"]),
        workers_knowing_kind=int(row["knowing"]) if row["reporting"] else None,
        ahead=int(row["ahead"]),
    )
    return w.decide(facts)
