"""The hub listens to the change channel only while someone subscribes, on the one connection
that also carries its always-on channels (real Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from conveyor import pubsub
from conveyor.domain.models import Event, JobChange
from conveyor.domain.states import EventType, JobStatus, Priority
from tests import support


def _change(job_id: uuid.UUID, seq: int) -> JobChange:
    return JobChange(
        event=Event(
            job_id=job_id,
            seq=seq,
            type=EventType.PROGRESS,
            status=JobStatus.RUNNING,
            progress=0.5,
            message=None,
            data=None,
            at=datetime.now(UTC),
        ),
        kind="demo.sleep",
        queue="default",
        owner_id=uuid.uuid4(),
        attempt=1,
        progress=0.5,
        progress_message=None,
        priority=Priority.NORMAL,
    )


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(support.REDIS_URL)
    yield client
    await client.aclose()


async def _numsub(redis: Redis, prefix: str) -> int:
    [(_, n)] = await redis.pubsub_numsub(pubsub.channel(prefix))
    return int(n)


async def _until(predicate: object, timeout: float = 5.0) -> None:
    """Poll Redis (another process's view: there is no event to wait on)."""
    async with asyncio.timeout(timeout):
        while not await predicate():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_the_hub_subscribes_only_while_someone_listens(redis: Redis) -> None:
    prefix = f"cvtest-{support.RUN_ID}-hub-{uuid.uuid4().hex[:6]}"
    hub = pubsub.Hub(redis, prefix, idle_unsubscribe=0.3)
    await hub.start()
    try:
        await asyncio.sleep(0.3)
        assert not hub.is_listening
        assert await _numsub(redis, prefix) == 0  # nobody watches: the channel is not read

        job = uuid.uuid4()
        sub = hub.subscribe(job)
        await hub.listening()
        assert hub.is_listening
        assert await _numsub(redis, prefix) == 1
        # Subscribed before `listening` returned: the first message published after it arrives.
        await pubsub.publish(redis, prefix, [_change(job, 1)])
        item = await sub.get(timeout=5)
        assert isinstance(item, JobChange)
        assert item.event.seq == 1

        sub.close()

        async def unsubscribed() -> bool:
            return await _numsub(redis, prefix) == 0

        await _until(unsubscribed)
        assert not hub.is_listening

        # And it comes back for the next subscriber, again with nothing missed.
        again = hub.subscribe(job)
        await hub.listening()
        await pubsub.publish(redis, prefix, [_change(job, 2)])
        item = await again.get(timeout=5)
        assert isinstance(item, JobChange)
        assert item.event.seq == 2
        again.close()
    finally:
        await hub.stop()


async def _hub_clients(redis: Redis, name: str) -> list[dict[str, str]]:
    return [c for c in await redis.client_list(_type="pubsub") if c["name"] == name]


# 0: a dropped connection raises, and the hub reconnects (the app's client). 3: redis-py
# reconnects and re-subscribes by itself, and the hub must still notice the gap.
@pytest.mark.parametrize("retries", [0, 3])
async def test_always_on_channels_ride_the_hubs_one_connection(redis: Redis, retries: int) -> None:
    prefix = f"cvtest-{support.RUN_ID}-hub-{uuid.uuid4().hex[:6]}"
    name = f"conveyor-hub-test-{uuid.uuid4().hex[:8]}"
    revocations = f"{prefix}:revocations"
    client = Redis.from_url(support.REDIS_URL, retry=Retry(NoBackoff(), retries))
    hub = pubsub.Hub(client, prefix, idle_unsubscribe=0.3, name=name)
    inbox = hub.always_on(revocations)
    await hub.start()

    async def numsub(channel: str) -> int:
        [(_, n)] = await redis.pubsub_numsub(channel)
        return int(n)

    async def only(subscriptions: int) -> dict[str, str]:
        """The hub's one connection, once it holds `subscriptions` channels."""
        found: list[dict[str, str]] = []

        async def settled() -> bool:
            nonlocal found
            found = await _hub_clients(redis, name)
            return len(found) == 1 and found[0]["sub"] == str(subscriptions)

        await _until(settled)
        return found[0]

    try:
        # Subscribed from the start, with nobody watching job changes.
        first = await only(1)
        assert await numsub(revocations) == 1
        assert await _numsub(redis, prefix) == 0
        await redis.publish(revocations, b"k1")
        assert await inbox.get(timeout=5) == b"k1"

        # A subscriber adds the change channel to the same connection...
        job = uuid.uuid4()
        sub = hub.subscribe(job)
        await hub.listening()
        assert (await only(2))["id"] == first["id"]
        await pubsub.publish(redis, prefix, [_change(job, 1)])
        item = await sub.get(timeout=5)
        assert isinstance(item, JobChange)

        # ...which drops it when idle, and keeps the always-on channel.
        sub.close()
        assert (await only(1))["id"] == first["id"]
        assert not hub.is_listening

        # The connection drops: both channels come back on one new connection, and both
        # readers are told that messages may have been lost.
        again = hub.subscribe(job)
        await hub.listening()
        await redis.client_kill_filter(_id=first["id"])
        assert await inbox.get(timeout=10) is pubsub.RESYNC
        assert await again.get(timeout=10) is pubsub.RESYNC
        await hub.listening()
        assert (await only(2))["id"] != first["id"]
        await redis.publish(revocations, b"k2")
        assert await inbox.get(timeout=5) == b"k2"
        await pubsub.publish(redis, prefix, [_change(job, 2)])
        item = await again.get(timeout=5)
        assert isinstance(item, JobChange)
        assert item.event.seq == 2
        again.close()
    finally:
        await hub.stop()
        await client.aclose()

    async def closed() -> bool:
        return await _hub_clients(redis, name) == []

    await _until(closed)
