"""Schedules, their fire times, the tenant's scheduler key, and named leases (ADR-0022)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.domain.schedules import Fire, Misfire, Options, Schedule, ScheduleSpec, Source


def schedule(row: Mapping[Any, Any]) -> Schedule:
    return Schedule(
        id=row["id"],
        tenant_id=row["tenant_id"],
        kind=row["kind"],
        spec=ScheduleSpec(
            name=row["name"],
            cron=row["cron"],
            every_seconds=row["every_seconds"],
            timezone=row["timezone"],
            input=row["input"],
            jitter_seconds=row["jitter_seconds"],
            misfire=Misfire(row["misfire"]),
            misfire_grace_seconds=row["misfire_grace_seconds"],
            max_catchup=row["max_catchup"],
            options=Options.from_json(row["options"] or {}),
        ),
        source=Source(row["source"]),
        anchor_at=row["anchor_at"],
        owner_id=row["owner_id"],
        created_by=row["created_by"],
        paused_at=row["paused_at"],
        paused_by=row["paused_by"],
        next_fire_at=row["next_fire_at"],
        last_fire_at=row["last_fire_at"],
        skipped_fires=row["skipped_fires"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def scheduler_key(conn: AsyncConnection, *, tenant_id: uuid.UUID) -> uuid.UUID:
    """The tenant's scheduler key, the owner of every job its schedules make (created on
    first use). Its secret is random and thrown away: nobody can sign in with it."""
    lookup = f"scheduler-{tenant_id.hex[:22]}"
    await conn.execute(
        text(
            "INSERT INTO api_keys (id, name, lookup, secret_hash, hash_scheme, tenant_id, role) "
            "VALUES (:id, 'scheduler', :lookup, :hash, 'hmac', :tenant, 'operator') "
            "ON CONFLICT (lookup) DO NOTHING"
        ),
        {
            "id": uuid.uuid4(),
            "lookup": lookup,
            "hash": secrets.token_bytes(32),
            "tenant": tenant_id,
        },
    )
    found = (
        await conn.execute(text("SELECT id FROM api_keys WHERE lookup = :l"), {"l": lookup})
    ).scalar_one()
    return found  # type: ignore[no-any-return]


_FIELDS = (
    "name, kind, input, cron, every_seconds, timezone, jitter_seconds, misfire, "
    "misfire_grace_seconds, max_catchup, options"
)


def _values(kind: str, spec: ScheduleSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "kind": kind,
        "input": _json(spec.input),
        "cron": spec.cron,
        "every_seconds": spec.every_seconds,
        "timezone": spec.timezone,
        "jitter_seconds": spec.jitter_seconds,
        "misfire": spec.misfire.value,
        "misfire_grace_seconds": spec.misfire_grace_seconds,
        "max_catchup": spec.max_catchup,
        "options": _json(spec.options.to_json()),
    }


_PLACEHOLDERS = (
    "CAST(:name AS text), CAST(:kind AS text), CAST(:input AS jsonb), CAST(:cron AS text), "
    "CAST(:every_seconds AS float8), CAST(:timezone AS text), CAST(:jitter_seconds AS float8), "
    "CAST(:misfire AS text), CAST(:misfire_grace_seconds AS float8), "
    "CAST(:max_catchup AS bigint), CAST(:options AS jsonb)"
)


async def insert(
    conn: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    kind: str,
    spec: ScheduleSpec,
    owner_id: uuid.UUID,
    created_by: str | None,
    next_fire_at: datetime | None,
    anchor_at: datetime,
    source: Source = Source.API,
    definition_hash: str | None = None,
) -> Schedule | None:
    """A new schedule; None when the tenant has one of that name."""
    row = (
        (
            await conn.execute(
                text(
                    f"INSERT INTO schedules (id, tenant_id, owner_id, created_by, next_fire_at, "
                    f"anchor_at, source, definition_hash, {_FIELDS}) "
                    f"VALUES (:id, :tenant, :owner, :by, :next, :anchor, :source, :hash, "
                    f"{_PLACEHOLDERS}) "
                    "ON CONFLICT (tenant_id, name) DO NOTHING RETURNING *"
                ),
                {
                    "id": uuid.uuid4(),
                    "tenant": tenant_id,
                    "owner": owner_id,
                    "by": created_by,
                    "next": next_fire_at,
                    "anchor": anchor_at,
                    "source": source.value,
                    "hash": definition_hash,
                    **_values(kind, spec),
                },
            )
        )
        .mappings()
        .first()
    )
    return schedule(row) if row else None


async def replace_definition(
    conn: AsyncConnection,
    *,
    schedule_id: uuid.UUID,
    kind: str,
    spec: ScheduleSpec,
    next_fire_at: datetime | None,
    anchor_at: datetime,
    definition_hash: str | None = None,
) -> Schedule | None:
    """Store a new definition (its name may change); None when the name is taken."""
    sets = ", ".join(f"{f.strip()} = v.{f.strip()}" for f in _FIELDS.split(","))
    row = (
        (
            await conn.execute(
                text(
                    f"""
                    UPDATE schedules SET {sets}, next_fire_at = :next, anchor_at = :anchor,
                        definition_hash = :hash, updated_at = now()
                    FROM (SELECT {_PLACEHOLDERS}) AS v({_FIELDS})
                    WHERE schedules.id = :id
                      AND NOT EXISTS (SELECT 1 FROM schedules o WHERE o.tenant_id =
                          schedules.tenant_id AND o.name = v.name AND o.id <> schedules.id)
                    RETURNING schedules.*
                    """
                ),
                {
                    "id": schedule_id,
                    "next": next_fire_at,
                    "anchor": anchor_at,
                    "hash": definition_hash,
                    **_values(kind, spec),
                },
            )
        )
        .mappings()
        .first()
    )
    return schedule(row) if row else None


async def get(
    conn: AsyncConnection, *, schedule_id: uuid.UUID, tenant_id: uuid.UUID, lock: bool = False
) -> Schedule | None:
    row = (
        (
            await conn.execute(
                text(
                    "SELECT * FROM schedules WHERE id = :id AND tenant_id = :tenant"
                    + (" FOR UPDATE" if lock else "")
                ),
                {"id": schedule_id, "tenant": tenant_id},
            )
        )
        .mappings()
        .first()
    )
    return schedule(row) if row else None


async def list_for(conn: AsyncConnection, *, tenant_id: uuid.UUID) -> list[Schedule]:
    result = await conn.execute(
        text("SELECT * FROM schedules WHERE tenant_id = :tenant ORDER BY name LIMIT 1000"),
        {"tenant": tenant_id},
    )
    return [schedule(r) for r in result.mappings()]


async def set_paused(
    conn: AsyncConnection,
    *,
    schedule_id: uuid.UUID,
    paused_by: str | None,
    next_fire_at: datetime | None,
) -> Schedule:
    """Pause (paused_by set) or resume (None, with the next fire time from now)."""
    row = (
        (
            await conn.execute(
                text(
                    """
                    UPDATE schedules SET
                        paused_at = CASE WHEN CAST(:by AS text) IS NULL THEN NULL ELSE now() END,
                        paused_by = :by, next_fire_at = :next, updated_at = now()
                    WHERE id = :id RETURNING *
                    """
                ),
                {"id": schedule_id, "by": paused_by, "next": next_fire_at},
            )
        )
        .mappings()
        .one()
    )
    return schedule(row)


async def delete(conn: AsyncConnection, *, schedule_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM schedules WHERE id = :id"), {"id": schedule_id})


async def due(conn: AsyncConnection, *, limit: int = 100) -> list[Schedule]:
    """Unpaused schedules whose next fire time has come, locked (skipping ones another
    scheduler holds)."""
    result = await conn.execute(
        text(
            """
            SELECT * FROM schedules
            WHERE paused_at IS NULL AND next_fire_at <= now()
            ORDER BY next_fire_at LIMIT :limit
            FOR UPDATE SKIP LOCKED
            """
        ),
        {"limit": limit},
    )
    return [schedule(r) for r in result.mappings()]


async def insert_fires(
    conn: AsyncConnection,
    *,
    schedule_id: uuid.UUID,
    fire_ats: Sequence[datetime],
    manual: bool = False,
) -> list[datetime]:
    """Claim these fire times for this schedule; returns those that were not taken yet
    (the primary key makes each fire time produce at most one job)."""
    if not fire_ats:
        return []
    result = await conn.execute(
        text(
            """
            INSERT INTO schedule_fires (schedule_id, fire_at, manual)
            SELECT :id, f, :manual FROM unnest(CAST(:fires AS timestamptz[])) AS f
            ON CONFLICT (schedule_id, fire_at) DO NOTHING
            RETURNING fire_at
            """
        ),
        {"id": schedule_id, "fires": list(fire_ats), "manual": manual},
    )
    return sorted(r.fire_at for r in result)


async def record_fires(
    conn: AsyncConnection,
    *,
    schedule_id: uuid.UUID,
    results: Sequence[tuple[datetime, uuid.UUID | None, str | None]],
) -> None:
    """The job made for each fire time (or why none was)."""
    if not results:
        return
    await conn.execute(
        text(
            """
            UPDATE schedule_fires f SET job_id = r.job_id, error = r.error
            FROM unnest(CAST(:fires AS timestamptz[]), CAST(:jobs AS uuid[]),
                        CAST(:errors AS text[])) AS r(fire_at, job_id, error)
            WHERE f.schedule_id = :id AND f.fire_at = r.fire_at
            """
        ),
        {
            "id": schedule_id,
            "fires": [r[0] for r in results],
            "jobs": [r[1] for r in results],
            "errors": [r[2] for r in results],
        },
    )


async def advance(
    conn: AsyncConnection,
    *,
    schedule_id: uuid.UUID,
    next_fire_at: datetime | None,
    last_fire_at: datetime | None,
    skipped: int,
) -> None:
    await conn.execute(
        text(
            """
            UPDATE schedules SET next_fire_at = :next,
                last_fire_at = greatest(last_fire_at, CAST(:last AS timestamptz)),
                skipped_fires = skipped_fires + :skipped
            WHERE id = :id
            """
        ),
        {"id": schedule_id, "next": next_fire_at, "last": last_fire_at, "skipped": skipped},
    )


async def recent_fires(
    conn: AsyncConnection, *, schedule_ids: Sequence[uuid.UUID], per_schedule: int
) -> dict[uuid.UUID, list[Fire]]:
    """The latest fires of each schedule, newest first, with their job's status now."""
    result = await conn.execute(
        text(
            """
            SELECT f.*, j.status AS job_status
            FROM unnest(CAST(:ids AS uuid[])) AS s(id)
            CROSS JOIN LATERAL (
                SELECT * FROM schedule_fires f WHERE f.schedule_id = s.id
                ORDER BY f.fire_at DESC LIMIT :n
            ) AS f
            LEFT JOIN jobs j ON j.id = f.job_id
            ORDER BY f.schedule_id, f.fire_at DESC
            """
        ),
        {"ids": list(schedule_ids), "n": per_schedule},
    )
    out: dict[uuid.UUID, list[Fire]] = {i: [] for i in schedule_ids}
    for r in result.mappings():
        out[r["schedule_id"]].append(
            Fire(
                schedule_id=r["schedule_id"],
                fire_at=r["fire_at"],
                job_id=r["job_id"],
                manual=r["manual"],
                error=r["error"],
                created_at=r["created_at"],
                job_status=r["job_status"],
            )
        )
    return out


