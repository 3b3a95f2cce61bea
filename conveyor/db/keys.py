"""API keys: only a keyed hash (HMAC-SHA256) of the secret half is stored."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import rows
from conveyor.domain.models import DEFAULT_TENANT_ID, ApiKey

_COLUMNS = (
    "id, name, lookup, tenant_id, role, is_superuser, created_by, created_at, expires_at, "
    "revoked_at"
)


async def insert(
    conn: AsyncConnection,
    *,
    name: str,
    lookup: str,
    secret_hash: bytes,
    role: str,
    tenant_id: uuid.UUID = DEFAULT_TENANT_ID,
    is_superuser: bool = False,
    expires_at: datetime | None = None,
    created_by: uuid.UUID | None = None,
) -> ApiKey:
    row = (
        (
            await conn.execute(
                text(
                    "INSERT INTO api_keys (id, name, lookup, secret_hash, hash_scheme, tenant_id, "
                    "role, is_superuser, expires_at, created_by) "
                    "VALUES (:id, :name, :lookup, :hash, 'hmac', :tenant, :role, :su, :expires, "
                    f":by) RETURNING {_COLUMNS}"
                ),
                {
                    "id": uuid.uuid4(),
                    "name": name,
                    "lookup": lookup,
                    "hash": secret_hash,
                    "tenant": tenant_id,
                    "role": role,
                    "su": is_superuser,
                    "expires": expires_at,
                    "by": created_by,
                },
            )
        )
        .mappings()
        .one()
    )
    return rows.api_key(row)


@dataclass(frozen=True)
class Credential:
    """An active key with what its secret is checked against."""

    key: ApiKey
    secret_hash: bytes
    #: `hmac` (keyed with SECRET_KEY) or `sha256` (a key made before migration 0002).
    hash_scheme: str


async def find_active(conn: AsyncConnection, *, lookup: str) -> Credential | None:
    row = (
        (
            await conn.execute(
                text(
                    f"SELECT {_COLUMNS}, secret_hash, hash_scheme FROM api_keys "
                    "WHERE lookup = :lookup "
                    "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
                ),
                {"lookup": lookup},
            )
        )
        .mappings()
        .first()
    )
    return Credential(rows.api_key(row), row["secret_hash"], row["hash_scheme"]) if row else None


async def rehash(conn: AsyncConnection, *, key_id: uuid.UUID, secret_hash: bytes) -> None:
    """Move a pre-0002 key from plain SHA-256 to the keyed hash."""
    await conn.execute(
        text(
            "UPDATE api_keys SET secret_hash = :hash, hash_scheme = 'hmac' "
            "WHERE id = :id AND hash_scheme = 'sha256'"
        ),
        {"id": key_id, "hash": secret_hash},
    )


async def get(
    conn: AsyncConnection, *, key_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> ApiKey | None:
    sql = f"SELECT {_COLUMNS} FROM api_keys WHERE id = :id"
    params: dict[str, Any] = {"id": key_id}
    if tenant_id is not None:
        sql += " AND tenant_id = :tenant"
        params["tenant"] = tenant_id
    row = (await conn.execute(text(sql), params)).mappings().first()
    return rows.api_key(row) if row else None


async def list_for_tenant(conn: AsyncConnection, *, tenant_id: uuid.UUID) -> list[ApiKey]:
    result = await conn.execute(
        text(f"SELECT {_COLUMNS} FROM api_keys WHERE tenant_id = :tenant ORDER BY created_at"),
        {"tenant": tenant_id},
    )
    return [rows.api_key(r) for r in result.mappings()]


async def revoke(
    conn: AsyncConnection, *, key_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> ApiKey | None:
    """Revoke a key of the tenant (None: any tenant, for the CLI); None when there is no such
    key or it was revoked already."""
    row = (
        (
            await conn.execute(
                text(
                    "UPDATE api_keys SET revoked_at = now() "
                    "WHERE id = :id AND (tenant_id = :tenant OR CAST(:tenant AS uuid) IS NULL) "
                    "AND revoked_at IS NULL "
                    f"RETURNING {_COLUMNS}"
                ),
                {"id": key_id, "tenant": tenant_id},
            )
        )
        .mappings()
        .first()
    )
    return rows.api_key(row) if row else None


async def inactive_among(conn: AsyncConnection, *, key_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these keys are revoked, expired or gone."""
    result = await conn.execute(
        text(
            "SELECT id FROM api_keys WHERE id = ANY(:ids) "
            "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
        ),
        {"ids": key_ids},
    )
    active = {r.id for r in result}
    return set(key_ids) - active


@dataclass(frozen=True)
class Minter:
    """The key a token names, as it is now."""

    tenant_id: uuid.UUID
    name: str
    expires_at: datetime | None
    active: bool
    #: Whether the token's job (if it names one) belongs to the key's tenant.
    job_in_tenant: bool


async def token_minter(
    conn: AsyncConnection, *, key_id: uuid.UUID, job_id: uuid.UUID | None
) -> Minter | None:
    """The key a token names, whether it is active, and (`job_id`) whether that job belongs to
    the key's tenant; None when there is no such key."""
    row = (
        (
            await conn.execute(
                text(
                    "SELECT k.tenant_id, k.name, k.expires_at, "
                    "k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) "
                    "AS active, "
                    "EXISTS (SELECT 1 FROM jobs j JOIN api_keys o ON o.id = j.owner_id "
                    "WHERE j.id = :job AND o.tenant_id = k.tenant_id) AS job_in_tenant "
                    "FROM api_keys k WHERE k.id = :key"
                ),
                {"key": key_id, "job": job_id},
            )
        )
        .mappings()
        .first()
    )
    return Minter(**row) if row else None


async def find_active_by_name(
    conn: AsyncConnection, *, name: str, tenant_name: str | None
) -> list[ApiKey]:
    """The active keys named `name` (in the tenant named `tenant_name`, when given)."""
    result = await conn.execute(
        text(
            "SELECT k.id, k.name, k.lookup, k.tenant_id, k.role, k.is_superuser, k.created_by, "
            "k.created_at, k.expires_at, k.revoked_at "
            "FROM api_keys k JOIN tenants t ON t.id = k.tenant_id "
            "WHERE k.name = :name AND (CAST(:tenant AS text) IS NULL OR t.name = :tenant) "
            "AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())"
        ),
        {"name": name, "tenant": tenant_name},
    )
    return [rows.api_key(r) for r in result.mappings()]


async def get_active(conn: AsyncConnection, *, key_id: uuid.UUID) -> ApiKey | None:
    """The key, if it is neither revoked nor expired."""
    row = (
        (
            await conn.execute(
                text(
                    f"SELECT {_COLUMNS} FROM api_keys WHERE id = :id AND revoked_at IS NULL "
                    "AND (expires_at IS NULL OR expires_at > now())"
                ),
                {"id": key_id},
            )
        )
        .mappings()
        .first()
    )
    return rows.api_key(row) if row else None
