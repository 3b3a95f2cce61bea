"""Named leases in PostgreSQL (`leases`): one holder at a time, with a term that grows each
time the holder changes, so a holder can tell it was replaced. The scheduler's lease
(ADR-0022) is one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def acquire_lease(
    conn: AsyncConnection, *, name: str, holder: str, ttl_seconds: float
) -> tuple[int, datetime] | None:
    """Take or renew the lease: (term, expiry) when `holder` has it now, None when another
    live holder does. A new holder gets a new term."""
    row = (
        await conn.execute(
            text(
                """
                INSERT INTO leases (name, holder, term, acquired_at, expires_at)
                VALUES (:name, :holder, 1, now(), now() + make_interval(secs => :ttl))
                ON CONFLICT (name) DO UPDATE SET
                    holder = excluded.holder,
                    term = leases.term + CASE WHEN leases.holder = excluded.holder THEN 0
                                              ELSE 1 END,
                    acquired_at = CASE WHEN leases.holder = excluded.holder
                                       THEN leases.acquired_at ELSE now() END,
                    expires_at = excluded.expires_at
                WHERE leases.holder = excluded.holder OR leases.expires_at < now()
                RETURNING term, expires_at
                """
            ),
            {"name": name, "holder": holder, "ttl": ttl_seconds},
        )
    ).first()
    return (row.term, row.expires_at) if row else None


async def release_lease(conn: AsyncConnection, *, name: str, holder: str) -> None:
    await conn.execute(
        text("UPDATE leases SET expires_at = now() WHERE name = :name AND holder = :holder"),
        {"name": name, "holder": holder},
    )
