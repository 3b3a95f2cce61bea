"""Worker-side use cases against real PostgreSQL and Redis, driven directly (no worker process):
lease recovery, the resend sweep, dispatch marks across a Redis data loss, attempt budgets."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from conveyor import kinds, metrics
from conveyor.db.engine import create_engine
from conveyor.domain import outcomes
from conveyor.domain.models import Job
from conveyor.domain.outcomes import Outcome
from conveyor.domain.states import AttemptStatus, EventType, JobStatus
from conveyor.services import auth, dispatch, execution
from conveyor.services import submit as submit_service
from conveyor.services.deps import Deps, open_deps
from conveyor.settings import Settings
from tests import support
from tests.integration.conftest import Api
from tests.support import submit

RETRY = """mutation($id: ID!) { retryJob(id: $id) {
  __typename ... on Job { status attempt maxAttempts } } }"""


WORKER = "test-worker"


@pytest.fixture
async def rt(settings: Settings) -> AsyncIterator[Deps]:
    async with open_deps(
        settings.model_copy(update={"lease_seconds": 0.2}), kinds.load(settings.jobs), pool_size=2
    ) as deps:
        yield deps


def _counter(name: str, kind: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, {"kind": kind}) or 0.0


async def test_recovered_attempts_count_as_retries_or_dead_letters_and_name_their_jobs(
    api: Api, rt: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    client = api.client(await api.key("alice"))
    again = await submit(client, "demo.flaky", {}, maxAttempts=3)
    last = await submit(client, "demo.flaky", {}, maxAttempts=1)
    for job in (again, last):
        assert (await execution.claim_many(rt, worker_id=WORKER, job_ids=[uuid.UUID(job["id"])]))[
            0
        ] is not None
    retries = _counter("conveyor_retries_total", "demo.flaky")
    dead = _counter("conveyor_dead_lettered_total", "demo.flaky")
    await asyncio.sleep(0.4)  # the 0.2 s leases expire: nobody renews them
    with caplog.at_level(logging.WARNING, logger="conveyor.services.execution"):
        assert await execution.recover_expired(rt) == 2
    assert _counter("conveyor_retries_total", "demo.flaky") == retries + 1
    assert _counter("conveyor_dead_lettered_total", "demo.flaky") == dead + 1
    lines = {r.job_id: r for r in caplog.records if hasattr(r, "job_id")}
    assert set(lines) == {again["id"], last["id"]}
    assert (lines[again["id"]].attempt, lines[again["id"]].status) == (1, "QUEUED")
    assert (lines[last["id"]].attempt, lines[last["id"]].status) == (1, "FAILED")


async def test_a_sweep_says_whether_it_ran(env: support.Env, rt: Deps) -> None:
    other = create_engine(env.database_url, pool_size=1)
    try:
        async with other.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": execution.SWEEP_LOCK})
            assert not await execution.sweep(rt, redispatch_after=5, resend_all=True)
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": execution.SWEEP_LOCK})
        assert await execution.sweep(rt, redispatch_after=5, resend_all=True)
    finally:
        await other.dispose()


async def test_a_send_is_not_marked_when_redis_lost_its_data_in_between(
    env: support.Env, rt: Deps
) -> None:
    # No API process here: its outbox relay would resend these unmarked jobs meanwhile, see
    # the new epoch and unmark them all, racing the marks under test.
    key, _ = await auth.create_api_key(
        rt.engine, name="alice", secret_key=rt.settings.secret_key.get_secret_value()
    )
    found = await submit_service.submit_many(
        rt, key.principal(), [submit_service.SubmitRequest(kind="demo.noop", payload={})] * 3
    )
    ids = [job.id for job in found if isinstance(job, Job)]
    assert len(ids) == 3
    await env.sql("UPDATE jobs SET dispatched_at = NULL")
    key = dispatch.epoch_key(env.prefix)
    await rt.redis.set(key, b"after-the-loss")
    # Sent under the old data's epoch, marked after the loss: the mark must not stick, or
    # nothing would ever send these jobs again.
    await dispatch.mark(rt.engine, rt.redis, env.prefix, b"before-the-loss", ids[:2])
    await dispatch.mark(rt.engine, rt.redis, env.prefix, b"after-the-loss", ids[2:])
    rows = await env.sql("SELECT id, dispatched_at IS NOT NULL AS marked FROM jobs")
    assert {r["id"]: r["marked"] for r in rows} == {ids[0]: False, ids[1]: False, ids[2]: True}


async def test_retry_gives_the_jobs_own_budget_and_a_release_does_not_count(
    api: Api, env: support.Env, rt: Deps
) -> None:
    client = api.client(await api.key("alice"))
    # demo.flaky's kind allows 3 attempts; this job asked for 2.
    job_id = uuid.UUID((await submit(client, "demo.flaky", {}, maxAttempts=2))["id"])

    async def attempt(outcome: Outcome) -> int:
        found = (await execution.claim_many(rt, worker_id=WORKER, job_ids=[job_id]))[0]
        assert found is not None
        claimed = found.job
        assert claimed.attempt <= claimed.max_attempts
        assert (await execution.finish_many(rt, [(job_id, claimed.attempt, outcome, None)]))[0]
        return claimed.attempt

    released = outcomes.released()
    failed = outcomes.failed_permanently({"type": "E", "message": "e"})
    retrying = Outcome(
        JobStatus.RETRYING, AttemptStatus.FAILED, EventType.RETRY_SCHEDULED, delay_seconds=0.0
    )

    async def state() -> tuple[str, int, int]:
        row = (await env.sql("SELECT status, attempt, max_attempts FROM jobs"))[0]
        return row["status"], row["attempt"], row["max_attempts"]

    await attempt(retrying)
    await execution.promote_due(rt)
    # Released on its last attempt: the attempt is given back, so the next one is still
    # within maxAttempts, and the job still gets two attempts that ran to an end.
    await attempt(released)
    assert await state() == ("QUEUED", 2, 3)
    await attempt(failed)
    assert await state() == ("FAILED", 3, 3)

    # retryJob: the job's own budget (2), not its kind's (3), however often it is retried.
    retried = (await client(RETRY, {"id": str(job_id)}))["retryJob"]
    assert retried == {"__typename": "Job", "status": "QUEUED", "attempt": 3, "maxAttempts": 5}
    await attempt(released)
    await attempt(retrying)
    await execution.promote_due(rt)
    await attempt(failed)
    assert await state() == ("FAILED", 6, 6)
    retried = (await client(RETRY, {"id": str(job_id)}))["retryJob"]
    assert retried["maxAttempts"] == 8
