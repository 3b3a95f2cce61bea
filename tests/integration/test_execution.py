"""Worker-side use cases against real PostgreSQL and Redis, driven directly (no worker process):
lease recovery, the resend sweep, dispatch marks across a Redis data loss."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from app import metrics
from app.db.engine import create_engine
from app.services import dispatch, execution
from tests import support
from tests.integration.conftest import Api
from tests.support import submit


@pytest.fixture
async def rt(env: support.Env) -> AsyncIterator[execution.Runtime]:
    engine = create_engine(env.database_url, pool_size=2)
    redis = Redis.from_url(support.REDIS_URL)
    dispatcher = dispatch.Dispatcher(redis, engine, env.prefix)
    await dispatcher.start()
    yield execution.Runtime(
        engine=engine,
        redis=redis,
        dispatcher=dispatcher,
        prefix=env.prefix,
        worker_id="test-worker",
        lease_seconds=0.2,
    )
    await dispatcher.stop()
    await redis.aclose()
    await engine.dispose()


def _counter(name: str, kind: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, {"kind": kind}) or 0.0


async def test_recovered_attempts_count_as_retries_or_dead_letters_and_name_their_jobs(
    api: Api, rt: execution.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    client = api.client(await api.key("alice"))
    again = await submit(client, "demo.flaky", {}, maxAttempts=3)
    last = await submit(client, "demo.flaky", {}, maxAttempts=1)
    for job in (again, last):
        assert await execution.claim(rt, uuid.UUID(job["id"])) is not None
    retries = _counter("conveyor_retries_total", "demo.flaky")
    dead = _counter("conveyor_dead_lettered_total", "demo.flaky")
    await asyncio.sleep(0.4)  # the 0.2 s leases expire: nobody renews them
    with caplog.at_level(logging.WARNING, logger="app.services.execution"):
        assert await execution.recover_expired(rt) == 2
    assert _counter("conveyor_retries_total", "demo.flaky") == retries + 1
    assert _counter("conveyor_dead_lettered_total", "demo.flaky") == dead + 1
    lines = {r.job_id: r for r in caplog.records if hasattr(r, "job_id")}
    assert set(lines) == {again["id"], last["id"]}
    assert (lines[again["id"]].attempt, lines[again["id"]].status) == (1, "QUEUED")
    assert (lines[last["id"]].attempt, lines[last["id"]].status) == (1, "FAILED")


async def test_a_sweep_says_whether_it_ran(env: support.Env, rt: execution.Runtime) -> None:
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
    api: Api, env: support.Env, rt: execution.Runtime
) -> None:
    client = api.client(await api.key("alice"))
    ids = [uuid.UUID((await submit(client, "demo.noop", {}))["id"]) for _ in range(3)]
    await env.sql("UPDATE jobs SET dispatched_at = NULL")
    key = dispatch.epoch_key(env.prefix)
    await rt.redis.set(key, b"after-the-loss")
    # Sent under the old data's epoch, marked after the loss: the mark must not stick, or
    # nothing would ever send these jobs again.
    await dispatch.mark(rt.engine, rt.redis, env.prefix, b"before-the-loss", ids[:2])
    await dispatch.mark(rt.engine, rt.redis, env.prefix, b"after-the-loss", ids[2:])
    rows = await env.sql("SELECT id, dispatched_at IS NOT NULL AS marked FROM jobs")
    assert {r["id"]: r["marked"] for r in rows} == {ids[0]: False, ids[1]: False, ids[2]: True}
