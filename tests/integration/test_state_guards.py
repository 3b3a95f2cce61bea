"""The job state machine as PostgreSQL enforces it.

Every status change is a guarded UPDATE. These tests put one job in every status through the
real statements, apply each transition to all of them at once, and check that exactly the jobs
the domain's transition table allows were changed: a duplicate delivery, a stale worker or a
client acting on an old view can never move a job along a path the table does not have.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conveyor.db import execution, maintenance
from conveyor.db import jobs as repo
from conveyor.db.engine import create_engine
from conveyor.domain import outcomes
from conveyor.domain.outcomes import Outcome
from conveyor.domain.states import (
    RETRYABLE,
    WAITING,
    AttemptStatus,
    EventType,
    JobStatus,
    can_transition,
    sources_of,
)
from tests import support

WORKER = "guard-test-worker"
#: The kinds the guard-test worker knows (every job here is a demo.sleep).
KINDS = ["demo.sleep"]
LEASE = 300.0


def _outcome(status: JobStatus) -> Outcome:
    error = {"type": "Boom", "message": "boom", "traceback": "server-side only"}
    if status is JobStatus.SUCCEEDED:
        return outcomes.succeeded({"ok": 1})
    if status is JobStatus.RETRYING:
        return Outcome(
            status, AttemptStatus.FAILED, EventType.RETRY_SCHEDULED, error=error, delay_seconds=3600
        )
    return outcomes.failed_permanently(error)


@pytest.fixture
async def engine(env: support.Env) -> AsyncIterator[AsyncEngine]:
    e = create_engine(env.database_url, pool_size=2)
    yield e
    await e.dispose()


async def _owner(env: support.Env) -> uuid.UUID:
    env.create_key("guards")
    rows = await env.sql("SELECT id FROM api_keys WHERE name = 'guards'")
    return rows[0]["id"]


async def _one_job_per_status(
    conn: AsyncConnection, owner: uuid.UUID
) -> dict[JobStatus, tuple[uuid.UUID, int]]:
    """A job in every status, each reached through the statements the product uses; with the
    job's current attempt number."""

    async def new(run_at: datetime | None = None) -> uuid.UUID:
        job = repo.NewJob(
            kind="demo.sleep",
            queue="default",
            priority=1,
            payload={"steps": 1},
            max_attempts=3,
            timeout_seconds=60,
            backoff_base_seconds=1,
            backoff_cap_seconds=10,
            owner_id=owner,
            idempotency_key=None,
            run_at=run_at,
        )
        inserted = (await repo.insert(conn, new=[job]))[0]
        assert inserted is not None
        return inserted[0].id

    async def running() -> uuid.UUID:
        job_id = await new()
        assert job_id in await execution.claim(
            conn, job_ids=[job_id], worker_id=WORKER, lease_seconds=LEASE, kinds=KINDS
        )
        return job_id

    await maintenance.register_worker(
        conn,
        worker_id=WORKER,
        host="test",
        pid=1,
        queues=["default"],
        concurrency=1,
        kinds=KINDS,
    )
    out: dict[JobStatus, uuid.UUID] = {
        JobStatus.QUEUED: await new(),
        JobStatus.SCHEDULED: await new(datetime.now(UTC) + timedelta(hours=1)),
        JobStatus.RUNNING: await running(),
    }
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.RETRYING):
        job_id = await running()
        assert job_id in await execution.finish(conn, outcomes=[(job_id, 1, _outcome(status))])
        out[status] = job_id
    out[JobStatus.CANCELLED] = await new()
    await repo.cancel(conn, job_ids=[out[JobStatus.CANCELLED]], by="test")

    found = await repo.get_many(conn, job_ids=list(out.values()))
    assert {s: found[i].status for s, i in out.items()} == {s: s for s in out}
    assert set(out) == set(JobStatus)
    return {s: (i, found[i].attempt) for s, i in out.items()}


async def _statuses(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[uuid.UUID, JobStatus]:
    return {i: j.status for i, j in (await repo.get_many(conn, job_ids=ids)).items()}


async def test_only_a_queued_job_can_be_claimed_and_only_once(
    env: support.Env, engine: AsyncEngine
) -> None:
    owner = await _owner(env)
    async with engine.begin() as conn:
        jobs = await _one_job_per_status(conn, owner)
        ids = [i for i, _ in jobs.values()]
        claimed = await execution.claim(
            conn, job_ids=ids, worker_id=WORKER, lease_seconds=LEASE, kinds=KINDS
        )
        allowed = {s for s in jobs if can_transition(s, JobStatus.RUNNING)}
        assert allowed == {JobStatus.QUEUED}
        assert set(claimed) == {jobs[s][0] for s in allowed}
        # A duplicate delivery of the same message claims nothing and adds no attempt.
        again = await execution.claim(
            conn, job_ids=ids, worker_id=WORKER, lease_seconds=LEASE, kinds=KINDS
        )
        assert again == {}
    rows = await env.sql(
        "SELECT count(*) AS n FROM job_attempts WHERE job_id = $1", jobs[JobStatus.QUEUED][0]
    )
    assert rows[0]["n"] == 1


@pytest.mark.parametrize("target", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.RETRYING])
async def test_only_the_current_attempt_of_a_running_job_can_finish_it(
    env: support.Env, engine: AsyncEngine, target: JobStatus
) -> None:
    owner = await _owner(env)
    async with engine.begin() as conn:
        jobs = await _one_job_per_status(conn, owner)
        ids = [i for i, _ in jobs.values()]
        before = await _statuses(conn, ids)
        # A stale worker (an older or a newer attempt number) is fenced off everywhere.
        for skew in (-1, 1):
            stale = [(i, attempt + skew, _outcome(target)) for i, attempt in jobs.values()]
            assert await execution.finish(conn, outcomes=stale) == {}
        assert await _statuses(conn, ids) == before
        current = [(i, attempt, _outcome(target)) for i, attempt in jobs.values()]
        finished = await execution.finish(conn, outcomes=current)
        allowed = {s for s in jobs if can_transition(s, target)}
        assert allowed == {JobStatus.RUNNING}
        assert set(finished) == {jobs[s][0] for s in allowed}
        after = await _statuses(conn, ids)
    assert after == {**before, jobs[JobStatus.RUNNING][0]: target}


