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
from conveyor.db.sql import newest_first, unnest_insert
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


_DECISION_COLUMNS = (
    ("tenant_id", "uuid"),
    ("principal_id", "uuid"),
    ("principal_name", "text"),
    ("action", "text"),
    ("job_kind", "text"),
    ("job_id", "uuid"),
    ("decision", "text"),
    ("rule", "text"),
    ("reason", "text"),
    ("policy_version", "int"),
    ("request_id", "text"),
)


def decision_insert(prefix: str, where: str = "TRUE") -> str:
    """The INSERT of `decision_params(prefix, ...)`'s rows (alias `r`) that pass `where`."""
    return unnest_insert("policy_decisions", _DECISION_COLUMNS, prefix=prefix, where=where)


def decision_params(prefix: str, decisions: Sequence[DecisionEntry]) -> dict[str, Any]:
    return {
        f"{prefix}tenant_id": [d.tenant_id for d in decisions],
        f"{prefix}principal_id": [d.principal_id for d in decisions],
        f"{prefix}principal_name": [d.principal_name for d in decisions],
        f"{prefix}action": [d.action for d in decisions],
        f"{prefix}job_kind": [d.job_kind for d in decisions],
        f"{prefix}job_id": [d.job_id for d in decisions],
        f"{prefix}decision": ["allow" if d.allowed else "deny" for d in decisions],
        f"{prefix}rule": [d.rule for d in decisions],
        f"{prefix}reason": [d.reason for d in decisions],
        f"{prefix}policy_version": [d.policy_version for d in decisions],
        f"{prefix}request_id": [d.request_id for d in decisions],
    }


_RECORD = text(decision_insert(""))


async def record(conn: AsyncConnection, *, decisions: Sequence[DecisionEntry]) -> None:
    """Append decisions in one statement (part of the caller's transaction)."""
    if not decisions:
        return
    await conn.execute(_RECORD, decision_params("", decisions))


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
