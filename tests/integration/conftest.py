"""In-process API (real PostgreSQL and Redis, no worker) for API-level tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from conveyor.db.engine import create_engine
from conveyor.main import create_app
from conveyor.services import auth
from conveyor.settings import Settings
from tests import support


@dataclass
class Api:
    settings: Settings
    transport: httpx.ASGITransport
    clients: list[support.GraphQLClient]

    def client(self, key: str | None) -> support.GraphQLClient:
        c = support.GraphQLClient("http://test", key, transport=self.transport)
        self.clients.append(c)
        return c

    async def key(self, name: str, admin: bool = False) -> str:
        engine = create_engine(self.settings.database_url, pool_size=1)
        try:
            _, key = await auth.create_api_key(
                engine,
                name=name,
                admin=admin,
                secret_key=self.settings.secret_key.get_secret_value(),
            )
        finally:
            await engine.dispose()
        return key


@pytest.fixture
def settings(env: support.Env) -> Settings:
    return Settings(
        database_url=env.database_url,
        redis_url=support.REDIS_URL,
        redis_prefix=env.prefix,
        auth_cache_seconds=0,
        secret_key=support.SECRET_KEY,
    )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with support.started(app) as running:
        a = Api(settings, httpx.ASGITransport(app=running), [])
        yield a
        for c in a.clients:
            await c.aclose()


KeyFactory = Callable[..., str]
