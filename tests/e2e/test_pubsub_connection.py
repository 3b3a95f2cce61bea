"""One Redis pub/sub connection per API process, shared by all its subscribers and by key
revocations (ADR-0015), against a real `conveyor serve`."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed

from tests import support
from tests.servers import PrivateRedis
from tests.support import JOB_EVENTS, GraphQLClient, submit, ws_connect

SUBSCRIBERS = 5


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(support.REDIS_URL)
    yield client
    await client.aclose()


async def _hub_connections(redis: Redis, pid: int) -> list[dict[str, str]]:
    """The pub/sub connections the API process `pid` named as its hub's."""
    name = f"conveyor-hub:{socket.gethostname()}-{pid}"
    return [c for c in await redis.client_list(_type="pubsub") if c["name"] == name]


async def _subscribers(redis: Redis, prefix: str) -> dict[str, int]:
    """Every channel of this test's prefix with a subscriber, and how many it has."""
    channels = await redis.pubsub_channels(f"{prefix}:*")
    if not channels:
        return {}
    return {c.decode(): int(n) for c, n in await redis.pubsub_numsub(*channels)}


async def _one_connection(redis: Redis, pid: int, prefix: str, channels: int) -> dict[str, str]:
    """Wait until the process holds exactly one pub/sub connection on `channels` channels and
    no other connection is subscribed to this prefix's channels; that connection."""
    expected = {f"{prefix}:revocations": 1, f"{prefix}:events": 1}
    if channels == 1:
        del expected[f"{prefix}:events"]
    hub: list[dict[str, str]] = []
    subscribers: dict[str, int] = {}
    try:
        async with asyncio.timeout(15):
            while True:
                hub = await _hub_connections(redis, pid)
                subscribers = await _subscribers(redis, prefix)
                if (
                    len(hub) == 1
                    and (hub[0]["sub"], hub[0]["psub"]) == (str(channels), "0")
                    and subscribers == expected
                ):
                    return hub[0]
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"hub connections {hub}, subscribers {subscribers}") from None


async def _close_code(ws: support.WSClient, timeout: float) -> int | None:
    """Read (answering pings) until the server closes the socket; the close code."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                msg = json.loads(await ws.ws.recv())
                if msg.get("type") == "ping":
                    await ws.ws.send(json.dumps({"type": "pong"}))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def _follow(ws: support.WSClient, job_id: str) -> None:
    """Subscribe to `jobEvents` and wait for the snapshot: the subscription is live."""
    events = ws.subscribe(JOB_EVENTS, {"id": job_id})
    first = await anext(events)
    assert first["data"]["jobEvents"]["type"] == "SNAPSHOT", first


async def test_an_api_process_holds_one_pubsub_connection_for_all_subscribers_and_revocations(
    stack: support.Stack, env: support.Env, redis: Redis
) -> None:
    # A revocation must arrive as a message: the periodic re-check is far off.
    proc, base = stack.serve(process=True, REVOCATION_CHECK_SECONDS="60")
    pid = proc.popen.pid
    key = env.create_key("alice")
    client = GraphQLClient(base, key)
    key_id = (await client("{ me { id } }"))["me"]["id"]
    job = await submit(client, "demo.sleep", {})  # no worker: it waits, and so do its followers
    await client.aclose()

    # Revocations are listened to from the start; job changes only once someone subscribes.
    idle = await _one_connection(redis, pid, env.prefix, channels=1)

    async with AsyncExitStack() as sockets:
        followers = [
            await sockets.enter_async_context(ws_connect(base, key)) for _ in range(SUBSCRIBERS)
        ]
        for ws in followers:
            await _follow(ws, job["id"])
        hub = await _one_connection(redis, pid, env.prefix, channels=2)
        assert hub["id"] == idle["id"]

        # A dropped connection comes back as one connection, with both channels.
        await redis.client_kill_filter(_id=hub["id"])
        again = await _one_connection(redis, pid, env.prefix, channels=2)
        assert again["id"] != hub["id"]

        # And revocation messages still arrive on it: every socket closes at once.
        await asyncio.to_thread(env.cli, "revoke-api-key", "--id", key_id)
        codes = await asyncio.gather(*(_close_code(ws, timeout=5) for ws in followers))
        assert codes == [4403] * SUBSCRIBERS


@pytest.mark.chaos
async def test_a_revocation_published_while_redis_is_down_closes_sockets_on_reconnect(
    stack: support.Stack, env: support.Env, private_redis: PrivateRedis
) -> None:
    """The message is lost to pub/sub; the hub's reconnect makes the process re-check its open
    connections' keys in PostgreSQL at once, not at the next periodic check."""
    _, base = stack.serve(REDIS_URL=private_redis.url, REVOCATION_CHECK_SECONDS="120")
    key = env.create_key("alice")
    client = GraphQLClient(base, key)
    key_id = (await client("{ me { id } }"))["me"]["id"]
    job = await submit(client, "demo.sleep", {})
    await client.aclose()
    async with ws_connect(base, key) as ws:
        await _follow(ws, job["id"])
        private_redis.stop()
        # Revoked in PostgreSQL; publishing the revocation fails (and is logged).
        await asyncio.to_thread(
            env.cli, "revoke-api-key", "--id", key_id, REDIS_URL=private_redis.url
        )
        private_redis.start()
        assert await _close_code(ws, timeout=30) == 4403
