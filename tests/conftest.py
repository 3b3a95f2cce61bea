"""Fixtures: a migrated template database per run, a fresh clone and Redis prefix per test."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conveyor.db import migrate
from conveyor.db.engine import ensure_database
from tests import support
from tests.servers import PrivateRedis

_counter = itertools.count()
TEMPLATE = f"cvtest_{support.RUN_ID}_tpl"


@pytest.fixture(scope="session")
async def template_db() -> AsyncIterator[str]:
    await ensure_database(support.pg_url(TEMPLATE))
    await migrate.upgrade(support.pg_url(TEMPLATE))
    yield TEMPLATE
    await support.drop_database(TEMPLATE)


@pytest.fixture
async def env(template_db: str) -> AsyncIterator[support.Env]:
    n = next(_counter)
    e = support.Env(database=f"cvtest_{support.RUN_ID}_{n}", prefix=f"cvtest-{support.RUN_ID}-{n}")
    await support.clone_database(template_db, e.database)
    yield e
    await support.drop_database(e.database)
    await support.delete_redis_prefix(e.prefix)


@pytest.fixture
def stack(env: support.Env, tmp_path: Path) -> Iterator[support.Stack]:
    s = support.Stack(env, tmp_path)
    yield s
    s.stop_all()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A Redis server of the test's own, for tests that stop, restart or flush it."""
    r = PrivateRedis.create(tmp_path)
    yield r
    r.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Captured output that holds a lone surrogate (tests of refused input log them) cannot be
    encoded as UTF-8, which pytest-xdist needs to send a report to the controller: spell such
    characters out (`\\ud800`) instead of losing the worker."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    report.sections = [
        (title, text.encode("utf-8", "backslashreplace").decode("utf-8"))
        for title, text in report.sections
    ]
