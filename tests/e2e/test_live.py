"""Live updates across API replicas and through Redis pub/sub faults."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tests import support
from tests.servers import PrivateRedis
from tests.support import JOB, JOB_EVENTS, GraphQLClient, submit, ws_connect

UPDATES = """subscription($f: JobFilter) {
  jobUpdates(filter: $f) { jobId seq type status progress kind attempt } }"""


async def _follow(base: str, key: str, job_id: str, after: int | None = None) -> list[dict]:
    out = []
    async with ws_connect(base, key) as ws:
        async for msg in ws.subscribe(JOB_EVENTS, {"id": job_id, "after": after}):
            assert "errors" not in msg, msg
            out.append(msg["data"]["jobEvents"])
    return out


def _assert_complete(events: list[dict], stored: list[dict], after: int) -> None:
    """Every stored event after `after`, once, in order, ending with the terminal one."""
    assert [e["seq"] for e in events] == [e["seq"] for e in stored if e["seq"] > after]
    assert events[-1]["type"] == "SUCCEEDED"


async def _live_updates(base: str, key: str, kinds: list[str], out: asyncio.Queue[dict]) -> None:
    async with ws_connect(base, key) as ws:
        async for msg in ws.subscribe(UPDATES, {"f": {"kind": kinds}}):
            await out.put(msg["data"]["jobUpdates"])


async def test_a_job_submitted_through_one_replica_is_followed_through_another(
    stack: support.Stack, env: support.Env
) -> None:
    _, base_a = stack.serve("api-a")
    _, base_b = stack.serve("api-b")
    stack.worker()
    key = env.create_key("alice")
    a, b = GraphQLClient(base_a, key), GraphQLClient(base_b, key)
    updates: asyncio.Queue[dict] = asyncio.Queue()
    dashboard = asyncio.create_task(
        _live_updates(base_b, key, ["demo.sleep", "demo.noop"], updates)
    )
    # The subscription is live once it reports a probe job submitted through the other replica.
    while True:
        await submit(a, "demo.noop", {})
        try:
            await asyncio.wait_for(updates.get(), timeout=0.5)
            break
        except TimeoutError:
            continue
    job = await submit(a, "demo.sleep", {"steps": 5, "stepSeconds": 0.1})
    events = await _follow(base_b, key, job["id"], after=0)
    seen: list[dict] = []
    while not seen or seen[-1]["status"] != "SUCCEEDED":
        update = await asyncio.wait_for(updates.get(), timeout=30)
        if update["jobId"] == job["id"]:
            seen.append(update)
    dashboard.cancel()
    stored = (await b(JOB, {"id": job["id"]}))["job"]["events"]
    _assert_complete(events, stored, 0)
    assert [u["type"] for u in seen if u["type"] != "PROGRESS"] == [
        "SUBMITTED",
        "STARTED",
        "SUCCEEDED",
    ]
    assert [u["seq"] for u in seen] == sorted(u["seq"] for u in seen)
    assert seen[-1]["progress"] == 1.0
    await a.aclose()
    await b.aclose()


@pytest.mark.chaos
async def test_pubsub_connection_killed_mid_stream_loses_no_event(
    stack: support.Stack, env: support.Env, private_redis: PrivateRedis
) -> None:
    _, base = stack.serve(REDIS_URL=private_redis.url)
    stack.worker(REDIS_URL=private_redis.url)
    key = env.create_key("alice")
    client = GraphQLClient(base, key)
    job = await submit(client, "demo.sleep", {"steps": 40, "stepSeconds": 0.05})
    follower = asyncio.create_task(_follow(base, key, job["id"], after=0))
    redis = Redis.from_url(private_redis.url)
    for _ in range(3):
        await asyncio.sleep(0.4)
        await redis.client_kill_filter(_type="pubsub")
    await redis.aclose()
    events = await asyncio.wait_for(follower, timeout=60)
    stored = (await client(JOB, {"id": job["id"]}))["job"]["events"]
    await client.aclose()
    _assert_complete(events, stored, 0)


@pytest.mark.chaos
async def test_redis_restart_under_a_live_subscription_loses_no_event(
    stack: support.Stack, env: support.Env, private_redis: PrivateRedis
) -> None:
    fast = {
        "LEASE_SECONDS": "3",
        "MAINTENANCE_INTERVAL_SECONDS": "0.2",
        "RECLAIM_IDLE_SECONDS": "3",
    }
    _, base = stack.serve(REDIS_URL=private_redis.url)
    stack.worker(REDIS_URL=private_redis.url, **fast)
    key = env.create_key("alice")
    client = GraphQLClient(base, key)
    job = await submit(client, "demo.sleep", {"steps": 30, "stepSeconds": 0.1})
    follower = asyncio.create_task(_follow(base, key, job["id"], after=0))
    await asyncio.sleep(1.0)
    private_redis.stop()
    await asyncio.sleep(0.5)
    private_redis.start()
    events = await asyncio.wait_for(follower, timeout=90)
    stored = (await client(JOB, {"id": job["id"]}))["job"]["events"]
    await client.aclose()
    _assert_complete(events, stored, 0)


async def test_identical_dashboard_subscriptions_share_one_feed(
    stack: support.Stack, env: support.Env
) -> None:
    import httpx

    _, base = stack.serve()
    stack.worker()
    key = env.create_key("alice")
    queues: list[asyncio.Queue[dict]] = [asyncio.Queue() for _ in range(4)]
    kinds = [["demo.sleep"], ["demo.sleep"], ["demo.sleep"], ["demo.noop", "demo.sleep"]]
    tasks = [
        asyncio.create_task(_live_updates(base, key, k, q))
        for k, q in zip(kinds, queues, strict=True)
    ]
    client = GraphQLClient(base, key)
    while True:  # until the last subscription is live
        await submit(client, "demo.noop", {})
        try:
            await asyncio.wait_for(queues[3].get(), timeout=0.5)
            break
        except TimeoutError:
            continue
    async with httpx.AsyncClient() as http:
        scraped = (await http.get(f"{base}/metrics")).text
    assert "conveyor_shared_feeds 2.0" in scraped
    assert "conveyor_open_subscriptions 4.0" in scraped
    job = await submit(client, "demo.sleep", {"steps": 3, "stepSeconds": 0.05})
    streams = []
    for q in queues[:3]:
        seen: list[dict] = []
        while not seen or seen[-1]["status"] != "SUCCEEDED":
            update = await asyncio.wait_for(q.get(), timeout=30)
            if update["jobId"] == job["id"]:
                seen.append(update)
        streams.append(seen)
    for task in tasks:
        task.cancel()
    await client.aclose()
    assert streams[0] == streams[1] == streams[2]
