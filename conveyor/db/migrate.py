"""Alembic, driven from code so `conveyor migrate` needs no alembic.ini (ADR-0016).

The scripts live in `migrations/` at the top of a checkout; a wheel carries the same files as
`conveyor/_migrations` (pyproject.toml, `force-include`). `MIGRATIONS` is whichever is there.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db.engine import driver_error

log = logging.getLogger(__name__)

#: Defaults of MIGRATION_LOCK_TIMEOUT_SECONDS and MIGRATION_STATEMENT_TIMEOUT_SECONDS (and of
#: env.py when Alembic runs without them, e.g. under pytest-alembic).
LOCK_TIMEOUT_SECONDS = 2.0
STATEMENT_TIMEOUT_SECONDS = 60.0
#: A revision that could not take its locks within lock_timeout is tried again this often.
LOCK_RETRIES = 5
#: The session-level advisory lock every migration run holds: ("conveyor" as a bigint).
ADVISORY_LOCK_KEY = int.from_bytes(b"conveyor", "big")
#: Where env.py lists the revisions a run moved to (Alembic config attributes).
APPLIED = "conveyor.applied"
#: A migration script's declaration of the oldest code that runs against the schema it leaves.
COMPATIBLE_FROM = "code_compatible_from"
#: How the compatibility floor is written as the comment of alembic_version.
_FLOOR_COMMENT = "conveyor: code from revision {} on runs against this schema (ADR-0016)"
_FLOOR_PATTERN = re.compile(r"^conveyor: code from revision (\S+) on runs against this schema")


def _find_migrations() -> Path:
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "_migrations", here.parents[2] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise RuntimeError(f"no Alembic migrations next to {here.parents[1]} (broken install?)")


MIGRATIONS = _find_migrations()


class MigrationFailed(Exception):
    """A migration stopped on a timeout (its transaction rolled back); the message says which
    and what to do."""


def alembic_config(
    database_url: str,
    *,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
    statement_timeout: float = STATEMENT_TIMEOUT_SECONDS,
) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("conveyor.lock_timeout_ms", str(round(lock_timeout * 1000)))
    config.set_main_option("conveyor.statement_timeout_ms", str(round(statement_timeout * 1000)))
    return config


async def upgrade(
    database_url: str,
    revision: str = "head",
    *,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
    statement_timeout: float = STATEMENT_TIMEOUT_SECONDS,
    lock_retries: int = LOCK_RETRIES,
) -> list[str]:
    """Upgrade to `revision`; the revisions applied, in order (none when another run did
    them while this one waited for the migration lock). A revision that times out waiting
    for a lock, or loses a deadlock, rolled back alone (one transaction per revision), so the
    run is tried again,
    up to `lock_retries` times, after a growing pause: on a busy database the lock is
    usually free a moment later."""
    config = alembic_config(
        database_url, lock_timeout=lock_timeout, statement_timeout=statement_timeout
    )
    for attempt in range(lock_retries + 1):
        try:
            # Alembic's env.py runs its own event loop; keep it off ours.
            await asyncio.to_thread(command.upgrade, config, revision)
            return list(config.attributes.get(APPLIED, []))
        except DBAPIError as exc:
            cause = driver_error(exc)
            retryable = (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError)
            if isinstance(cause, retryable) and attempt < lock_retries:
                pause = min(0.5 * 2**attempt, 8.0)
                log.warning(
                    "a migration %s and rolled back; trying again in %ss (%d of %d)",
                    (
                        "was chosen as a deadlock's victim"
                        if isinstance(cause, asyncpg.DeadlockDetectedError)
                        else f"waited {lock_timeout}s for a lock"
                    ),
                    pause,
                    attempt + 1,
                    lock_retries,
                )
                await asyncio.sleep(pause)
                continue
            raise _explain(exc, lock_timeout, statement_timeout, lock_retries) from exc
    raise AssertionError("unreachable")  # pragma: no cover


async def downgrade(
    database_url: str,
    revision: str = "base",
    *,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
    statement_timeout: float = STATEMENT_TIMEOUT_SECONDS,
) -> list[str]:
    """Downgrade to `revision`; the revisions the database stepped down to, in order."""
    config = alembic_config(
        database_url, lock_timeout=lock_timeout, statement_timeout=statement_timeout
    )
    try:
        await asyncio.to_thread(command.downgrade, config, revision)
        return list(config.attributes.get(APPLIED, []))
    except DBAPIError as exc:
        raise _explain(exc, lock_timeout, statement_timeout, 0) from exc


def _explain(
    exc: DBAPIError, lock_timeout: float, statement_timeout: float, retries: int
) -> Exception:
    cause = driver_error(exc)
    if isinstance(cause, asyncpg.LockNotAvailableError):
        return MigrationFailed(
            f"a migration could not take its locks within lock_timeout ({lock_timeout:g}s, "
            f"{retries + 1} tries): a long transaction holds them (see pg_stat_activity); "
            "it rolled back, nothing is half-done: run `conveyor migrate` again later, or "
            "raise MIGRATION_LOCK_TIMEOUT_SECONDS"
        )
    if isinstance(cause, asyncpg.QueryCanceledError):
        return MigrationFailed(
            f"a migration statement ran past statement_timeout ({statement_timeout:g}s) and "
            "rolled back: raise MIGRATION_STATEMENT_TIMEOUT_SECONDS for this run, or batch the "
            "work (ADR-0016)"
        )
    return exc


@dataclass(frozen=True)
class Revisions:
    """Where a database's schema is, against what this code's migrations lead to."""

    applied: tuple[str, ...]  #: stamped in alembic_version; () when never migrated
    wanted: tuple[str, ...]  #: the heads of this code's migration scripts
    unknown: tuple[str, ...]  #: applied, but no script here has them (a newer Conveyor's)
    #: The oldest revision whose code runs against the database's schema, as the migration
    #: that put it there recorded it; None when none did (migrated before ADR-0016).
    compatible_from: str | None = None
    known: frozenset[str] = frozenset()  #: every revision this code has a script for

    @property
    def current(self) -> bool:
        return set(self.applied) == set(self.wanted)

    @property
    def ahead_but_compatible(self) -> bool:
        """A newer release migrated the database, and says this code still runs against it:
        the previous release during a rolling upgrade (ADR-0016)."""
        return bool(self.unknown) and self.compatible_from in self.known


async def revisions(conn: AsyncConnection) -> Revisions | None:
    """Compare the database's revision with the scripts' heads: one catalogue query and a
    read of alembic_version (none when the table is missing), and the scripts read from disk
    without running env.py. None when this role may not read alembic_version."""
    try:
        applied = tuple(await conn.run_sync(_applied))
        floor = await conn.scalar(
            text("SELECT obj_description(to_regclass('alembic_version'), 'pg_class')")
        )
    except DBAPIError as exc:
        if isinstance(driver_error(exc), asyncpg.InsufficientPrivilegeError):
            return None
        raise
    scripts = ScriptDirectory(str(MIGRATIONS))
    known = frozenset(s.revision for s in scripts.walk_revisions())
    return Revisions(
        applied=applied,
        wanted=tuple(scripts.get_heads()),
        unknown=tuple(r for r in applied if r not in known),
        compatible_from=parse_floor(floor),
        known=known,
    )


def _applied(conn: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(conn).get_current_heads()


def compatible_from(scripts: ScriptDirectory, head: str | None) -> str | None:
    """The oldest revision whose code runs against the schema at `head`: the last
    `code_compatible_from` declared on the way from base to `head`. A script that declares
    none (0001-0003, written before ADR-0016) counts as needing its own code."""
    if head is None:
        return None
    floor: str | None = None
    chain: list[Script] = list(scripts.iterate_revisions(head, "base"))
    for script in reversed(chain):
        declared = getattr(script.module, COMPATIBLE_FROM, script)
        if declared is script:
            floor = script.revision
        elif declared is not None:
            floor = str(declared)
    return floor


def floor_comment(floor: str | None) -> str:
    """The statement that records `floor` on alembic_version (NULL clears it)."""
    if floor is None:
        return "COMMENT ON TABLE alembic_version IS NULL"
    return f"COMMENT ON TABLE alembic_version IS '{_FLOOR_COMMENT.format(floor)}'"


def parse_floor(comment: str | None) -> str | None:
    match = _FLOOR_PATTERN.match(comment or "")
    return match.group(1) if match else None
