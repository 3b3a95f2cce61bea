"""Redis and the dispatcher: a job submitted while Redis is down is acknowledged from PostgreSQL
and sent once Redis is back; a job the API did send is not sent again by a worker that starts
later (the Redis epoch, ADR-0013)."""

from __future__ import annotations

import asyncio

import pytest

from tests import support
from tests.servers import PrivateRedis
from tests.support import GraphQLClient, submit, wait_for_status

pytestmark = pytest.mark.chaos


async def test_a_job_submitted_while_redis_is_down_is_acknowledged_and_runs_later(
    stack: support.Stack, env: support.Env, private_redis: PrivateRedis
) -> None:
    _, base = stack.serve(REDIS_URL=private_redis.url)
    client = GraphQLClient(base, env.create_key("alice"))
    private_redis.stop()

    jobs = [await submit(client, "demo.sleep", {"steps": 2, "stepSeconds": 0.05}) for _ in range(3)]
    assert {j["status"] for j in jobs} == {"QUEUED"}
    rows = await env.sql("SELECT count(*) AS n FROM jobs WHERE dispatched_at IS NULL")
    assert rows[0]["n"] == 3  # acknowledged, held by PostgreSQL, not yet in any stream

    private_redis.start()  # empty
    stack.worker(REDIS_URL=private_redis.url, MAINTENANCE_INTERVAL_SECONDS="0.2")
    for job in jobs:
        done = await wait_for_status(client, job["id"], {"SUCCEEDED"}, timeout=60)
        assert [a["status"] for a in done["attempts"]] == ["SUCCEEDED"]
    await client.aclose()


async def test_a_first_worker_does_not_resend_what_the_api_already_sent(
    stack: support.Stack, env: support.Env
) -> None:
    """The API adopts (or creates) the Redis epoch before it sends, so a worker that starts
    later finds the epoch and knows the messages are there: each job is sent exactly once."""
    from redis.asyncio import Redis

    from conveyor.services.dispatch import stream_key

    _, base = stack.serve()
    client = GraphQLClient(base, env.create_key("alice"))
    # One slot, so most jobs are still QUEUED through the worker's first sweeps.
    jobs = [await submit(client, "demo.sleep", {"steps": 1, "stepSeconds": 0.3}) for _ in range(10)]
    stack.worker(
        "worker",
        "--concurrency",
        "1",
        MAINTENANCE_INTERVAL_SECONDS="0.2",
        REDISPATCH_AFTER_SECONDS="1",
    )
    for job in jobs:
        await wait_for_status(client, job["id"], {"SUCCEEDED"}, timeout=60)
    await asyncio.sleep(2)  # several sweeps after the last job: nothing more is sent
    await client.aclose()
    redis = Redis.from_url(support.REDIS_URL)
    try:
        info = await redis.xinfo_stream(stream_key(env.prefix, "default", 1))
    finally:
        await redis.aclose()
    assert info["entries-added"] == 10
