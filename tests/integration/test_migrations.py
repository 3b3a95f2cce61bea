"""The migration chain (ADR-0016): pytest-alembic's standard checks (one head, upgrade, the
models in conveyor/db/tables.py matching the migrated schema, every revision down and up again), no
empty revision, the compatibility floor each revision records, and `conveyor migrate` run twice
at once on a fresh database. Each test has a fresh, empty database of its own."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_alembic
from alembic import command
from alembic.script import ScriptDirectory
from pytest_alembic import MigrationContext
from pytest_alembic import tests as standard
from pytest_alembic.config import Config as PytestAlembicConfig
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from conveyor.db import migrate
from conveyor.db.engine import ensure_database
from tests import support

SCRIPTS = ScriptDirectory(str(migrate.MIGRATIONS))
TABLES = """SELECT array_agg(tablename::text ORDER BY tablename) AS names
            FROM pg_tables WHERE schemaname = 'public'"""
FLOOR = "SELECT obj_description('alembic_version'::regclass, 'pg_class') AS c"


def _render(revision: str) -> str:
    """The SQL one revision runs, rendered offline (`alembic upgrade PARENT:REV --sql`)."""
    config = migrate.alembic_config("postgresql+asyncpg://render@localhost/render")
    config.output_buffer = io.StringIO()
    parent = SCRIPTS.get_revision(revision).down_revision
    command.upgrade(config, f"{parent or 'base'}:{revision}", sql=True)
    return config.output_buffer.getvalue()


def _create(name: str) -> None:
    asyncio.run(ensure_database(support.pg_url(name)))


def _drop(name: str) -> None:
    asyncio.run(support.drop_database(name))


@pytest.fixture
def database() -> Iterator[str]:
    name = f"cvtest_{support.RUN_ID}_mig_{os.urandom(4).hex()}"
    _create(name)
    yield name
    _drop(name)


@pytest.fixture
def alembic_runner(database: str) -> Iterator[MigrationContext]:
    """pytest-alembic's runner on a fresh database (its plugin is off: pyproject.toml). It
    hands the engine to migrations/env.py, which runs on it as on its own."""
    engine = create_async_engine(support.pg_url(database), poolclass=pool.NullPool)
    config = PytestAlembicConfig.from_raw_config(migrate.alembic_config(support.pg_url(database)))
    with pytest_alembic.runner(config, engine) as runner:
        yield runner


def test_one_head(alembic_runner: MigrationContext) -> None:
    standard.test_single_head_revision(alembic_runner)


def test_upgrade_from_base_to_head(alembic_runner: MigrationContext) -> None:
    standard.test_upgrade(alembic_runner)


def test_the_models_match_the_migrated_schema(alembic_runner: MigrationContext) -> None:
    standard.test_model_definitions_match_ddl(alembic_runner)


def test_every_revision_goes_down_and_up_again(alembic_runner: MigrationContext) -> None:
    standard.test_up_down_consistency(alembic_runner)


def test_no_revision_is_empty() -> None:
    bookkeeping = re.compile(
        r"^(SET |BEGIN|COMMIT|CREATE TABLE alembic_version|INSERT INTO alembic_version"
        r"|UPDATE alembic_version|COMMENT ON TABLE alembic_version)"
    )
    for script in SCRIPTS.walk_revisions():
        sql = "\n".join(
            line for line in _render(script.revision).splitlines() if not line.startswith("--")
        )
        statements = [s.strip() for s in sql.split(";\n") if s.strip()]
        work = [s for s in statements if not bookkeeping.match(s)]
        assert work, f"revision {script.revision} ({script.path}) changes nothing"


def test_each_declared_floor_names_an_earlier_revision() -> None:
    """`code_compatible_from` (ADR-0016) names the revision itself or one before it."""
    for script in SCRIPTS.walk_revisions():
        declared = getattr(script.module, migrate.COMPATIBLE_FROM, None)
        if declared is None:
            continue
        ancestors = {s.revision for s in SCRIPTS.iterate_revisions(script.revision, "base")}
        assert declared in ancestors, f"{script.path}: {declared!r} is not at or before it"


async def test_upgrade_to_head_downgrade_to_base_and_upgrade_again(database: str) -> None:
    url = support.pg_url(database)
    env = support.Env(database=database, prefix="unused")
    await migrate.upgrade(url)
    head = (await env.sql(TABLES))[0]["names"]
    assert {"jobs", "job_attempts", "job_events", "api_keys", "audit_log"} <= set(head)

    await migrate.downgrade(url, "base")
    assert (await env.sql(TABLES))[0]["names"] == ["alembic_version"]
    assert (await env.sql("SELECT count(*) AS n FROM alembic_version"))[0]["n"] == 0
    functions = await env.sql(
        "SELECT count(*) AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public'"
    )
    assert functions[0]["n"] == 0  # triggers' functions went with their tables
    assert (await env.sql(FLOOR))[0]["c"] is None

    await migrate.upgrade(url)
    assert (await env.sql(TABLES))[0]["names"] == head


async def test_each_revision_records_the_oldest_code_that_runs_against_it(database: str) -> None:
    url = support.pg_url(database)
    env = support.Env(database=database, prefix="unused")
    for script in reversed(list(SCRIPTS.walk_revisions())):
        await migrate.upgrade(url, script.revision)
        floor = migrate.parse_floor((await env.sql(FLOOR))[0]["c"])
        assert floor == migrate.compatible_from(SCRIPTS, script.revision)
    # A database migrated before ADR-0016 has no record: the next run writes it, with
    # nothing to upgrade.
    await env.sql("COMMENT ON TABLE alembic_version IS NULL")
    await migrate.upgrade(url)
    head = SCRIPTS.get_current_head()
    assert migrate.parse_floor((await env.sql(FLOOR))[0]["c"]) == migrate.compatible_from(
        SCRIPTS, head
    )


def test_the_floor_follows_declarations_and_old_revisions_count_as_their_own() -> None:
    head = SCRIPTS.get_current_head()
    floor = migrate.compatible_from(SCRIPTS, head)
    assert floor is not None
    declared = [
        (s.revision, getattr(s.module, migrate.COMPATIBLE_FROM, s.revision))
        for s in SCRIPTS.iterate_revisions(head, "base")
    ]
    expected = next(value for _, value in declared if value is not None)
    assert floor == expected
    assert migrate.compatible_from(SCRIPTS, "0001") == "0001"
    assert migrate.compatible_from(SCRIPTS, None) is None
    assert migrate.parse_floor(migrate.floor_comment("0003").split("IS '", 1)[1][:-1]) == "0003"


@pytest.fixture
async def fresh_name() -> AsyncIterator[str]:
    """A database name nobody has created yet."""
    name = f"cvtest_{support.RUN_ID}_race_{os.urandom(4).hex()}"
    yield name
    await support.drop_database(name)


async def _migrate_processes(env: support.Env, n: int) -> list[asyncio.subprocess.Process]:
    return [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "conveyor",
            "migrate",
            env=env.environ(LOG_FORMAT="text"),
            cwd=support.ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(n)
    ]


async def _outputs(procs: list[asyncio.subprocess.Process]) -> list[tuple[str, str]]:
    done = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), timeout=120)
    for proc, (_, err) in zip(procs, done, strict=True):
        assert proc.returncode == 0, err.decode()
        assert "Traceback" not in err.decode()
    return [(out.decode(), err.decode()) for out, err in done]


async def test_two_migrate_runs_on_a_database_not_yet_created_both_succeed(
    fresh_name: str,
) -> None:
    env = support.Env(database=fresh_name, prefix="unused")
    outputs = await _outputs(await _migrate_processes(env, 2))
    assert sum(out.count("created the database") for out, _ in outputs) <= 1
    applied = [line for out, _ in outputs for line in out.splitlines() if "applied" in line]
    revisions = [s.revision for s in reversed(list(SCRIPTS.walk_revisions()))]
    assert sorted(applied) == sorted(f"applied revision {r}" for r in revisions)
    rows = await env.sql("SELECT version_num FROM alembic_version")
    assert [r["version_num"] for r in rows] == [SCRIPTS.get_current_head()]


async def test_two_migrate_runs_at_once_take_turns_and_the_second_finds_nothing_to_do(
    database: str,
) -> None:
    """Both runs are made to wait on the migration lock (held here) before either starts, so
    they really run at once; then the lock is let go."""
    env = support.Env(database=database, prefix="unused")
    holder = await asyncpg.connect(support.pg_url(database, "postgresql"))
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", migrate.ADVISORY_LOCK_KEY)
        procs = await _migrate_processes(env, 2)
        deadline = asyncio.get_running_loop().time() + 60
        while (
            await holder.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            < 2
        ):
            assert asyncio.get_running_loop().time() < deadline, "the runs never waited"
            await asyncio.sleep(0.05)
        await holder.execute("SELECT pg_advisory_unlock($1)", migrate.ADVISORY_LOCK_KEY)
        outputs = await _outputs(procs)
        pid = holder.get_server_pid()
    finally:
        await holder.close()
    for _, err in outputs:
        assert f"holds the migration lock (PostgreSQL backend pid {pid}); waiting" in err
    revisions = [s.revision for s in reversed(list(SCRIPTS.walk_revisions()))]
    did, idle = sorted(outputs, key=lambda o: -o[0].count("applied revision"))
    assert [line for line in did[0].splitlines() if "applied" in line] == [
        f"applied revision {r}" for r in revisions
    ]
    assert idle[0].strip().splitlines() == ["database is at the latest migration: nothing to do"]


async def test_a_migration_blocked_past_its_lock_timeout_rolls_back_and_says_so(
    database: str,
) -> None:
    """A long transaction holds the head revision's table: the revision waits
    MIGRATION_LOCK_TIMEOUT_SECONDS, rolls back, is tried MIGRATION_LOCK_RETRIES times, and
    `conveyor migrate` says what happened in one line. The database stays at the parent."""
    head = SCRIPTS.get_revision(SCRIPTS.get_current_head())
    assert head is not None
    assert isinstance(head.down_revision, str)
    url = support.pg_url(database)
    await migrate.upgrade(url, head.down_revision)
    env = support.Env(database=database, prefix="unused")
    blocker = await asyncpg.connect(support.pg_url(database, "postgresql"))
    try:
        tx = blocker.transaction()
        await tx.start()
        # Every table the head revision could touch.
        await blocker.execute(
            "DO $$ DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'alembic_version' LOOP "
            "EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', t); END LOOP; END $$"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "conveyor",
            "migrate",
            env=env.environ(
                LOG_FORMAT="text",
                MIGRATION_LOCK_TIMEOUT_SECONDS="0.2",
                MIGRATION_LOCK_RETRIES="1",
            ),
            cwd=support.ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        await tx.rollback()
    finally:
        await blocker.close()
    text = err.decode()
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    assert "trying again" in text  # the retry, logged
    last = text.strip().splitlines()[-1]
    assert last.startswith(
        "conveyor: a migration could not take its locks within lock_timeout (0.2s, 2 tries)"
    )
    rows = await env.sql("SELECT version_num FROM alembic_version")
    assert [r["version_num"] for r in rows] == [head.down_revision]
    # Nothing holds the lock any more: the same command now succeeds.
    await migrate.upgrade(url)
    rows = await env.sql("SELECT version_num FROM alembic_version")
    assert [r["version_num"] for r in rows] == [head.revision]


def test_the_migrations_are_found_in_a_checkout_and_in_an_installed_wheel(tmp_path: Path) -> None:
    """A wheel carries migrations/ as conveyor/_migrations (pyproject.toml); `migrate` looks there
    first, then at the top of a checkout."""
    assert migrate.MIGRATIONS == support.ROOT / "migrations"
    installed = tmp_path / "site"
    (installed / "conveyor" / "db").mkdir(parents=True)
    for name in ("__init__.py",):
        (installed / "conveyor" / name).write_text("")
        (installed / "conveyor" / "db" / name).write_text("")
    packaged = installed / "conveyor" / "_migrations"
    packaged.mkdir()
    (packaged / "env.py").write_text("")
    spec = importlib.util.spec_from_file_location(
        "installed_migrate", installed / "conveyor" / "db" / "migrate.py"
    )
    (installed / "conveyor" / "db" / "migrate.py").write_text(
        (support.ROOT / "conveyor" / "db" / "migrate.py").read_text()
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    assert packaged == module.MIGRATIONS
