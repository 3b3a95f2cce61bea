"""Rows become domain values here, and only here."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from conveyor.domain.models import (
    ApiKey,
    Attempt,
    AuditRecord,
    DecisionRecord,
    Event,
    Job,
    JobChange,
    Tenant,
)
from conveyor.domain.runs import Run, RunEvent, RunEventType, RunStatus, Step, StepStatus
from conveyor.domain.states import AttemptStatus, EventType, JobStatus, Priority

_JOB_FIELDS = tuple(f.name for f in fields(Job) if f.name != "deduplicated")
#: Columns every job read selects (and every job-returning statement RETURNs): the fields of
#: the domain value, so the two cannot drift apart.
JOB_COLUMNS = ", ".join(_JOB_FIELDS)


def job(row: Mapping[Any, Any], *, deduplicated: bool = False) -> Job:
    values = {name: row[name] for name in _JOB_FIELDS}
    values["status"] = JobStatus(values["status"])
    values["priority"] = Priority(values["priority"])
    return Job(**values, deduplicated=deduplicated)


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


def event(row: Mapping[Any, Any], *, prefix: str = "", job_id: str = "job_id") -> Event:
    """An event row, or the `prefix`ed event columns of a joined row (`job_id` names the
    column holding the job's id)."""
    return Event(
        job_id=row[job_id],
        seq=row[f"{prefix}seq"],
        type=EventType(row[f"{prefix}type"]),
        status=JobStatus(row[f"{prefix}status"]),
        progress=row[f"{prefix}progress"],
        message=row[f"{prefix}message"],
        data=row[f"{prefix}data"],
        at=row[f"{prefix}at"],
    )


#: The same, qualified: for RETURNING clauses of statements that join other tables.
JOB_COLUMNS_QUALIFIED = ", ".join(f"jobs.{name}" for name in _JOB_FIELDS)

#: Event columns as the job-and-event statements (`db.sql.with_event`) return them.
EVENT_COLUMNS = (
    "e.seq AS ev_seq, e.type AS ev_type, e.status AS ev_status, e.progress AS ev_progress, "
    "e.message AS ev_message, e.data AS ev_data, e.at AS ev_at"
)


def change(row: Mapping[Any, Any]) -> JobChange:
    """A job row joined with one of its events (`ev_*` columns): what gets broadcast."""
    return JobChange(
        event=event(row, prefix="ev_", job_id="id"),
        kind=row["kind"],
        queue=row["queue"],
        owner_id=row["owner_id"],
        attempt=row["attempt"],
        progress=row["progress"],
        progress_message=row["progress_message"],
        priority=Priority(row["priority"]),
    )


def api_key(row: Mapping[Any, Any]) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        tenant_id=row["tenant_id"],
        role=row["role"],
        is_superuser=row["is_superuser"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


def tenant(row: Mapping[Any, Any]) -> Tenant:
    return Tenant(id=row["id"], name=row["name"], created_at=row["created_at"])


def audit_record(row: Mapping[Any, Any]) -> AuditRecord:
    return AuditRecord(
        id=row["id"],
        at=row["at"],
        tenant_id=row["tenant_id"],
        actor_id=row["actor_id"],
        actor_name=row["actor_name"],
        action=row["action"],
        target=row["target"],
        before=row["before"],
        after=row["after"],
        request_id=row["request_id"],
        client_addr=row["client_addr"],
    )


def decision_record(row: Mapping[Any, Any]) -> DecisionRecord:
    return DecisionRecord(
        id=row["id"],
        at=row["at"],
        tenant_id=row["tenant_id"],
        principal_id=row["principal_id"],
        principal_name=row["principal_name"],
        action=row["action"],
        job_kind=row["job_kind"],
        job_id=row["job_id"],
        allowed=row["decision"] == "allow",
        rule=row["rule"],
        reason=row["reason"],
        policy_version=row["policy_version"],
        request_id=row["request_id"],
    )


_RUN_FIELDS = tuple(f.name for f in fields(Run) if f.name != "deduplicated")
_STEP_FIELDS = tuple(f.name for f in fields(Step))


def run(row: Mapping[Any, Any], *, deduplicated: bool = False) -> Run:
    values = {name: row[name] for name in _RUN_FIELDS}
    values["status"] = RunStatus(values["status"])
    return Run(**values, deduplicated=deduplicated)


def step(row: Mapping[Any, Any]) -> Step:
    values = {name: row[name] for name in _STEP_FIELDS}
    values["status"] = StepStatus(values["status"])
    return Step(**values)


def run_event(row: Mapping[Any, Any]) -> RunEvent:
    """A `workflow_events` row, or the same as JSON (`to_jsonb(e)`, from a statement that
    returns the events it wrote as one column)."""
    at = row["at"]
    run_id = row["run_id"]
    return RunEvent(
        run_id=run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(run_id),
        seq=int(row["seq"]),
        type=RunEventType(row["type"]),
        status=RunStatus(row["status"]),
        step=row["step"],
        step_status=StepStatus(row["step_status"]) if row["step_status"] else None,
        data=row["data"],
        at=at if isinstance(at, datetime) else datetime.fromisoformat(at),
    )
