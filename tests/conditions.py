"""Waiting on conditions with a deadline (never a fixed sleep), and what the tests read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis

from conveyor.services.dispatch import stream_key
from tests import support

T = TypeVar("T")


async def until(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30.0) -> T:
    """The first truthy answer of `probe`, polled every 20 ms; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout}s for {what}")
        await asyncio.sleep(0.02)


async def job_status(env: support.Env, job_id: object) -> str | None:
    rows = await env.sql("SELECT status FROM jobs WHERE id = $1::uuid", str(job_id))
    return str(rows[0]["status"]) if rows else None


async def finished(env: support.Env, job_id: object, timeout: float = 60.0) -> str:
    async def probe() -> str | None:
        status = await job_status(env, job_id)
        return status if status in ("SUCCEEDED", "FAILED", "CANCELLED") else None

    return await until(probe, f"job {job_id} to finish", timeout)


async def messages_sent(env: support.Env, queue: str = "default", priority: int = 1) -> int:
    """Messages ever added to a stream (acknowledged ones are deleted: XLEN would not do)."""
    redis = Redis.from_url(support.REDIS_URL)
    try:
        key = stream_key(env.prefix, queue, priority)
        if not await redis.exists(key):
            return 0
        return int((await redis.xinfo_stream(key))["entries-added"])
    finally:
        await redis.aclose()
