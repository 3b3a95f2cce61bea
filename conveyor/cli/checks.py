"""Checks a command runs before it starts: PostgreSQL reachable and migrated, Redis reachable.
Each failure is one line saying what is wrong and how to fix it (exit 2, no traceback)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from conveyor.settings import Settings

if TYPE_CHECKING:
    from conveyor.db import migrate
    from conveyor.kinds import Registry

log = logging.getLogger(__name__)


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def fail(line: str) -> int:
    sys.stderr.write(f"conveyor: {line}\n")
    return 2


def load_kinds(settings: Settings) -> Registry | int:
    """The registry of the settings' job modules, or exit status 2 after the one line that
    says what is wrong with them (ADR-0019)."""
    from conveyor import kinds

    try:
        return kinds.load(settings.jobs)
    except kinds.JobKindError as exc:
        return fail(str(exc))


async def redis_problem(settings: Settings) -> str | None:
    from redis.asyncio import Redis
    from redis.exceptions import AuthenticationError

    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await redis.ping()
        return None
    except Exception as exc:
        url = urlsplit(settings.redis_url)  # not the URL itself: it may hold a password
        where = (
            url.path
            if url.scheme == "unix"
            else f"{url.hostname or 'localhost'}:{url.port or 6379}"
        )
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        if isinstance(exc, AuthenticationError):
            return f"Redis at {where} refused the login ({reason}): check the password in REDIS_URL"
        return (
            f"Redis is not reachable at {where} ({reason}). "
            "Start it (e.g. `redis-server --daemonize yes` or `docker compose up -d redis`) "
            "or set REDIS_URL."
        )
    finally:
        await redis.aclose()


async def postgres_problem(settings: Settings) -> str | None:
    """None when PostgreSQL answers and the database is at this code's migration head, or at
    a newer one that declares this code compatible (the previous release, ADR-0016)."""
    from conveyor.db import migrate
    from conveyor.db.engine import create_engine, describe_pg_failure

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            revisions = await migrate.revisions(conn)
    except Exception as exc:
        return describe_pg_failure(settings.database_url, exc)
    finally:
        await engine.dispose()
    if revisions is None or revisions.current:  # None: this role may not read alembic_version
        return None
    return schema_problem(settings, revisions)


def schema_problem(settings: Settings, revisions: migrate.Revisions) -> str | None:
    """What is wrong with a database whose revision is not this code's head; None (and a
    warning) when a newer release migrated it and says this code still runs against it."""
    from sqlalchemy import make_url

    name = make_url(settings.database_url).database
    wanted = ", ".join(revisions.wanted)
    if revisions.ahead_but_compatible:
        log.warning(
            "database %s is at revision %s, newer than this code (%s), which it declares "
            "compatible (code from %s on): running; upgrade this process to the new release",
            name,
            ", ".join(revisions.unknown),
            wanted,
            revisions.compatible_from,
        )
        return None
    if revisions.unknown:
        needs = (
            f"; it needs code from revision {revisions.compatible_from} on"
            if revisions.compatible_from
            else ""
        )
        return (
            f"database {name} is at revision {', '.join(revisions.unknown)}, which this code "
            f"does not know (it wants {wanted}{needs}): a newer Conveyor migrated it; "
            "run that version"
        )
    return (
        f"database {name} is not migrated (at {', '.join(revisions.applied) or 'none'}, "
        f"code wants {wanted}): run `conveyor migrate`"
    )


async def preflight(settings: Settings) -> str | None:
    return await postgres_problem(settings) or await redis_problem(settings)


async def postgres_server_problem(settings: Settings) -> str | None:
    from conveyor.db.engine import ensure_database
    from conveyor.domain.errors import ServiceUnavailable

    try:
        await ensure_database(settings.database_url)
        return None
    except ServiceUnavailable as exc:
        return str(exc)
