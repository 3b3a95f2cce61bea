"""Admission policies (versioned documents) and the record of every decision."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.db import rows
from conveyor.db.sql import newest_first
from conveyor.domain.models import DecisionEntry, DecisionRecord


async def current(conn: AsyncConnection, *, tenant_id: uuid.UUID) -> tuple[int, dict[str, Any]]:
    """(version, document) in force; (0, {}) when the tenant never set one (the defaults)."""
    row = (
        await conn.execute(
            text(
                "SELECT version, document FROM policies WHERE tenant_id = :tenant "
                "ORDER BY version DESC LIMIT 1"
            ),
            {"tenant": tenant_id},
        )
    ).first()
    return (row.version, row.document) if row else (0, {})


async def insert_version(
    conn: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    version: int,
    document: dict[str, Any],
    created_by: uuid.UUID,
) -> bool:
    """Store `version`; False when another writer stored it first (optimistic concurrency)."""
    result = await conn.execute(
        text(
            "INSERT INTO policies (tenant_id, version, document, created_by) "
            "VALUES (:tenant, :version, CAST(:doc AS jsonb), :by) "
            "ON CONFLICT (tenant_id, version) DO NOTHING"
        ),
        {
            "tenant": tenant_id,
            "version": version,
            "doc": orjson.dumps(document).decode(),
            "by": created_by,
        },
    )
    return result.rowcount == 1


async def record(conn: AsyncConnection, *, decisions: Sequence[DecisionEntry]) -> None:
    """Append decisions in one statement (part of the caller's transaction)."""
    if not decisions:
        return
    await conn.execute(
        text(
            """
            INSERT INTO policy_decisions (tenant_id, principal_id, principal_name, action,
                job_kind, job_id, decision, rule, reason, policy_version, request_id)
            SELECT * FROM unnest(CAST(:tenants AS uuid[]), CAST(:principals AS uuid[]),
                CAST(:names AS text[]), CAST(:actions AS text[]), CAST(:kinds AS text[]),
                CAST(:jobs AS uuid[]), CAST(:decisions AS text[]), CAST(:rules AS text[]),
                CAST(:reasons AS text[]), CAST(:versions AS int[]), CAST(:requests AS text[]))
            """
        ),
        {
            "tenants": [d.tenant_id for d in decisions],
            "principals": [d.principal_id for d in decisions],
            "names": [d.principal_name for d in decisions],
            "actions": [d.action for d in decisions],
            "kinds": [d.job_kind for d in decisions],
            "jobs": [d.job_id for d in decisions],
            "decisions": ["allow" if d.allowed else "deny" for d in decisions],
            "rules": [d.rule for d in decisions],
            "reasons": [d.reason for d in decisions],
            "versions": [d.policy_version for d in decisions],
            "requests": [d.request_id for d in decisions],
        },
    )


@dataclass(frozen=True)
class DecisionFilter:
    tenant_id: uuid.UUID
    decision: str | None = None
    action: str | None = None
    principal_id: uuid.UUID | None = None
    job_kind: str | None = None
    since: datetime | None = None


async def page(
    conn: AsyncConnection, *, flt: DecisionFilter, first: int, before_id: int | None
) -> tuple[list[DecisionRecord], bool]:
    """Newest first, keyset-paginated on id."""
    clauses = ["tenant_id = :tenant"]
    params: dict[str, Any] = {"tenant": flt.tenant_id}
    for column, value in (
        ("decision", flt.decision),
        ("action", flt.action),
        ("principal_id", flt.principal_id),
        ("job_kind", flt.job_kind),
    ):
        if value is not None:
            clauses.append(f"{column} = :{column}")
            params[column] = value
    return await newest_first(
        conn,
        "policy_decisions",
        clauses,
        params,
        rows.decision_record,
        first=first,
        since=flt.since,
        before_id=before_id,
    )
