"""What a committed change puts on Redis pub/sub, read by a plain subscriber (real Redis)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from conveyor import pubsub
from conveyor.domain.states import EventType, JobStatus
from conveyor.settings import Settings
from tests import support
from tests.integration.conftest import Api
from tests.support import submit


async def test_a_submit_is_published_after_commit_and_decodes_to_the_stored_job(
    api: Api, settings: Settings
) -> None:
    # Values read from PostgreSQL carry asyncpg's own UUID type: the wire form must take it.
    redis = Redis.from_url(support.REDIS_URL)
    listener = redis.pubsub()
    try:
        await listener.subscribe(pubsub.channel(settings.redis_prefix))
        client = api.client(await api.key("alice"))
        job = await submit(client, "demo.noop", {})
        async with asyncio.timeout(10):
            while True:
                message = await listener.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    break
        change = pubsub.decode(message["data"])
        assert (str(change.job_id), change.event.seq) == (job["id"], 1)
        assert (change.event.type, change.event.status) == (EventType.SUBMITTED, JobStatus.QUEUED)
        assert change.kind == "demo.noop"
    finally:
        await listener.aclose()  # type: ignore[no-untyped-call]
        await redis.aclose()
