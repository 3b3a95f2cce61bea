"""Concurrent sends share MULTI/EXEC round trips (real Redis and PostgreSQL): every message
arrives once, every caller gets the epoch its messages went in under, and callers cancelled
while they wait neither lose the others' messages nor leave the dispatcher stuck."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import orjson
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from conveyor.db.engine import create_engine
from conveyor.domain.states import Priority
from conveyor.services import dispatch
from tests import support


@pytest.fixture
async def dispatcher(env: support.Env) -> AsyncIterator[tuple[dispatch.Dispatcher, Redis]]:
    redis = Redis.from_url(support.REDIS_URL)
    engine = create_engine(env.database_url, pool_size=2)
    d = dispatch.Dispatcher(redis, engine, env.prefix)
    await d.check_epoch()  # creates the epoch
    try:
        yield d, redis
    finally:
        await engine.dispose()
        await redis.aclose()


def _counting(d: dispatch.Dispatcher) -> list[int]:
    """Round trips made, each as the number of calls it carried."""
    trips: list[int] = []
    original = d._round_trip

    async def counted(group: Sequence[object]) -> bytes | None:
        trips.append(len(group))
        return await original(group)  # type: ignore[arg-type]

    d._round_trip = counted  # type: ignore[method-assign]
    return trips


async def _stream_ids(redis: Redis, prefix: str) -> list[str]:
    key = dispatch.stream_key(prefix, "default", Priority.NORMAL)
    entries = await redis.xrange(key)
    return [_job_of(fields[b"data"]) for _, fields in entries]


def _job_of(data: bytes) -> str:
    return str(orjson.loads(data)["args"][0])


async def test_concurrent_calls_share_round_trips(
    dispatcher: tuple[dispatch.Dispatcher, Redis], env: support.Env
) -> None:
    d, redis = dispatcher
    trips = _counting(d)
    epoch = await redis.get(dispatch.epoch_key(env.prefix))
    jobs = [uuid.uuid4() for _ in range(200)]
    answers = await asyncio.gather(*(d.xadd([(j, "default", int(Priority.NORMAL))]) for j in jobs))
    assert set(answers) == {epoch}
    assert sorted(await _stream_ids(redis, env.prefix)) == sorted(str(j) for j in jobs)
    assert sum(trips) == len(jobs)
    assert len(trips) < len(jobs)  # shared: the first goes alone, the rest wait and group
    assert trips[0] == 1

    # A call alone still goes at once, in its own round trip.
    trips.clear()
    alone = uuid.uuid4()
    assert await d.xadd([(alone, "default", int(Priority.NORMAL))]) == epoch
    assert trips == [1]


async def test_cancelled_waiters_do_not_block_or_drop_others(
    dispatcher: tuple[dispatch.Dispatcher, Redis], env: support.Env
) -> None:
    d, redis = dispatcher
    _counting(d)
    first = asyncio.create_task(d.xadd([(uuid.uuid4(), "default", int(Priority.NORMAL))]))
    await asyncio.sleep(0)  # the first call leads; the next ones wait behind it
    kept = [uuid.uuid4() for _ in range(5)]
    dropped = [uuid.uuid4() for _ in range(5)]
    waiting = [
        asyncio.create_task(d.xadd([(j, "default", int(Priority.NORMAL))]))
        for pair in zip(dropped, kept, strict=True)
        for j in pair
    ]
    await asyncio.sleep(0)
    for task in waiting[0::2]:  # the calls for `dropped`, the very next leader among them
        task.cancel()
    await first
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results[0::2])
    assert all(isinstance(r, bytes) for r in results[1::2])
    sent = set(await _stream_ids(redis, env.prefix))
    assert {str(j) for j in kept} <= sent
    # Nothing is stuck: a new call goes through.
    assert await d.xadd([(uuid.uuid4(), "default", int(Priority.NORMAL))]) is not None


async def test_a_failed_round_trip_fails_every_call_it_carried(
    env: support.Env,
) -> None:
    """Redis not listening (a real refused connection): every waiting call gets the error."""
    redis = Redis.from_url(f"redis://127.0.0.1:{support.free_port()}/0")
    engine = create_engine(env.database_url, pool_size=1)
    d = dispatch.Dispatcher(redis, engine, env.prefix)
    try:
        calls = [d.xadd([(uuid.uuid4(), "default", int(Priority.NORMAL))]) for _ in range(10)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, RedisConnectionError) for r in results), results
        assert d._sending is False
        assert d._outgoing == []
    finally:
        await engine.dispose()
        await redis.aclose()
