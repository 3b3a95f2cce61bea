"""Commands that change or export something and exit: migrate, keys, tenants, the schema."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.cli.checks import fail, out, postgres_problem, schema_problem
from conveyor.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[2]


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(run_migrations(settings, args.downgrade))


async def run_migrations(settings: Settings, downgrade: str | None) -> int:
    """Create the database when missing, then migrate it: one run at a time (an advisory
    lock), with MIGRATION_* timeouts (ADR-0016)."""
    from conveyor.db import migrate
    from conveyor.db.engine import create_engine, describe_pg_failure, ensure_database
    from conveyor.domain.errors import ServiceUnavailable

    try:
        if await ensure_database(settings.database_url):
            out("created the database")
    except ServiceUnavailable as exc:
        return fail(str(exc))
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            revisions = await migrate.revisions(conn)
    except Exception as exc:
        return fail(describe_pg_failure(settings.database_url, exc))
    finally:
        await engine.dispose()
    if revisions is not None and revisions.unknown:
        # A newer release migrated it; these scripts cannot move it. Rolling back to this
        # release without a downgrade is fine while the database says it is compatible.
        if problem := schema_problem(settings, revisions):
            return fail(problem)
        out("the database is at a newer, compatible revision: nothing to do")
        return 0
    lock_timeout = settings.migration_lock_timeout_seconds
    statement_timeout = settings.migration_statement_timeout_seconds
    try:
        if downgrade:
            for step in await migrate.downgrade(
                settings.database_url,
                downgrade,
                lock_timeout=lock_timeout,
                statement_timeout=statement_timeout,
            ):
                out(f"reverted to revision {step}")
            out(f"downgraded to {downgrade}")
        else:
            applied = await migrate.upgrade(
                settings.database_url,
                lock_timeout=lock_timeout,
                statement_timeout=statement_timeout,
                lock_retries=settings.migration_lock_retries,
            )
            for step in applied:
                out(f"applied revision {step}")
            out("database is at the latest migration" + ("" if applied else ": nothing to do"))
    except migrate.MigrationFailed as exc:
        return fail(str(exc))
    return 0


def create_api_key(settings: Settings, args: argparse.Namespace) -> int:
    if args.expires_in_days is not None and not 0 < args.expires_in_days <= 3650:
        return fail("--expires-in-days must be > 0 and <= 3650")
    return asyncio.run(
        create_key(
            settings,
            args.name,
            args.admin,
            tenant=args.tenant,
            role=args.role,
            expires_in_days=args.expires_in_days,
        )
    )


def create_superuser(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(create_key(settings, args.name, True, tenant=args.tenant, superuser=True))


def create_tenant(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_create_tenant(settings, args.name))


def list_api_keys(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_list_keys(settings, args.tenant))


def revoke_api_key(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_revoke_key(settings, args.id))


def export_schema(settings: Settings, args: argparse.Namespace) -> int:
    """The schema of the kinds this process loads (their typed mutations included, ADR-0020),
    to the checkout's schema.graphql, `--output PATH`, or stdout (`--output -`)."""
    from conveyor import kinds
    from conveyor.api.schema import sdl

    current = sdl(kinds.load(settings.jobs))
    if args.output == "-":
        sys.stdout.write(current)
        return 0
    target = Path(args.output) if args.output else ROOT / "schema.graphql"
    if args.check:
        if not target.exists() or target.read_text() != current:
            return fail(f"{target.name} is out of date: run `conveyor export-schema`")
        out(f"{target.name} is up to date")
        return 0
    target.write_text(current)
    out(f"wrote {target}")
    return 0


async def create_key(
    settings: Settings,
    name: str,
    admin: bool,
    *,
    tenant: str | None = None,
    role: str | None = None,
    superuser: bool = False,
    expires_in_days: float | None = None,
) -> int:
    """Create a key (the key alone on the last line). `--admin` means role admin."""
    from datetime import UTC, datetime, timedelta

    from conveyor.db.engine import create_engine
    from conveyor.domain.policy import Role
    from conveyor.services import auth

    if problem := await postgres_problem(settings):
        return fail(problem)
    if admin and role not in (None, "admin"):
        return fail("--admin and --role disagree")
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        tenant_id = await _tenant_id(engine, tenant)
        if tenant_id is None:
            return fail(f"no tenant {tenant!r} (create it with `conveyor create-tenant`)")
        expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
        created, key = await auth.create_api_key(
            engine,
            name=name,
            admin=admin,
            role=Role(role) if role else None,
            tenant_id=tenant_id,
            superuser=superuser,
            expires_at=expires,
            secret_key=settings.secret_key.get_secret_value(),
        )
    finally:
        await engine.dispose()
    kind = "superuser" if superuser else created.role
    out(f"created {kind} API key {created.name!r} ({created.id}); it is shown once:")
    out(key)
    return 0


async def _tenant_id(engine: AsyncEngine, name: str | None) -> uuid.UUID | None:
    """The tenant named `name` (None: the `default` tenant); None when there is none."""
    from conveyor.domain.models import DEFAULT_TENANT_ID
    from conveyor.services import keys

    if name is None:
        return DEFAULT_TENANT_ID
    found = await keys.tenant_by_name(engine, name)
    return found.id if found else None


async def _list_keys(settings: Settings, tenant: str | None) -> int:
    from conveyor.db.engine import create_engine
    from conveyor.services import keys

    if problem := await postgres_problem(settings):
        return fail(problem)
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        tenant_id = await _tenant_id(engine, tenant)
        if tenant_id is None:
            return fail(f"no tenant {tenant!r}")
        for k in await keys.keys_of_tenant(engine, tenant_id):
            state = "revoked" if k.revoked_at else "active"
            expires = f" expires {k.expires_at.isoformat()}" if k.expires_at else ""
            out(f"{k.id}  {k.role:<9}  {state:<7}  {k.name}{expires}")
    finally:
        await engine.dispose()
    return 0


async def _revoke_key(settings: Settings, key_id: str) -> int:
    import uuid

    from redis.asyncio import Redis

    from conveyor.db.engine import create_engine
    from conveyor.services import keys

    if problem := await postgres_problem(settings):
        return fail(problem)
    try:
        parsed = uuid.UUID(key_id)
    except ValueError:
        return fail(f"not a key id: {key_id!r}")
    engine = create_engine(settings.database_url, pool_size=1)
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        revoked = await keys.revoke(engine, redis, settings.redis_prefix, parsed, by=None)
    finally:
        await redis.aclose()
        await engine.dispose()
    if revoked is None:
        return fail(f"no active key {key_id}")
    out(f"revoked API key {revoked.name!r} ({revoked.id})")
    return 0


async def _create_tenant(settings: Settings, name: str) -> int:
    from conveyor.db.engine import create_engine
    from conveyor.domain.errors import InvalidInput
    from conveyor.services import keys

    if problem := await postgres_problem(settings):
        return fail(problem)
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        tenant = await keys.create_tenant(engine, name=name, by=None)
    except InvalidInput as exc:
        return fail("; ".join(f.message for f in exc.field_errors) or str(exc))
    finally:
        await engine.dispose()
    out(f"created tenant {tenant.name!r}:")
    out(str(tenant.id))
    return 0
