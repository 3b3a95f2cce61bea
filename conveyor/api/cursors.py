"""Relay cursors: opaque to clients, a keyset position to us. Jobs page on (created_at, id);
the append-only logs (audit, decisions) on their row id."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from conveyor.domain.errors import FieldError, InvalidInput
from conveyor.domain.models import Job


def _encode(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


def _invalid() -> InvalidInput:
    return InvalidInput("invalid cursor", [FieldError(("after",), "not a cursor from this API")])


def of_job(job: Job) -> str:
    return of_position(job.created_at, job.id)


def of_position(created_at: datetime, row_id: uuid.UUID) -> str:
    """A (created_at, id) keyset position: jobs' and workflow runs' pages."""
    return _encode(f"{created_at.isoformat()}|{row_id}")


def job_position(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        at, _, job_id = _decode(cursor).partition("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, uuid.UUID(job_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid() from exc


def of_row(row_id: int) -> str:
    return _encode(f"id:{row_id}")


def row_position(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        raw = _decode(cursor)
        if not raw.startswith("id:"):
            raise ValueError(raw)
        return int(raw[3:])
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid() from exc
