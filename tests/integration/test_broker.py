"""`ConveyorBroker` against a real Redis: what a worker takes over from a dead consumer."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from conveyor.services.dispatch import stream_key
from conveyor.worker.broker import GROUP, ConveyorBroker
from tests import support

BACKLOG = 1000
SLOTS = 16


async def test_a_dead_consumers_backlog_drains_at_once_without_hoarding(
    env: support.Env,
) -> None:
    stream = stream_key(env.prefix, "default", 1)
    broker = ConveyorBroker(
        support.REDIS_URL,
        prefix=env.prefix,
        queues=["default"],
        consumer_name="alive",
        read_count=4,
        reclaim_idle_seconds=1.0,
        free_slots=lambda: SLOTS,
    )
    await broker.startup()
    redis = Redis.from_url(support.REDIS_URL)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(BACKLOG):
                pipe.xadd(stream, {b"data": str(i).encode()})
            await pipe.execute()
        # A consumer reads the whole backlog and dies (or could not claim any of it).
        await redis.xreadgroup(GROUP, "dead", {stream: ">"}, count=BACKLOG)
        await asyncio.sleep(1.1)  # now idle for longer than reclaim_idle_seconds

        seen: set[bytes] = set()
        # Taken over RECLAIM_IDLE/3 s apart, 4 at a time, this took 80 s: each pass now takes
        # as many as the worker has slots for and the next pass follows the cursor at once.
        async with asyncio.timeout(30):
            async for message in broker.listen():
                seen.add(message.data)
                await message.ack()
                # No hoarding: the worker holds no more unacknowledged messages than it has
                # slots (the one in hand is acknowledged).
                pending: Any = await redis.xpending(stream, GROUP)
                mine = {
                    (c["name"].decode() if isinstance(c["name"], bytes) else c["name"]): c[
                        "pending"
                    ]
                    for c in pending["consumers"]
                }
                assert mine.get("alive", 0) <= SLOTS
                if len(seen) == BACKLOG:
                    break
        assert seen == {str(i).encode() for i in range(BACKLOG)}
        assert (await redis.xpending(stream, GROUP))["pending"] == 0
    finally:
        await redis.aclose()
        await broker.shutdown()