async def test_cancel_ends_waiting_jobs_asks_running_ones_and_leaves_finished_ones(
    env: support.Env, engine: AsyncEngine
) -> None:
    owner = await _owner(env)
    async with engine.begin() as conn:
        jobs = await _one_job_per_status(conn, owner)
        ids = [i for i, _ in jobs.values()]
        changes = await repo.cancel(conn, job_ids=ids, by="test")
        after = await _statuses(conn, ids)
        # A second request changes nothing: a running job is asked to stop only once.
        assert await repo.cancel(conn, job_ids=ids, by="test") == []
    changed = {c.job_id for c in changes}
    for status, (job_id, _) in jobs.items():
        if status in WAITING:
            assert can_transition(status, JobStatus.CANCELLED)
            assert after[job_id] is JobStatus.CANCELLED, status
        elif status is JobStatus.RUNNING:
            # Cooperative: the worker ends it; the row only records the request.
            assert after[job_id] is JobStatus.RUNNING
        else:
            assert after[job_id] is status
        assert (job_id in changed) == (status in WAITING or status is JobStatus.RUNNING), status
    requested = await env.sql(
        "SELECT cancel_requested_at FROM jobs WHERE id = $1", jobs[JobStatus.RUNNING][0]
    )
    assert requested[0]["cancel_requested_at"] is not None


async def test_retry_sends_again_only_dead_lettered_or_cancelled_jobs(
    env: support.Env, engine: AsyncEngine
) -> None:
    owner = await _owner(env)
    assert sources_of(JobStatus.QUEUED) >= RETRYABLE
    async with engine.begin() as conn:
        jobs = await _one_job_per_status(conn, owner)
        ids = [i for i, _ in jobs.values()]
        before = await _statuses(conn, ids)
        changes = await repo.retry(conn, job_ids=ids, budget=3, by="test")
        after = await _statuses(conn, ids)
    assert {c.job_id for c in changes} == {jobs[s][0] for s in RETRYABLE}
    assert after == {**before, **{jobs[s][0]: JobStatus.QUEUED for s in RETRYABLE}}


async def test_only_scheduled_or_retrying_jobs_are_promoted_when_due(
    env: support.Env, engine: AsyncEngine
) -> None:
    owner = await _owner(env)
    async with engine.begin() as conn:
        jobs = await _one_job_per_status(conn, owner)
        ids = [i for i, _ in jobs.values()]
        before = await _statuses(conn, ids)
        assert await maintenance.promote_due(conn) == []  # nothing is due yet
    # Every job now claims to be due: only the statuses that wait for a time may move.
    await env.sql("UPDATE jobs SET next_run_at = now() - interval '1 second'")
    async with engine.begin() as conn:
        promoted = {c.job_id for c in await maintenance.promote_due(conn)}
        after = await _statuses(conn, ids)
    timed = {JobStatus.SCHEDULED, JobStatus.RETRYING}
    assert all(can_transition(s, JobStatus.QUEUED) for s in timed)
    assert promoted == {jobs[s][0] for s in timed}
    assert after == {**before, **{jobs[s][0]: JobStatus.QUEUED for s in timed}}


async def test_a_lost_lease_requeues_the_job_and_fences_off_its_old_worker(
    env: support.Env, engine: AsyncEngine
) -> None:
    owner = await _owner(env)
    async with engine.begin() as conn:
        jobs = await _one_job_per_status(conn, owner)
    job_id, attempt = jobs[JobStatus.RUNNING]
    await env.sql("UPDATE job_attempts SET lease_expires_at = now() - interval '1 second'")
    async with engine.begin() as conn:
        expired = await execution.expired_attempts(conn)
        assert [(e.job_id, e.current) for e in expired] == [(job_id, True)]
        decided = [
            (
                e.job_id,
                e.attempt,
                outcomes.after_lost_lease(attempt=1, max_attempts=3, cancel_requested=False),
            )
            for e in expired
        ]
        recovered = await execution.finish(conn, outcomes=decided)
        assert list(recovered) == [job_id]
        assert recovered[job_id].event.type is EventType.LOST
        assert can_transition(JobStatus.RUNNING, JobStatus.QUEUED)
        # Another worker claims it; the old worker's late outcome no longer lands.
        assert job_id in await execution.claim(
            conn, job_ids=[job_id], worker_id=WORKER, lease_seconds=LEASE, kinds=KINDS
        )
        late = [(job_id, attempt, _outcome(JobStatus.SUCCEEDED))]
        assert await execution.finish(conn, outcomes=late) == {}
        now = (await repo.get_many(conn, job_ids=[job_id]))[job_id]
    assert (now.status, now.attempt) == (JobStatus.RUNNING, attempt + 1)
    attempts = await env.sql(
        "SELECT number, status FROM job_attempts WHERE job_id = $1 ORDER BY number", job_id
    )
    assert [(a["number"], a["status"]) for a in attempts] == [(1, "LOST"), (2, "RUNNING")]
