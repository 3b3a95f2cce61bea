"""Worker-side use cases against real PostgreSQL and Redis, driven directly (no worker process):
lease recovery."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

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
