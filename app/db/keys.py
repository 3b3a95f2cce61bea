"""API keys: only a SHA-256 of the secret half is stored."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert(
    conn: AsyncConnection, *, name: str, lookup: str, secret_hash: bytes, is_admin: bool
) -> uuid.UUID:
    key_id = uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO api_keys (id, name, lookup, secret_hash, is_admin) "
            "VALUES (:id, :name, :lookup, :hash, :admin)"
        ),
        {"id": key_id, "name": name, "lookup": lookup, "hash": secret_hash, "admin": is_admin},
    )
    return key_id


async def find_active(conn: AsyncConnection, *, lookup: str) -> dict[str, Any] | None:
    row = (
        (
            await conn.execute(
                text(
                    "SELECT id, name, secret_hash, is_admin FROM api_keys WHERE lookup = :lookup "
                    "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
                ),
                {"lookup": lookup},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None
