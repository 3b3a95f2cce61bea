"""Alembic environment, for `conveyor migrate`, the tests and `--sql` rendering (ADR-0016).

- One migration run at a time: a session-level PostgreSQL advisory lock. A second run waits
  for the first, then finds nothing to do.
- `lock_timeout` and `statement_timeout` on the migration session (written into the `--sql`
  script too): DDL that waits for a lock behind a long transaction gives up instead of queueing
  every query behind it, and no statement holds its locks unbounded.
- One transaction per revision: a revision that fails rolls back alone. A revision may raise
  a timeout for itself (`SET statement_timeout` before a long `CREATE INDEX CONCURRENTLY`);
  the defaults are back for the next one.
- Each revision records, as the comment of alembic_version, the oldest revision whose code
  runs against the schema it leaves: a previous release still starts against it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from conveyor.db import migrate
from conveyor.db.tables import Base

config = context.config
target_metadata = Base.metadata
log = logging.getLogger("conveyor.migrate")
#: How often a run waiting for the migration lock tries again.
LOCK_POLL_SECONDS = 0.25


def _timeouts() -> list[str]:
    lock = config.get_main_option("conveyor.lock_timeout_ms")
    statement = config.get_main_option("conveyor.statement_timeout_ms")
    lock_ms = int(lock) if lock else round(migrate.LOCK_TIMEOUT_SECONDS * 1000)
    statement_ms = int(statement) if statement else round(migrate.STATEMENT_TIMEOUT_SECONDS * 1000)
    return [f"SET lock_timeout = '{lock_ms}ms'", f"SET statement_timeout = '{statement_ms}ms'"]


def _after_revision(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[str], run_args: Mapping[str, Any]
) -> None:
    """In each revision's transaction: record the oldest code that runs against the schema it
    leaves, and put back the timeouts a revision may have raised for itself. The revision it
    moved to is listed for `conveyor migrate` to print."""
    head = next(iter(heads), None)
    config.attributes.setdefault(migrate.APPLIED, []).append(head or "base")
    floor = migrate.compatible_from(context.script, head)
    ctx.execute(migrate.floor_comment(floor))
    for statement in _timeouts():
        ctx.execute(statement)


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        transaction_per_migration=True,
        on_version_apply=_after_revision,
        **kwargs,
    )


def _lock(connection: Connection) -> None:
    """Take the migration lock (waiting for another run's, without timeouts), then set them.

    The wait is a poll, each try its own short transaction: a session blocked in
    `pg_advisory_lock` holds a snapshot, and a `CREATE INDEX CONCURRENTLY` in the run holding
    the lock waits for every older snapshot to end: they would wait for each other until
    PostgreSQL called it a deadlock."""
    key = migrate.ADVISORY_LOCK_KEY
    warned = False
    while not connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}):
        if not warned:
            warned = True
            holder = connection.scalar(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()) "
                    "AND classid = (CAST(:k AS bigint) >> 32)::oid "
                    "AND objid = (CAST(:k AS bigint) & 4294967295)::oid AND objsubid = 1"
                ),
                {"k": key},
            )
            log.warning(
                "another migration run holds the migration lock (PostgreSQL backend pid %s); "
                "waiting for it to finish",
                holder,
            )
        connection.commit()
        time.sleep(LOCK_POLL_SECONDS)
    for statement in _timeouts():
        connection.execute(text(statement))
    connection.commit()


def _run(connection: Connection) -> None:
    # On failure the lock goes with the connection, which is closed (NullPool).
    _lock(connection)
    _configure(connection=connection)
    context.run_migrations()
    _ensure_floor(connection)
    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": migrate.ADVISORY_LOCK_KEY})
    connection.commit()


def _ensure_floor(connection: Connection) -> None:
    """A database migrated before ADR-0016 gets its floor on the next run, even when there is
    nothing to upgrade."""
    if connection.scalar(text("SELECT to_regclass('alembic_version')")) is None:
        return
    heads = MigrationContext.configure(connection).get_current_heads()
    scripts: ScriptDirectory = context.script
    known = {s.revision for s in scripts.walk_revisions()}
    if len(heads) != 1 or heads[0] not in known:
        return  # empty, or a newer release's schema: its own floor stands
    floor = migrate.compatible_from(scripts, heads[0])
    comment = connection.scalar(
        text("SELECT obj_description('alembic_version'::regclass, 'pg_class')")
    )
    if migrate.parse_floor(comment) != floor:
        connection.execute(text(migrate.floor_comment(floor)))
    connection.commit()


async def _run_async(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


def _online() -> None:
    given = config.attributes.get("connection")  # pytest-alembic hands its engine over here
    if isinstance(given, AsyncEngine):
        asyncio.run(_run_async(given))
        return
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"
    asyncio.run(_run_async(create_async_engine(url, poolclass=pool.NullPool)))


def _offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    for statement in _timeouts():
        context.execute(statement)
    context.run_migrations()


if context.is_offline_mode():
    _offline()
else:
    _online()
