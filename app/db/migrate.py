"""Alembic, driven from code so `conveyor migrate` needs no alembic.ini."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import driver_error

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def upgrade(database_url: str, revision: str = "head") -> None:
    # Alembic's env.py runs its own event loop; keep it off ours.
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), revision)


async def downgrade(database_url: str, revision: str = "base") -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), revision)


@dataclass(frozen=True)
class Revisions:
    """Where a database's schema is, against what this code's migrations lead to."""

    applied: tuple[str, ...]  #: stamped in alembic_version; () when never migrated
    wanted: tuple[str, ...]  #: the heads of this code's migration scripts
    unknown: tuple[str, ...]  #: applied, but no script here has them (a newer Conveyor's)

    @property
    def current(self) -> bool:
        return set(self.applied) == set(self.wanted)


async def revisions(conn: AsyncConnection) -> Revisions | None:
    """Compare the database's revision with the scripts' heads: one catalogue query and a
    read of alembic_version (none when the table is missing), and the scripts read from disk
    without running env.py. None when this role may not read alembic_version."""
    try:
        applied = tuple(await conn.run_sync(_applied))
    except DBAPIError as exc:
        if isinstance(driver_error(exc), asyncpg.InsufficientPrivilegeError):
            return None
        raise
    scripts = ScriptDirectory(str(MIGRATIONS))
    known = {s.revision for s in scripts.walk_revisions()}
    return Revisions(
        applied=applied,
        wanted=tuple(scripts.get_heads()),
        unknown=tuple(r for r in applied if r not in known),
    )


def _applied(conn: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(conn).get_current_heads()