async def code_defined(conn: AsyncConnection, *, tenant_id: uuid.UUID) -> list[Schedule]:
    result = await conn.execute(
        text("SELECT * FROM schedules WHERE tenant_id = :t AND source = 'CODE'"),
        {"t": tenant_id},
    )
    return [schedule(r) for r in result.mappings()]


async def definition_hashes(
    conn: AsyncConnection, *, tenant_id: uuid.UUID
) -> dict[str, tuple[uuid.UUID, str | None, str]]:
    """name -> (id, definition hash, source) of every schedule of the tenant."""
    result = await conn.execute(
        text("SELECT id, name, definition_hash, source FROM schedules WHERE tenant_id = :t"),
        {"t": tenant_id},
    )
    return {r.name: (r.id, r.definition_hash, r.source) for r in result}


async def prune_fires(conn: AsyncConnection, *, older_than_days: float, limit: int) -> int:
    """Fire records older than the retention (their jobs are pruned then too)."""
    result = await conn.execute(
        text(
            """
            DELETE FROM schedule_fires WHERE (schedule_id, fire_at) IN (
                SELECT schedule_id, fire_at FROM schedule_fires
                WHERE created_at < now() - make_interval(days => 0, secs => :age)
                ORDER BY created_at LIMIT :limit
            )
            """
        ),
        {"age": older_than_days * 86400.0, "limit": limit},
    )
    return int(result.rowcount or 0)
