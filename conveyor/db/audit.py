"""The audit log: appended in the transaction of the change it records, never updated."""

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
from conveyor.domain.models import AuditEntry, AuditRecord


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


_AUDIT_COLUMNS = (
    ("tenant_id", "uuid"),
    ("actor_id", "uuid"),
    ("actor_name", "text"),
    ("action", "text"),
    ("target", "text"),
    ("before", "jsonb"),
    ("after", "jsonb"),
    ("request_id", "text"),
    ("client_addr", "text"),
)


def audit_insert(prefix: str, where: str = "TRUE") -> str:
    """The INSERT of `audit_params(prefix, ...)`'s rows (alias `r`) that pass `where`."""
    return unnest_insert("audit_log", _AUDIT_COLUMNS, prefix=prefix, where=where)


def audit_params(prefix: str, entries: Sequence[AuditEntry]) -> dict[str, Any]:
    return {
        f"{prefix}tenant_id": [e.tenant_id for e in entries],
        f"{prefix}actor_id": [e.actor_id for e in entries],
        f"{prefix}actor_name": [e.actor_name for e in entries],
        f"{prefix}action": [e.action for e in entries],
        f"{prefix}target": [e.target for e in entries],
        f"{prefix}before": [_json(e.before) for e in entries],
        f"{prefix}after": [_json(e.after) for e in entries],
        f"{prefix}request_id": [e.request_id for e in entries],
        f"{prefix}client_addr": [e.client_addr for e in entries],
    }


_APPEND = text(audit_insert(""))


async def append(conn: AsyncConnection, *, entries: Sequence[AuditEntry]) -> None:
    if not entries:
        return
    await conn.execute(_APPEND, audit_params("", entries))


@dataclass(frozen=True)
class AuditFilter:
    tenant_id: uuid.UUID
    action: str | None = None
    actor_id: uuid.UUID | None = None
    target: str | None = None
    since: datetime | None = None


async def page(
    conn: AsyncConnection, *, flt: AuditFilter, first: int, before_id: int | None
) -> tuple[list[AuditRecord], bool]:
    """Newest first, keyset-paginated on id."""
    clauses = ["tenant_id = :tenant"]
    params: dict[str, Any] = {"tenant": flt.tenant_id}
    if flt.action is not None:
        # `job.` matches every job action; an exact name matches itself.
        clauses.append("(action = :action OR (right(:action, 1) = '.' AND action LIKE :prefix))")
        params["action"] = flt.action
        params["prefix"] = flt.action + "%"
    if flt.actor_id is not None:
        clauses.append("actor_id = :actor")
        params["actor"] = flt.actor_id
    if flt.target is not None:
        clauses.append("target = :target")
        params["target"] = flt.target
    return await newest_first(
        conn,
        "audit_log",
        clauses,
        params,
        rows.audit_record,
        first=first,
        since=flt.since,
        before_id=before_id,
    )
