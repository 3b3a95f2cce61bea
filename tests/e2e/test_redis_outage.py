"""Submitting while Redis is down: the job is acknowledged from PostgreSQL and sent once Redis
is back, by the dispatcher's sweep of QUEUED jobs never handed to Redis."""

from __future__ import annotations

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
