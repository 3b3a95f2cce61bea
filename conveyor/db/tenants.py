"""Tenants: the unit of isolation. Every API key belongs to one; jobs belong to a key."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import rows
from conveyor.domain.models import Tenant

#: SQL fragment: the keys of tenant `:tenant` (jobs are owned by keys, keys by tenants).
TENANT_KEYS = "SELECT k.id FROM api_keys k WHERE k.tenant_id = :tenant"


async def insert(conn: AsyncConnection, *, name: str) -> Tenant | None:
    """A new tenant, or None when the name is taken."""
    row = (
        (
            await conn.execute(
                text(
                    "INSERT INTO tenants (id, name) VALUES (:id, :name) "
                    "ON CONFLICT (name) DO NOTHING RETURNING id, name, created_at"
                ),
                {"id": uuid.uuid4(), "name": name},
            )
        )
        .mappings()
        .first()
    )
    return rows.tenant(row) if row else None


async def by_name(conn: AsyncConnection, *, name: str) -> Tenant | None:
    row = (
        (
            await conn.execute(
                text("SELECT id, name, created_at FROM tenants WHERE name = :name"),
                {"name": name},
            )
        )
        .mappings()
        .first()
    )
    return rows.tenant(row) if row else None


async def exists(conn: AsyncConnection, *, tenant_id: uuid.UUID) -> bool:
    found = await conn.execute(text("SELECT 1 FROM tenants WHERE id = :id"), {"id": tenant_id})
    return found.first() is not None


async def all(conn: AsyncConnection) -> list[Tenant]:
    result = await conn.execute(text("SELECT id, name, created_at FROM tenants ORDER BY name"))
    return [rows.tenant(r) for r in result.mappings()]


async def of_keys(conn: AsyncConnection, *, key_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    result = await conn.execute(
        text("SELECT id, tenant_id FROM api_keys WHERE id = ANY(:ids)"), {"ids": key_ids}
    )
    return {r.id: r.tenant_id for r in result}


async def usage(conn: AsyncConnection, *, tenant_id: uuid.UUID) -> tuple[int, int]:
    """(waiting, running) jobs of the tenant, counted through the owners' index."""
    row = (
        await conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE status IN ('QUEUED', 'SCHEDULED', 'RETRYING')) "
                "AS waiting, count(*) FILTER (WHERE status = 'RUNNING') AS running "
                f"FROM jobs WHERE owner_id IN ({TENANT_KEYS}) "
                "AND status IN ('QUEUED', 'SCHEDULED', 'RETRYING', 'RUNNING')"
            ),
            {"tenant": tenant_id},
        )
    ).one()
    return int(row.waiting), int(row.running)


async def lock(conn: AsyncConnection, *, tenant_id: uuid.UUID) -> None:
    """Serialise admissions of one tenant until commit (only taken when a job limit is set),
    so two concurrent submits cannot both take the last free place."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(CAST(:t AS text), 2002))"),
        {"t": str(tenant_id)},
    )
