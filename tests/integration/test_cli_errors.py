"""What `conveyor` says when PostgreSQL, Redis or the settings are not right: one line that
names the problem and the fix, exit code 2, never a traceback. Real processes against the real
PostgreSQL and Redis; the databases here are this module's own (`clierr_*`)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from conveyor.db import migrate
from tests import support

HEAD = ScriptDirectory(str(migrate.MIGRATIONS)).get_current_head()


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "ENV": "dev",
        "DATABASE_URL": support.pg_url(f"clierr_{support.RUN_ID}_missing"),
        "REDIS_URL": support.REDIS_URL,
        "REDIS_PREFIX": f"clierr-{support.RUN_ID}",
        "SECRET_KEY": support.SECRET_KEY,
        "LOG_FORMAT": "text",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        env=environ,
        cwd=support.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_line(out: subprocess.CompletedProcess[str]) -> str:
    """The single line the command printed, after checking it failed as a user error."""
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("conveyor: "), out.stderr
    return lines[0]


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """An empty database, as `createdb` leaves it."""
    name = f"clierr_{support.RUN_ID}_{uuid.uuid4().hex[:8]}"
    conn = await support.admin_conn()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield name
    await support.drop_database(name)


@pytest.mark.parametrize(
    "command",
    [["create-api-key", "--name", "x"], ["worker"], ["serve", "--port", "0"]],
    ids=["create-api-key", "worker", "serve"],
)
async def test_a_missing_database_says_to_run_migrate(command: list[str]) -> None:
    name = f"clierr_{support.RUN_ID}_missing"
    line = _one_line(_run(*command, DATABASE_URL=support.pg_url(name)))
    assert line == (
        f'conveyor: database "{name}" does not exist on {support.PG_HOST}:{support.PG_PORT}: '
        "run `conveyor migrate` (it creates it)"
    )
    conn = await support.admin_conn()
    try:
        assert not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()


async def test_a_database_not_at_the_latest_migration_is_refused(database: str) -> None:
    url = support.pg_url(database)
    line = _one_line(_run("worker", DATABASE_URL=url))
    assert line == (
        f"conveyor: database {database} is not migrated (at none, code wants {HEAD}): "
        "run `conveyor migrate`"
    )

    previous = ScriptDirectory(str(migrate.MIGRATIONS)).get_revision(HEAD).down_revision
    assert isinstance(previous, str)
    await migrate.upgrade(url, previous)
    line = _one_line(_run("create-api-key", "--name", "x", DATABASE_URL=url))
    assert f"is not migrated (at {previous}, code wants {HEAD})" in line

    # Migrated by a newer Conveyor that this code is too old for (ADR-0016): `conveyor
    # migrate` would not help.
    conn = await asyncpg.connect(support.pg_url(database, "postgresql"))
    try:
        await conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
        await conn.execute(migrate.floor_comment("9999_future"))
    finally:
        await conn.close()
    for command in (["serve", "--port", "0"], ["migrate"]):
        line = _one_line(_run(*command, DATABASE_URL=url))
        assert line == (
            f"conveyor: database {database} is at revision 9999_future, which this code does "
            f"not know (it wants {HEAD}; it needs code from revision 9999_future on): a newer "
            "Conveyor migrated it; run that version"
        )


async def test_a_newer_schema_that_declares_this_code_compatible_is_accepted(
    database: str,
) -> None:
    """The previous release during a rolling upgrade (ADR-0016): it starts, with a warning,
    and its `conveyor migrate` has nothing to do."""
    url = support.pg_url(database)
    await migrate.upgrade(url)
    conn = await asyncpg.connect(support.pg_url(database, "postgresql"))
    try:
        await conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
        await conn.execute(migrate.floor_comment(HEAD))
    finally:
        await conn.close()
    out = _run("create-api-key", "--name", "x", DATABASE_URL=url)
    assert out.returncode == 0, out.stderr
    assert (
        f"database {database} is at revision 9999_future, newer than this code ({HEAD}), "
        f"which it declares compatible (code from {HEAD} on): running"
    ) in out.stderr
    out = _run("migrate", DATABASE_URL=url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == (
        "the database is at a newer, compatible revision: nothing to do"
    )


def test_an_unreachable_postgresql_says_where_and_how_to_start_it() -> None:
    port = support.free_port()  # nothing listens there
    url = f"postgresql://postgres@127.0.0.1:{port}/conveyor"
    line = _one_line(_run("worker", DATABASE_URL=url))
    assert line.startswith(f"conveyor: PostgreSQL is not reachable at 127.0.0.1:{port}/conveyor (")
    assert line.endswith("or set DATABASE_URL.")


async def test_an_unreachable_redis_says_where_and_how_to_start_it(database: str) -> None:
    url = support.pg_url(database)
    await migrate.upgrade(url)
    port = support.free_port()
    line = _one_line(_run("worker", DATABASE_URL=url, REDIS_URL=f"redis://:pw@127.0.0.1:{port}/0"))
    assert line.startswith(f"conveyor: Redis is not reachable at 127.0.0.1:{port} (")
    assert line.endswith("or set REDIS_URL.")
    assert "pw" not in line  # the URL's password is not repeated


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": ""}, "invalid setting DATABASE_URL: not a PostgreSQL URL;"),
        ({"DATABASE_URL": "foo"}, "invalid setting DATABASE_URL: not a PostgreSQL URL;"),
        ({"DATABASE_URL": "mysql://db/x"}, "invalid setting DATABASE_URL: not a PostgreSQL URL;"),
        ({"REDIS_URL": ""}, "invalid setting REDIS_URL: not a Redis URL;"),
        ({"REDIS_URL": "redis://h:port/0"}, "invalid setting REDIS_URL: Port could not be cast"),
        ({"ENV": "production", "SECRET_KEY": ""}, "invalid setting SECRET_KEY: must be a random"),
        ({"WORKER_CONCURRENCY": "many"}, "invalid setting WORKER_CONCURRENCY: Input should be"),
    ],
    ids=["empty-db", "foo-db", "mysql-db", "empty-redis", "bad-port", "no-secret", "concurrency"],
)
def test_a_malformed_setting_is_named(env: dict[str, str], expected: str) -> None:
    assert _one_line(_run("worker", **env)).startswith(f"conveyor: {expected}")


def test_every_malformed_setting_gets_its_line() -> None:
    out = _run("create-api-key", "--name", "x", DATABASE_URL="foo", REDIS_URL="", ENV="nope")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert [line.split(":")[1] for line in out.stderr.splitlines()] == [
        " invalid setting ENV",
        " invalid setting DATABASE_URL",
        " invalid setting REDIS_URL",
    ]


@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_worker_concurrency_must_be_a_positive_number(value: str) -> None:
    out = _run("worker", "--concurrency", value)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "conveyor worker: error: argument --concurrency: " in out.stderr


def test_the_development_key_warning_is_left_to_the_commands_that_use_the_key() -> None:
    assert "SECRET_KEY" not in _run("export-schema", "--check", SECRET_KEY="").stderr
    out = _run("create-api-key", "--name", "x", SECRET_KEY="")
    warning, line = out.stderr.strip().splitlines()
    assert warning.endswith(
        "SECRET_KEY is not set: using the built-in development key (ENV=dev only)"
    )
    assert "does not exist" in line
