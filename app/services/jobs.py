"""Client use cases: submit, cancel, retry, read. Each owns one transaction; after commit it
publishes the change and hands QUEUED jobs to the dispatcher."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app import events
from app.db import jobs as jobs_repo
from app.db.engine import transaction
from app.domain.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    InvalidState,
    NotFound,
    UnknownJobKind,
)
from app.domain.models import Attempt, Event, Job, JobChange, Principal
from app.domain.states import CANCELLABLE, RETRYABLE, JobStatus, Priority
from app.jobs.registry import Registry
from app.services.dispatch import Dispatcher
from app.settings import Settings

MAX_ATTEMPTS_LIMIT = 100
MAX_TIMEOUT_SECONDS = 7 * 86400.0
MAX_PAGE = 500


@dataclass(frozen=True)
class Deps:
    """What the use cases need from the process: built once in the lifespan."""

    engine: AsyncEngine
    redis: Redis
    dispatcher: Dispatcher
    registry: Registry
    settings: Settings


@dataclass(frozen=True)
class SubmitRequest:
    kind: str
    payload: Any
    idempotency_key: str | None = None
    run_at: datetime | None = None
    priority: Priority = Priority.NORMAL
    max_attempts: int | None = None
    timeout_seconds: float | None = None


def _field_errors(exc: ValidationError, root: tuple[str, ...]) -> list[FieldError]:
    return [
        FieldError(path=(*root, *(str(p) for p in err["loc"])), message=err["msg"])
        for err in exc.errors()
    ]


def _validate(deps: Deps, req: SubmitRequest, principal: Principal) -> jobs_repo.NewJob:
    kind = deps.registry.get(req.kind)
    if kind is None:
        raise UnknownJobKind(req.kind)
    errors: list[FieldError] = []
    if not isinstance(req.payload, dict):
        errors.append(FieldError(("payload",), "must be a JSON object"))
        payload: dict[str, Any] = {}
    else:
        try:
            model = kind.input_model.model_validate(req.payload)
            payload = model.model_dump(mode="json", by_alias=True)
        except ValidationError as exc:
            errors.extend(_field_errors(exc, ("payload",)))
            payload = {}
    if req.max_attempts is not None and not 1 <= req.max_attempts <= MAX_ATTEMPTS_LIMIT:
        errors.append(FieldError(("maxAttempts",), f"must be between 1 and {MAX_ATTEMPTS_LIMIT}"))
    if req.timeout_seconds is not None and not 0 < req.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        errors.append(
            FieldError(("timeoutSeconds",), f"must be > 0 and <= {MAX_TIMEOUT_SECONDS:g}")
        )
    if req.idempotency_key is not None and not 1 <= len(req.idempotency_key) <= 200:
        errors.append(FieldError(("idempotencyKey",), "must be 1 to 200 characters"))
    if req.run_at is not None and req.run_at.tzinfo is None:
        errors.append(FieldError(("runAt",), "must include a timezone offset"))
    if errors:
        raise InvalidInput("the job input is invalid", errors)
    run_at = req.run_at if req.run_at and req.run_at > datetime.now(UTC) else None
    s = deps.settings
    return jobs_repo.NewJob(
        kind=kind.name,
        queue=kind.queue,
        priority=int(req.priority),
        payload=payload,
        max_attempts=req.max_attempts or kind.max_attempts,
        timeout_seconds=req.timeout_seconds or kind.timeout_seconds,
        backoff_base_seconds=(
            kind.backoff_base_seconds
            if kind.backoff_base_seconds is not None
            else s.retry_backoff_base_seconds
        ),
        backoff_cap_seconds=(
            kind.backoff_cap_seconds
            if kind.backoff_cap_seconds is not None
            else s.retry_backoff_cap_seconds
        ),
        owner_id=principal.id,
        idempotency_key=req.idempotency_key,
        run_at=run_at,
    )


async def submit(deps: Deps, principal: Principal, req: SubmitRequest) -> Job:
    """Validate, store (job + first event, one transaction), publish, then send to Redis.

    Nothing is stored for an unknown kind or an invalid payload. A reused idempotency key
    returns the existing job (`deduplicated`) when kind and payload match, else `Conflict`.
    """
    new = _validate(deps, req, principal)
    async with transaction(deps.engine) as conn:
        change = await jobs_repo.insert(conn, new=new)
        if change is None:
            assert new.idempotency_key is not None
            existing = await jobs_repo.get_by_idempotency_key(
                conn, owner_id=principal.id, key=new.idempotency_key
            )
        else:
            job = await jobs_repo.get(conn, job_id=change.job_id, owner_id=None)
    if change is None:
        if existing is None:  # pragma: no cover - the conflicting row was deleted meanwhile
            raise Conflict("the idempotency key was just released; submit again", "")
        if existing.kind != new.kind or existing.payload != new.payload:
            raise Conflict(
                "this idempotency key was already used with a different kind or payload",
                str(existing.id),
            )
        return _dedup(existing)
    assert job is not None
    await _after_commit(deps, [change])
    return job


def _dedup(job: Job) -> Job:
    return replace(job, deduplicated=True)


async def _after_commit(deps: Deps, changes: list[JobChange]) -> None:
    await events.publish(deps.redis, deps.settings.redis_prefix, changes)
    await deps.dispatcher.send(
        (c.job_id, c.queue, int(c.priority)) for c in changes if c.event.status is JobStatus.QUEUED
    )


def _owner_scope(principal: Principal) -> uuid.UUID | None:
    return None if principal.is_admin else principal.id


async def get(deps: Deps, principal: Principal, job_id: uuid.UUID) -> Job | None:
    async with transaction(deps.engine) as conn:
        return await jobs_repo.get(conn, job_id=job_id, owner_id=_owner_scope(principal))


async def cancel(deps: Deps, principal: Principal, job_id: uuid.UUID) -> Job:
    async with transaction(deps.engine) as conn:
        job = await jobs_repo.get(conn, job_id=job_id, owner_id=_owner_scope(principal))
        if job is None:
            raise NotFound(str(job_id))
        change = await jobs_repo.cancel(conn, job_id=job_id, by=principal.name)
        current = await jobs_repo.get(conn, job_id=job_id, owner_id=None)
    assert current is not None
    if change is None:
        if current.status is JobStatus.RUNNING:  # already asked to stop
            return current
        raise InvalidState(
            f"a {current.status.value} job cannot be cancelled "
            f"(cancellable: {', '.join(sorted(s.value for s in CANCELLABLE))})",
            current.status.value,
        )
    await events.publish(deps.redis, deps.settings.redis_prefix, [change])
    if change.event.type.value == "CANCEL_REQUESTED":
        await deps.redis.publish(
            events.control_channel(deps.settings.redis_prefix), f"cancel {job_id}"
        )
    return current


async def retry(deps: Deps, principal: Principal, job_id: uuid.UUID) -> Job:
    async with transaction(deps.engine) as conn:
        job = await jobs_repo.get(conn, job_id=job_id, owner_id=_owner_scope(principal))
        if job is None:
            raise NotFound(str(job_id))
        kind = deps.registry.get(job.kind)
        budget = kind.max_attempts if kind else job.max_attempts
        change = await jobs_repo.retry(conn, job_id=job_id, budget=budget, by=principal.name)
        current = await jobs_repo.get(conn, job_id=job_id, owner_id=None)
    assert current is not None
    if change is None:
        raise InvalidState(
            f"a {current.status.value} job cannot be retried "
            f"(retryable: {', '.join(sorted(s.value for s in RETRYABLE))})",
            current.status.value,
        )
    await events.publish(deps.redis, deps.settings.redis_prefix, [change])
    await deps.dispatcher.send([(current.id, current.queue, int(current.priority))])
    return current


def encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, job_id = raw.partition("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, uuid.UUID(job_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "invalid cursor", [FieldError(("after",), "not a cursor from this API")]
        ) from exc


async def page(
    deps: Deps,
    principal: Principal,
    *,
    statuses: tuple[JobStatus, ...] = (),
    kinds: tuple[str, ...] = (),
    queue: str | None = None,
    first: int = 50,
    after: str | None = None,
) -> tuple[list[Job], bool, jobs_repo.JobFilter]:
    if not 0 <= first <= MAX_PAGE:
        raise InvalidInput(
            "invalid page size", [FieldError(("first",), f"must be between 0 and {MAX_PAGE}")]
        )
    flt = jobs_repo.JobFilter(
        statuses=statuses, kinds=kinds, queue=queue, owner_id=_owner_scope(principal)
    )
    cursor = decode_cursor(after) if after else None
    async with transaction(deps.engine) as conn:
        found, has_next = await jobs_repo.page(conn, flt=flt, first=first, after=cursor)
    return found, has_next, flt


async def count(deps: Deps, flt: jobs_repo.JobFilter) -> int:
    async with transaction(deps.engine) as conn:
        return await jobs_repo.count(conn, flt=flt)


async def attempts(deps: Deps, job_ids: list[uuid.UUID]) -> list[Attempt]:
    async with transaction(deps.engine) as conn:
        return await jobs_repo.attempts(conn, job_ids=job_ids)


async def events_after(deps: Deps, job_id: uuid.UUID, after: int, limit: int) -> list[Event]:
    async with transaction(deps.engine) as conn:
        return await jobs_repo.events(conn, job_id=job_id, after=after, limit=limit)


async def get_many(
    deps: Deps, principal: Principal, job_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Job]:
    """Jobs by id, leaving out those the principal may not see."""
    async with transaction(deps.engine) as conn:
        found = await jobs_repo.get_many(conn, job_ids=job_ids)
    scope = _owner_scope(principal)
    return {k: v for k, v in found.items() if scope is None or v.owner_id == scope}
