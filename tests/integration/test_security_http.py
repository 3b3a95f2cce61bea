"""The HTTP endpoint's execution time limit and request ids (in-process API)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from conveyor.db import stats
from conveyor.main import create_app
from conveyor.settings import Settings
from tests import support
from tests.integration.conftest import Api


@pytest.fixture
def settings(env: support.Env) -> Settings:
    return Settings(
        database_url=env.database_url,
        redis_url=support.REDIS_URL,
        redis_prefix=env.prefix,
        auth_cache_seconds=0,
        secret_key=support.SECRET_KEY,
        graphql_timeout_seconds=0.2,
    )


async def test_slow_requests_are_cut_off_with_504(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow_workers(*args: object, **kwargs: object) -> list[stats.WorkerInfo]:
        await asyncio.sleep(5)
        return []

    monkeypatch.setattr(stats, "workers", slow_workers)
    client = api.client(await api.key("alice"))
    started = time.monotonic()
    response = await client.raw("{ workers { id } }")
    assert time.monotonic() - started < 1.5
    assert response.status_code == 504
    assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
    assert (await client("{ me { name } }"))["me"]["name"] == "alice"


async def test_unexpected_errors_are_masked_with_the_logged_request_id(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> list[stats.WorkerInfo]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(stats, "workers", broken)
    client = api.client(await api.key("alice"))
    response = await client.raw("{ workers { id } }")
    error = response.json()["errors"][0]
    assert error["message"] == "Internal server error"
    assert "secret internals" not in response.text
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    # Logged once, at ERROR, with its traceback and the id the client was shown.
    [logged] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged.request_id == response.headers["x-request-id"]  # type: ignore[attr-defined]
    assert logged.exc_info is not None


def test_the_default_app_builds_without_env(env: support.Env) -> None:
    assert create_app(Settings(database_url=env.database_url, secret_key=support.SECRET_KEY))
