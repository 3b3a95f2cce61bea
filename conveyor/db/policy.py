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


#: `decision_rows(...)` as a SELECT over its parameters (prefixed `{p}`): the rows to insert.
_DECISION_COLUMNS = (
    "tenant_id, principal_id, principal_name, action, job_kind, job_id, decision, rule, "
    "reason, policy_version, request_id"
)
_DECISION_ROWS = """
    unnest(CAST(:{p}tenants AS uuid[]), CAST(:{p}principals AS uuid[]),
        CAST(:{p}names AS text[]), CAST(:{p}actions AS text[]), CAST(:{p}kinds AS text[]),
        CAST(:{p}jobs AS uuid[]), CAST(:{p}decisions AS text[]), CAST(:{p}rules AS text[]),
        CAST(:{p}reasons AS text[]), CAST(:{p}versions AS int[]), CAST(:{p}requests AS text[]))
    AS {alias}({columns})
"""


def decision_rows(prefix: str, alias: str) -> str:
    """`FROM` this: the decisions passed with `decision_params(prefix, ...)`, one row each,
    as `alias` with the table's column names (for statements that insert them with others)."""
    return _DECISION_ROWS.format(p=prefix, alias=alias, columns=_DECISION_COLUMNS)


def decision_insert(prefix: str, where: str = "TRUE") -> str:
    """The INSERT of `decision_params(prefix, ...)`'s rows (alias `x`) that pass `where`."""
    columns = ", ".join(f"x.{c.strip()}" for c in _DECISION_COLUMNS.split(","))
    return (
        f"INSERT INTO policy_decisions ({_DECISION_COLUMNS}) "
        f"SELECT {columns} FROM {decision_rows(prefix, 'x')} WHERE {where}"
    )


def decision_params(prefix: str, decisions: Sequence[DecisionEntry]) -> dict[str, Any]:
    return {
        f"{prefix}tenants": [d.tenant_id for d in decisions],
        f"{prefix}principals": [d.principal_id for d in decisions],
        f"{prefix}names": [d.principal_name for d in decisions],
        f"{prefix}actions": [d.action for d in decisions],
        f"{prefix}kinds": [d.job_kind for d in decisions],
        f"{prefix}jobs": [d.job_id for d in decisions],
        f"{prefix}decisions": ["allow" if d.allowed else "deny" for d in decisions],
        f"{prefix}rules": [d.rule for d in decisions],
        f"{prefix}reasons": [d.reason for d in decisions],
        f"{prefix}versions": [d.policy_version for d in decisions],
        f"{prefix}requests": [d.request_id for d in decisions],
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
