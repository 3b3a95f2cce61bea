"""Rows become domain values here, and only here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain.models import Attempt, Event, Job, JobChange
from app.domain.states import AttemptStatus, EventType, JobStatus, Priority

#: Columns every job read selects (and every job-returning statement RETURNs).
JOB_COLUMNS = (
    "id, kind, queue, status, priority, payload, result, error, progress, progress_message, "
    "attempt, max_attempts, timeout_seconds, backoff_base_seconds, backoff_cap_seconds, "
    "owner_id, idempotency_key, last_seq, created_at, run_at, next_run_at, started_at, "
    "finished_at, cancel_requested_at"
)


def job(row: Mapping[Any, Any], *, deduplicated: bool = False) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        queue=row["queue"],
        status=JobStatus(row["status"]),
        priority=Priority(row["priority"]),
        payload=row["payload"],
        result=row["result"],
        error=row["error"],
        progress=row["progress"],
        progress_message=row["progress_message"],
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        timeout_seconds=row["timeout_seconds"],
        backoff_base_seconds=row["backoff_base_seconds"],
        backoff_cap_seconds=row["backoff_cap_seconds"],
        owner_id=row["owner_id"],
        idempotency_key=row["idempotency_key"],
        last_seq=row["last_seq"],
        created_at=row["created_at"],
        run_at=row["run_at"],
        next_run_at=row["next_run_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        cancel_requested_at=row["cancel_requested_at"],
        deduplicated=deduplicated,
    )


def attempt(row: Mapping[Any, Any]) -> Attempt:
    return Attempt(
        job_id=row["job_id"],
        number=row["number"],
        status=AttemptStatus(row["status"]),
        worker_id=row["worker_id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
    )


def event(row: Mapping[Any, Any]) -> Event:
    return Event(
        job_id=row["job_id"],
        seq=row["seq"],
        type=EventType(row["type"]),
        status=JobStatus(row["status"]),
        progress=row["progress"],
        message=row["message"],
        data=row["data"],
        at=row["at"],
    )


#: The same, qualified: for RETURNING clauses of statements that join other tables.
JOB_COLUMNS_QUALIFIED = ", ".join(f"jobs.{c.strip()}" for c in JOB_COLUMNS.split(","))

#: Event columns as the job-and-event statements (`db.sql.with_event`) return them.
EVENT_COLUMNS = (
    "e.seq AS ev_seq, e.type AS ev_type, e.status AS ev_status, e.progress AS ev_progress, "
    "e.message AS ev_message, e.data AS ev_data, e.at AS ev_at"
)


def change(row: Mapping[Any, Any]) -> JobChange:
    """A job row joined with one of its events (`ev_*` columns): what gets broadcast."""
    return JobChange(
        event=Event(
            job_id=row["id"],
            seq=row["ev_seq"],
            type=EventType(row["ev_type"]),
            status=JobStatus(row["ev_status"]),
            progress=row["ev_progress"],
            message=row["ev_message"],
            data=row["ev_data"],
            at=row["ev_at"],
        ),
        kind=row["kind"],
        queue=row["queue"],
        owner_id=row["owner_id"],
        attempt=row["attempt"],
        progress=row["progress"],
        progress_message=row["progress_message"],
        priority=Priority(row["priority"]),
    )
