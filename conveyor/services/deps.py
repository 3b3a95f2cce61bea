"""The process's dependencies: one container, built once at start-up (the API's lifespan, the
worker's start, a CLI command, a test) and passed explicitly to every use case.

Like taskiq's `TaskiqState` or arq's `ctx`: one place to look for the long-lived clients and the
settings, and no module globals. What only one kind of process holds (the API's events hub and
open sockets, the worker's runner) lives in that process's own layer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.db.engine import create_engine
from conveyor.kinds.registry import Registry
from conveyor.services.dispatch import Dispatcher
from conveyor.services.relay import Relay
from conveyor.settings import Settings


class Cache:
    """Short-lived per-process values (queue counts, metrics, the tenant of a key): an entry
    lives until its deadline, or for the process's life. Bounded: past `max_entries` it is
    emptied, which only costs a few re-reads."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: dict[Hashable, tuple[float, object]] = {}
        self._max_entries = max_entries

    def get(self, key: Hashable) -> object | None:
        found = self._entries.get(key)
        if found is None or found[0] <= time.monotonic():
            return None
        return found[1]

    def put(self, key: Hashable, value: object, ttl: float | None = None) -> None:
        """Keep `value` for `ttl` seconds (None: for the process's life)."""
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        deadline = float("inf") if ttl is None else time.monotonic() + ttl
        self._entries[key] = (deadline, value)


def redis_retry() -> Retry:
    """Connection errors are tried again, twice, after a few milliseconds: a pooled connection
    that died with a Redis restart is replaced on the spot instead of failing one command (a
    client from a URL gets no retry by default). A real outage still fails within ~50 ms."""
    return Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.05), retries=2)


@dataclass(eq=False)
class Deps:
    settings: Settings
    engine: AsyncEngine
    redis: Redis
    dispatcher: Dispatcher
    registry: Registry
    cache: Cache = field(default_factory=Cache)
    #: The outbox relay this process runs (ADR-0021), when it runs one.
    relay: Relay | None = None

    @property
    def prefix(self) -> str:
        """The prefix of every Redis key and channel of this deployment."""
        return self.settings.redis_prefix


@asynccontextmanager
async def open_deps(
    settings: Settings, registry: Registry, *, pool_size: int = 10, relay: bool = True
) -> AsyncIterator[Deps]:
    """Connect to PostgreSQL and Redis, start the dispatcher and (`relay`) the outbox relay
    that sends what producers commit (ADR-0021); close everything on the way out."""
    engine = create_engine(settings.database_url, pool_size=pool_size)
    redis = Redis.from_url(
        settings.redis_url, socket_timeout=10, socket_connect_timeout=5, retry=redis_retry()
    )
    dispatcher = Dispatcher(redis, engine, settings.redis_prefix)
    deps = Deps(
        settings=settings, engine=engine, redis=redis, dispatcher=dispatcher, registry=registry
    )
    relayer = Relay(dispatcher, settings.database_url) if relay else None
    try:
        await dispatcher.start()
        if relayer is not None:
            await relayer.start()
            deps.relay = relayer
        yield deps
    finally:
        try:
            if relayer is not None:
                await relayer.stop()
            await dispatcher.stop()
        finally:
            await redis.aclose()
            await engine.dispose()
