"""Fault tests: SIGKILLed workers, Redis restarted empty, PostgreSQL restarted, under load.

Run alone with `make chaos`. They use private Redis and PostgreSQL servers (tests/servers.py)
where they restart one, so nothing else on the machine is disturbed.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests import support
from tests.servers import PrivatePostgres, PrivateRedis
from tests.support import GraphQLClient

pytestmark = pytest.mark.chaos

FAST = {
    "LEASE_SECONDS": "3",
    "MAINTENANCE_INTERVAL_SECONDS": "0.2",
    "RECLAIM_IDLE_SECONDS": "3",
    "REDISPATCH_AFTER_SECONDS": "2",
}
SUBMIT_MANY = """mutation($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) { __typename ... on Job { id } } }"""
STATUSES = "{ jobs(first: 500) { edges { node { id status attempts { status workerId } } } } }"


async def _submit_sleepers(client: GraphQLClient, n: int, lo: float, hi: float) -> list[str]:
    rng = random.Random(n)
    inputs = [
        {
            "kind": "demo.sleep",
            "payload": {"steps": 4, "stepSeconds": round(rng.uniform(lo, hi) / 4, 3)},
        }
        for _ in range(n)
    ]
    results = (await client(SUBMIT_MANY, {"inputs": inputs}))["submitJobs"]
    assert all(r["__typename"] == "Job" for r in results)
    return [r["id"] for r in results]


async def _wait_all(client: GraphQLClient, ids: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            nodes = [e["node"] for e in (await client(STATUSES))["jobs"]["edges"]]
        except (AssertionError, httpx.HTTPError):
            nodes = []  # the API may answer 503 while a dependency restarts
        mine = [n for n in nodes if n["id"] in set(ids)]
        if len(mine) == len(ids) and all(
            n["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") for n in mine
        ):
            return mine
        if time.monotonic() > deadline:
            pending = [(n["id"], n["status"]) for n in mine if n["status"] != "SUCCEEDED"]
            raise AssertionError(f"{len(pending)} jobs unfinished after {timeout}s: {pending[:10]}")
        await asyncio.sleep(0.5)


async def test_sigkill_a_worker_mid_run_loses_nothing(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    victim = stack.worker("w1", process=True, **FAST)
    metrics_port = support.free_port()
    stack.worker("w2", process=True, **FAST, METRICS_PORT=str(metrics_port))
    client = GraphQLClient(base, env.create_key("alice", admin=True))
    ids = await _submit_sleepers(client, 200, 1.0, 3.0)
    await asyncio.sleep(3)
    victim.kill()
    jobs = await _wait_all(client, ids, timeout=120)
    await client.aclose()
    assert {j["status"] for j in jobs} == {"SUCCEEDED"}
    for job in jobs:
        assert [a["status"] for a in job["attempts"]].count("SUCCEEDED") == 1
    victim_id = f"{__import__('socket').gethostname()}-{victim.popen.pid}"
    lost = [a for j in jobs for a in j["attempts"] if a["status"] == "LOST"]
    assert lost, "the killed worker was running jobs"
    assert {a["workerId"] for a in lost} == {victim_id}
    rows = await env.sql(
        "SELECT count(*) AS n FROM job_attempts WHERE worker_id = $1 AND status = 'RUNNING'",
        victim_id,
    )
    assert rows[0]["n"] == 0
    # The survivor recovered every lost attempt (demo.sleep never fails on its own), and each
    # one sent back to the queue counts as a retry.
    async with httpx.AsyncClient() as http:
        scraped = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    assert f'conveyor_retries_total{{kind="demo.sleep"}} {float(len(lost))}' in scraped
    assert f"conveyor_recovered_attempts_total {float(len(lost))}" in scraped


async def test_redis_restarted_empty_loses_no_job(
    stack: support.Stack, env: support.Env, private_redis: PrivateRedis
) -> None:
    _, base = stack.serve(REDIS_URL=private_redis.url)
    stack.worker("worker", "--concurrency", "4", REDIS_URL=private_redis.url, **FAST)
    client = GraphQLClient(base, env.create_key("alice"))
    ids = await _submit_sleepers(client, 40, 0.2, 0.6)
    await asyncio.sleep(1.0)
    private_redis.stop()
    await asyncio.sleep(1.0)
    private_redis.start()  # a new, empty instance on the same port
    ids += await _submit_sleepers(client, 10, 0.2, 0.4)
    jobs = await _wait_all(client, ids, timeout=120)
    await client.aclose()
    assert {j["status"] for j in jobs} == {"SUCCEEDED"}


async def test_redis_emptied_while_no_worker_runs_loses_no_job(
    stack: support.Stack, env: support.Env, private_redis: PrivateRedis
) -> None:
    """Jobs already sent are lost with Redis; the next worker to start must notice it even
    though it never saw the old Redis, and send every QUEUED job again from PostgreSQL."""
    from redis.asyncio import Redis

    _, base = stack.serve(REDIS_URL=private_redis.url)
    first = stack.worker(
        "w1", "--concurrency", "2", process=True, REDIS_URL=private_redis.url, **FAST
    )
    client = GraphQLClient(base, env.create_key("alice"))
    ids = await _submit_sleepers(client, 30, 0.4, 0.8)
    sent_and_waiting = (
        "SELECT count(*) AS n FROM jobs WHERE status = 'QUEUED' AND dispatched_at IS NOT NULL"
    )
    deadline = time.monotonic() + 30
    while (await env.sql(sent_and_waiting))[0]["n"] < 10:
        assert time.monotonic() < deadline, "jobs were never marked sent"
        await asyncio.sleep(0.1)
    first.kill()  # every worker is gone
    redis = Redis.from_url(private_redis.url)  # this test's own server: nobody else uses it
    try:
        await redis.flushall()
    finally:
        await redis.aclose()
    stack.worker("w2", "--concurrency", "8", REDIS_URL=private_redis.url, **FAST)
    jobs = await _wait_all(client, ids, timeout=120)
    await client.aclose()
    assert {j["status"] for j in jobs} == {"SUCCEEDED"}


@pytest.fixture
def private_pg(tmp_path: Path) -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres.create(tmp_path)
    yield pg
    pg.destroy()


async def test_postgresql_restart_while_jobs_run(
    stack: support.Stack, env: support.Env, private_pg: PrivatePostgres
) -> None:
    pg_env = {"DATABASE_URL": private_pg.url, "AUTH_CACHE_SECONDS": "0"}
    await asyncio.to_thread(env.cli, "migrate", **pg_env)
    key = await asyncio.to_thread(env.create_key, "alice", False, **pg_env)
    _, base = stack.serve(**pg_env)
    stack.worker("worker", **pg_env, **FAST)
    client = GraphQLClient(base, key)
    ids = await _submit_sleepers(client, 40, 0.5, 1.5)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(private_pg.stop)
    # During the outage: a clear, quick error, not a hang.
    started = time.monotonic()
    response = await client.raw("{ jobs { totalCount } }")
    assert time.monotonic() - started < 15
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    await asyncio.sleep(2.0)
    await asyncio.to_thread(private_pg.start)
    jobs = await _wait_all(client, ids, timeout=120)
    await client.aclose()
    assert {j["status"] for j in jobs} == {"SUCCEEDED"}
    for job in jobs:
        assert [a["status"] for a in job["attempts"]].count("SUCCEEDED") == 1


async def test_a_worker_takes_no_more_than_it_can_run_while_postgresql_is_down(
    stack: support.Stack, env: support.Env, private_pg: PrivatePostgres
) -> None:
    """A claim that fails for an outage holds its slot and retries: the worker does not drain
    the stream into its pending list (where messages would wait to be re-claimed)."""
    from redis.asyncio import Redis

    from conveyor.services.dispatch import message, stream_key

    pg_env = {"DATABASE_URL": private_pg.url, "AUTH_CACHE_SECONDS": "0"}
    await asyncio.to_thread(env.cli, "migrate", **pg_env)
    key = await asyncio.to_thread(env.create_key, "alice", False, **pg_env)
    _, base = stack.serve(**pg_env)
    concurrency = 4
    stack.worker("worker", "--concurrency", str(concurrency), **pg_env, **FAST)
    client = GraphQLClient(base, key)
    # 200 jobs stored but not sent (far-future runAt), then made QUEUED and marked sent: their
    # messages arrive only once PostgreSQL is down, at an idle worker.
    inputs = [{"kind": "demo.noop", "payload": {}, "runAt": "2100-01-01T00:00:00+00:00"}] * 200
    results = (await client(SUBMIT_MANY, {"inputs": inputs}))["submitJobs"]
    ids = [r["id"] for r in results]
    conn = await asyncpg.connect(private_pg.url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(
            "UPDATE jobs SET status = 'QUEUED', next_run_at = NULL, dispatched_at = now()"
        )
    finally:
        await conn.close()
    await asyncio.to_thread(private_pg.stop)
    stream = stream_key(env.prefix, "default", 1)
    redis = Redis.from_url(support.REDIS_URL)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.xadd(stream, {b"data": message(uuid.UUID(job_id))})
            await pipe.execute()
        await asyncio.sleep(3.0)
        pending = (await redis.xpending(stream, "conveyor"))["pending"]
        # Held by the slots retrying their claims, plus one small read waiting for a slot.
        assert pending <= 2 * concurrency
        assert await redis.xlen(stream) == len(ids)
    finally:
        await redis.aclose()
    await asyncio.to_thread(private_pg.start)
    jobs = await _wait_all(client, ids, timeout=120)
    await client.aclose()
    assert {j["status"] for j in jobs} == {"SUCCEEDED"}


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (a reaper may not have collected it yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def test_a_sigkilled_worker_leaves_no_pool_process_behind(
    stack: support.Stack, env: support.Env
) -> None:
    _, base = stack.serve()
    worker = stack.worker("cpu", "--queues", "cpu", process=True, WORKER_PROCESSES="2", **FAST)
    assert isinstance(worker, support.Proc)
    client = GraphQLClient(base, env.create_key("alice"))
    job = await support.submit(client, "compute.primes", {"limit": 50_000_000})
    await support.wait_for_status(client, job["id"], {"RUNNING"})
    pool: set[int] = set()
    deadline = time.monotonic() + 30
    while not pool and time.monotonic() < deadline:  # the pool starts with the first call
        pool = _children(worker.popen.pid)
        await asyncio.sleep(0.1)
    assert pool, "the worker started no pool process"
    worker.kill()
    deadline = time.monotonic() + 15
    while any(_running(p) for p in pool) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    assert not [p for p in pool if _running(p)], "pool processes outlived their worker"
    await client.aclose()
