"""After PostgreSQL or Redis comes back, the very first request succeeds: no request pays for
a connection that died while it sat in a pool (private servers, restarted for real)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from conveyor.db import engine as db_engine
from conveyor.main import create_app
from conveyor.settings import Settings
from tests import support
from tests.servers import PrivatePostgres, PrivateRedis


@pytest.fixture
def private_pg(tmp_path: Path) -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres.create(tmp_path)
    yield pg
    pg.destroy()


async def _until_accepting(url: str) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                conn = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=2)
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(0.1)
                continue
            await conn.close()
            return


async def test_pooled_connections_that_died_with_postgresql_are_replaced_unseen(
    private_pg: PrivatePostgres,
) -> None:
    url = private_pg.url.replace("/conveyor", "/postgres")
    engine = db_engine.create_engine(url, pool_size=3)

    async def one() -> object:
        async with db_engine.statements(engine) as conn:
            return (await conn.execute(text("SELECT 1"))).scalar()

    try:
        # Three connections at once, then back in the pool, where the restart kills them.
        assert await asyncio.gather(one(), one(), one()) == [1, 1, 1]
        await asyncio.to_thread(private_pg.stop)
        await asyncio.to_thread(private_pg.start)
        await _until_accepting(url)
        answers = await asyncio.gather(one(), one(), one(), return_exceptions=True)
        assert answers == [1, 1, 1], answers
    finally:
        await engine.dispose()


async def test_the_first_request_after_redis_restarts_succeeds(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    app = create_app(settings.model_copy(update={"redis_url": private_redis.url}))
    async with (
        support.started(app) as running,
        httpx.AsyncClient(
            base_url="http://test", transport=httpx.ASGITransport(app=running)
        ) as http,
    ):
        assert (await http.get("/readyz")).status_code == 200
        # Restarted empty: the pooled Redis connection is dead, the next command succeeds.
        private_redis.stop()
        private_redis.start()
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
