"""The hub listens to the change channel only while someone subscribes (real Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from app import events
from app.domain.models import Event, JobChange
from app.domain.states import EventType, JobStatus, Priority
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
    [(_, n)] = await redis.pubsub_numsub(events.channel(prefix))
    return int(n)


async def _until(predicate: object, timeout: float = 5.0) -> None:
    """Poll Redis (another process's view: there is no event to wait on)."""
    async with asyncio.timeout(timeout):
        while not await predicate():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_the_hub_subscribes_only_while_someone_listens(redis: Redis) -> None:
    prefix = f"cvtest-{support.RUN_ID}-hub-{uuid.uuid4().hex[:6]}"
    hub = events.Hub(redis, prefix, idle_unsubscribe=0.3)
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
        await events.publish(redis, prefix, [_change(job, 1)])
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
        await events.publish(redis, prefix, [_change(job, 2)])
        item = await again.get(timeout=5)
        assert isinstance(item, JobChange)
        assert item.event.seq == 2
        again.close()
    finally:
        await hub.stop()
