"""Client use cases: submit, cancel, retry, read. Each owns one transaction; after commit it
publishes the change and hands QUEUED jobs to the dispatcher."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app import events
from app.db import audit as audit_repo
from app.db import jobs as jobs_repo
from app.db import tenants as tenants_repo
from app.db.engine import statements, transaction
from app.domain import policy, storable
from app.domain.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    InvalidState,
    NotFound,
    PolicyDenied,
    UnknownJobKind,
    UserError,
)
from app.domain.models import Attempt, Event, Job, JobChange, Principal
from app.domain.states import CANCELLABLE, RETRYABLE, EventType, JobStatus, Priority
from app.jobs.registry import Registry
from app.services import audit
from app.services import policy as admission
from app.services.dispatch import Dispatcher
from app.settings import Settings

MAX_ATTEMPTS_LIMIT = 100
MAX_TIMEOUT_SECONDS = 7 * 86400.0
MAX_BACKOFF_SECONDS = 86400.0
MAX_PAGE = 500


@dataclass(frozen=True)
class Deps:
    """What the use cases need from the process: built once in the lifespan."""

    engine: AsyncEngine
    redis: Redis
    dispatcher: Dispatcher
    registry: Registry
    settings: Settings
    #: Short-lived per-process caches (see services.ops).
    cache: dict[object, tuple[float, object]] = field(default_factory=dict)


@dataclass(frozen=True)
class SubmitRequest:
    kind: str
    payload: Any
    idempotency_key: str | None = None
    run_at: datetime | None = None
    priority: Priority = Priority.NORMAL
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    backoff_base_seconds: float | None = None
    backoff_cap_seconds: float | None = None


#: SubmitRequest's fields, each with the name the API gives it (the path of a field error).
_REQUEST_FIELDS = tuple((f.name, to_camel(f.name)) for f in fields(SubmitRequest))


def _field_errors(exc: ValidationError, root: tuple[str, ...]) -> list[FieldError]:
    return [
        FieldError(path=(*root, *(str(p) for p in err["loc"])), message=err["msg"])
        for err in exc.errors()
    ]


def _unstorable(req: SubmitRequest) -> InvalidInput | None:
    """`domain.storable` over the request as sent, payload at any depth: the one walk a
    submit pays (the GraphQL layer leaves submits to this check, ADR-0017)."""
    for name, api_name in _REQUEST_FIELDS:
        found = storable.find_unstorable(getattr(req, name), (api_name,))
        if found is not None:
            return InvalidInput("the job input is invalid", [FieldError(found.path, found.reason)])
    return None


def _encoded_size(payload: dict[str, Any]) -> int:
    """The payload's size as stored (the admission policy's measure). A kind's model can make
    from valid input what JSON cannot hold (an int past 64 bits from a string of digits)."""
    try:
        return len(orjson.dumps(payload))
    except orjson.JSONEncodeError as exc:
        raise InvalidInput(
            "the job input is invalid",
            [
                FieldError(
                    ("payload",), f"the kind's model made a value that cannot be stored: {exc}"
                )
            ],
        ) from None


def _first_set(*values: float | None) -> float:
    return next(v for v in values if v is not None)


def _validate(deps: Deps, req: SubmitRequest, principal: Principal) -> tuple[jobs_repo.NewJob, int]:
    """The row to insert and its payload's encoded size."""
    refused = _unstorable(req)
    if refused is not None:
        raise refused
    kind = deps.registry.get(req.kind)
    if kind is None:
        raise UnknownJobKind(req.kind)
    errors: list[FieldError] = []
    payload: dict[str, Any] = {}
    if not isinstance(req.payload, dict):
        errors.append(FieldError(("payload",), "must be a JSON object"))
    else:
        try:
            model = kind.input_model.model_validate(req.payload)
            payload = model.model_dump(mode="json", by_alias=True)
        except ValidationError as exc:
            errors.extend(_field_errors(exc, ("payload",)))
    if req.max_attempts is not None and not 1 <= req.max_attempts <= MAX_ATTEMPTS_LIMIT:
        errors.append(FieldError(("maxAttempts",), f"must be between 1 and {MAX_ATTEMPTS_LIMIT}"))
    if req.timeout_seconds is not None and not 0 < req.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        errors.append(
            FieldError(("timeoutSeconds",), f"must be > 0 and <= {MAX_TIMEOUT_SECONDS:g}")
        )
    for name, value in (
        ("backoffBaseSeconds", req.backoff_base_seconds),
        ("backoffCapSeconds", req.backoff_cap_seconds),
    ):
        if value is not None and not 0 <= value <= MAX_BACKOFF_SECONDS:
            errors.append(FieldError((name,), f"must be >= 0 and <= {MAX_BACKOFF_SECONDS:g}"))
    if (
        req.backoff_base_seconds is not None
        and req.backoff_cap_seconds is not None
        and req.backoff_base_seconds > req.backoff_cap_seconds
    ):
        errors.append(FieldError(("backoffBaseSeconds",), "must not exceed backoffCapSeconds"))
    if req.idempotency_key is not None and not 1 <= len(req.idempotency_key) <= 200:
        errors.append(FieldError(("idempotencyKey",), "must be 1 to 200 characters"))
    if errors:
        raise InvalidInput("the job input is invalid", errors)
    size = _encoded_size(payload)
    run_at = req.run_at if req.run_at and req.run_at > datetime.now(UTC) else None
    s = deps.settings
    new = jobs_repo.NewJob(
        kind=kind.name,
        queue=kind.queue,
        priority=int(req.priority),
        payload=payload,
        max_attempts=req.max_attempts or kind.max_attempts,
        timeout_seconds=req.timeout_seconds or kind.timeout_seconds,
        # Per job, else per kind, else the deployment's default (ADR-0013).
        backoff_base_seconds=_first_set(
            req.backoff_base_seconds, kind.backoff_base_seconds, s.retry_backoff_base_seconds
        ),
        backoff_cap_seconds=_first_set(
            req.backoff_cap_seconds, kind.backoff_cap_seconds, s.retry_backoff_cap_seconds
        ),
        owner_id=principal.id,
        idempotency_key=req.idempotency_key,
        run_at=run_at,
    )
    return new, size


#: Largest `submitJobs` batch.
MAX_BATCH = 1000
#: Largest number of jobs one bulk cancel/retry changes.
MAX_BULK = 100_000


async def submit(deps: Deps, principal: Principal, req: SubmitRequest) -> Job:
    """Validate, store (job + first event, one transaction), publish, then send to Redis.

    Nothing is stored for an unknown kind or an invalid payload. A reused idempotency key
    returns the existing job (`deduplicated`) when kind and payload match, else `Conflict`.
    """
    result = (await submit_many(deps, principal, [req]))[0]
    if isinstance(result, UserError):
        raise result
    return result


async def submit_many(
    deps: Deps, principal: Principal, reqs: list[SubmitRequest]
) -> list[Job | UserError]:
    """Submit a batch in one transaction and one round trip; a result per item, in order.

    Invalid items are reported and stored nowhere; the valid ones are stored together.
    """
    if principal.token_scope is not None:
        raise Forbidden("a read-only token cannot submit jobs")
    if len(reqs) > MAX_BATCH:
        raise InvalidInput(
            "batch too large", [FieldError(("inputs",), f"at most {MAX_BATCH} jobs per call")]
        )
    results: list[Job | UserError | None] = []
    valid: list[tuple[int, jobs_repo.NewJob, int]] = []
    for i, req in enumerate(reqs):
        try:
            valid.append((i, *_validate(deps, req, principal)))
            results.append(None)
        except UserError as exc:
            results.append(exc)
    changes: list[JobChange] = []
    if valid:
        async with transaction(deps.engine) as conn:
            decided = await admission.admit(
                conn,
                deps,
                principal,
                policy.Action.SUBMIT,
                [admission.Candidate(n.kind, size) for _, n, size in valid],
            )
            admitted = [
                (i, n) for (i, n, _), d in zip(valid, decided.decisions, strict=True) if d.allowed
            ]
            for (i, _, _), d in zip(valid, decided.decisions, strict=True):
                if not d.allowed:
                    results[i] = admission.denial(d)
            inserted = await jobs_repo.insert(conn, new=[n for _, n in admitted])
            for (i, new), row in zip(admitted, inserted, strict=True):
                if row is not None:
                    results[i] = row[0]
                    changes.append(row[1])
                else:
                    results[i] = await _existing(conn, principal, new)
            job_ids = {i: r.id for i, r in enumerate(results) if isinstance(r, Job)}
            await admission.record(conn, decided, [job_ids.get(i) for i, _, _ in valid])
            await audit.append(
                conn,
                [
                    audit.entry(
                        principal,
                        "job.submit",
                        f"job:{c.job_id}",
                        after={"kind": c.kind, "status": c.event.status.value},
                    )
                    for c in changes
                ],
            )
    await _after_commit(deps, changes)
    return [r for r in results if r is not None]


async def _existing(
    conn: AsyncConnection, principal: Principal, new: jobs_repo.NewJob
) -> Job | UserError:
    assert new.idempotency_key is not None
    existing = await jobs_repo.get_by_idempotency_key(
        conn, owner_id=principal.id, key=new.idempotency_key
    )
    if existing is None:  # pragma: no cover - the conflicting row was deleted meanwhile
        return Conflict("the idempotency key was just released; submit again", "")
    if existing.kind != new.kind or existing.payload != new.payload:
        return Conflict(
            "this idempotency key was already used with a different kind or payload",
            str(existing.id),
        )
    return replace(existing, deduplicated=True)


async def _after_commit(deps: Deps, changes: list[JobChange]) -> None:
    await events.publish(deps.redis, deps.settings.redis_prefix, changes)
    await deps.dispatcher.send(
        (c.job_id, c.queue, int(c.priority)) for c in changes if c.event.status is JobStatus.QUEUED
    )
    cancels = [c for c in changes if c.event.type is EventType.CANCEL_REQUESTED]
    if cancels:
        channel = events.control_channel(deps.settings.redis_prefix)
        async with deps.redis.pipeline(transaction=False) as pipe:
            for c in cancels:
                pipe.publish(channel, f"cancel {c.job_id}")
            await pipe.execute()


async def _get_scoped(conn: AsyncConnection, scope: policy.Scope, job_id: uuid.UUID) -> Job | None:
    if scope.job_id is not None and scope.job_id != job_id:
        return None
    return await jobs_repo.get(
        conn, job_id=job_id, owner_id=scope.owner_id, tenant_id=scope.tenant_id
    )


async def get(deps: Deps, principal: Principal, job_id: uuid.UUID) -> Job | None:
    async with statements(deps.engine) as conn:
        return await _get_scoped(conn, policy.read_scope(principal), job_id)


async def cancel(deps: Deps, principal: Principal, job_id: uuid.UUID) -> Job:
    scope = policy.write_scope(principal, policy.Action.CANCEL)
    async with transaction(deps.engine) as conn:
        before = await _get_scoped(conn, scope, job_id)
        if before is None:
            raise NotFound(str(job_id))
        changes = await jobs_repo.cancel(conn, job_ids=[job_id], by=principal.name)
        await audit.append(conn, _job_audit(principal, "job.cancel", changes, before.status))
        current = await jobs_repo.get(conn, job_id=job_id, owner_id=None)
    assert current is not None
    if not changes and current.status is not JobStatus.RUNNING:  # RUNNING: already asked
        raise InvalidState(
            f"a {current.status.value} job cannot be cancelled "
            f"(cancellable: {', '.join(sorted(s.value for s in CANCELLABLE))})",
            current.status.value,
        )
    await _after_commit(deps, changes)
    return current


async def retry(deps: Deps, principal: Principal, job_id: uuid.UUID) -> Job:
    """Send a FAILED/CANCELLED job again, if the admission policy allows (PolicyDenied else)."""
    scope = _retry_scope(principal)
    denied: PolicyDenied | None = None
    changes: list[JobChange] = []
    async with transaction(deps.engine) as conn:
        job = await _get_scoped(conn, scope, job_id)
        if job is None:
            raise NotFound(str(job_id))
        if job.status in RETRYABLE:
            decided = await admission.admit(
                conn,
                deps,
                principal,
                policy.Action.RETRY,
                [admission.Candidate(job.kind, len(orjson.dumps(job.payload)), job.id)],
            )
            await admission.record(conn, decided, [job.id])
            if decided.decisions[0].allowed:
                changes = await jobs_repo.retry(
                    conn,
                    job_ids=[job_id],
                    budget=None,  # the job's own maxAttempts, not its kind's
                    by=principal.name,
                )
                await audit.append(conn, _job_audit(principal, "job.retry", changes, job.status))
            else:
                denied = admission.denial(decided.decisions[0])
        current = await jobs_repo.get(conn, job_id=job_id, owner_id=None)
    if denied is not None:  # the decision is committed; nothing else changed
        raise denied
    assert current is not None
    if not changes:
        raise InvalidState(
            f"a {current.status.value} job cannot be retried "
            f"(retryable: {', '.join(sorted(s.value for s in RETRYABLE))})",
            current.status.value,
        )
    await _after_commit(deps, changes)
    return current


def _retry_scope(principal: Principal) -> policy.Scope:
    # Roles are judged by the admission policy (a viewer's retry is a recorded denial).
    if principal.token_scope is not None:
        raise Forbidden("a read-only token cannot retry jobs")
    return policy.read_scope(principal)


def _job_audit(
    principal: Principal, action: str, changes: list[JobChange], before: JobStatus
) -> list[audit_repo.Entry]:
    return [
        audit.entry(
            principal,
            action,
            f"job:{c.job_id}",
            before={"status": before.value},
            after={"status": c.event.status.value, "event": c.event.type.value},
        )
        for c in changes
    ]


def _filter(scope: policy.Scope, flt: JobFilterArgs) -> jobs_repo.JobFilter:
    return jobs_repo.JobFilter(
        statuses=flt.statuses,
        kinds=flt.kinds,
        queue=flt.queue,
        owner_id=scope.owner_id,
        tenant_id=scope.tenant_id,
        job_id=scope.job_id,
    )


def _bulk_audit(
    principal: Principal, action: str, flt: JobFilterArgs, changes: list[JobChange]
) -> list[audit_repo.Entry]:
    if not changes:
        return []
    return [
        audit.entry(
            principal,
            action,
            f"jobs:{len(changes)}",
            before={
                "filter": {
                    "status": [s.value for s in flt.statuses],
                    "kind": list(flt.kinds),
                    "queue": flt.queue,
                }
            },
            after={"count": len(changes), "jobIds": [str(c.job_id) for c in changes]},
        )
    ]


@dataclass(frozen=True)
class JobFilterArgs:
    statuses: tuple[JobStatus, ...] = ()
    kinds: tuple[str, ...] = ()
    queue: str | None = None


async def cancel_matching(deps: Deps, principal: Principal, flt: JobFilterArgs) -> int:
    """Cancel every visible job matching the filter (in batches). Returns how many changed."""
    scope = policy.write_scope(principal, policy.Action.CANCEL)
    total = 0
    while total < MAX_BULK:
        async with transaction(deps.engine) as conn:
            found = await jobs_repo.ids_matching(
                conn, flt=_filter(scope, flt), statuses=CANCELLABLE, limit=1000
            )
            changes = await jobs_repo.cancel(conn, job_ids=[i for i, _ in found], by=principal.name)
            await audit.append(conn, _bulk_audit(principal, "jobs.cancel", flt, changes))
        await _after_commit(deps, changes)
        total += len(changes)
        if len(found) < 1000 or not changes:
            return total
    return total


#: Jobs one bulk-retry transaction visits.
BULK_RETRY_BATCH = 1000
#: Denials that will refuse every further job of the same call: a bulk retry stops there.
_STOPS_BULK = frozenset(
    {policy.RULE_READ_ONLY, policy.RULE_WAITING, policy.RULE_RUNNING, policy.RULE_RATE}
)


async def retry_matching(deps: Deps, principal: Principal, flt: JobFilterArgs) -> int:
    """Retry every visible FAILED/CANCELLED job matching the filter that the admission policy
    admits, each job decided like a single retry (kind, payload size, the tenant's limits and
    the principal's rate, counting the jobs admitted before it). Stops at the first refusal
    by a limit. Returns how many changed."""
    scope = _retry_scope(principal)
    total = visited = 0
    after: uuid.UUID | None = None
    while visited < MAX_BULK:
        async with transaction(deps.engine) as conn:
            current_policy = await admission.prepare(conn, principal)
            found = await jobs_repo.retry_candidates(
                conn, flt=_filter(scope, flt), after=after, limit=BULK_RETRY_BATCH
            )
            if not found:
                return total
            limit = current_policy.max_payload_bytes
            # The stored size bounds the compact one: measure exactly only what may be over.
            over = [c.id for c in found if limit is not None and c.stored_bytes > limit]
            exact = await jobs_repo.payload_bytes(conn, job_ids=over) if over else {}
            decided = await admission.admit(
                conn,
                deps,
                principal,
                policy.Action.RETRY,
                [admission.Candidate(c.kind, exact.get(c.id, c.stored_bytes), c.id) for c in found],
                current_policy=current_policy,
            )
            await admission.record_bulk(conn, decided)
            allowed = [c.id for c, d in zip(found, decided.decisions, strict=True) if d.allowed]
            # Each job gets its own budget back, exactly as retryJob gives it.
            changes = await jobs_repo.retry(conn, job_ids=allowed, budget=None, by=principal.name)
            await audit.append(conn, _bulk_audit(principal, "jobs.retry", flt, changes))
        await _after_commit(deps, changes)
        total += len(changes)
        visited += len(found)
        after = found[-1].id
        stopped = any(d.rule in _STOPS_BULK for d in decided.decisions if not d.allowed)
        if stopped or len(found) < BULK_RETRY_BATCH:
            return total
    return total


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
    updated_since: datetime | None = None,
) -> tuple[list[Job], bool, jobs_repo.JobFilter]:
    if not 0 <= first <= MAX_PAGE:
        raise InvalidInput(
            "invalid page size", [FieldError(("first",), f"must be between 0 and {MAX_PAGE}")]
        )
    flt = replace(
        _filter(policy.read_scope(principal), JobFilterArgs(statuses, kinds, queue)),
        updated_since=updated_since,
    )
    cursor = decode_cursor(after) if after else None
    async with statements(deps.engine) as conn:
        found, has_next = await jobs_repo.page(conn, flt=flt, first=first, after=cursor)
    return found, has_next, flt


async def count(deps: Deps, flt: jobs_repo.JobFilter, *, at_most: int | None = None) -> int:
    async with statements(deps.engine) as conn:
        return await jobs_repo.count(conn, flt=flt, at_most=at_most)


async def attempts(deps: Deps, job_ids: list[uuid.UUID]) -> list[Attempt]:
    async with statements(deps.engine) as conn:
        return await jobs_repo.attempts(conn, job_ids=job_ids)


async def events_after(deps: Deps, job_id: uuid.UUID, after: int, limit: int) -> list[Event]:
    async with statements(deps.engine) as conn:
        return await jobs_repo.events(conn, job_id=job_id, after=after, limit=limit)


async def get_many(
    deps: Deps, principal: Principal, job_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Job]:
    """Jobs by id, leaving out those the principal may not see."""
    scope = policy.read_scope(principal)
    async with statements(deps.engine) as conn:
        found = await jobs_repo.get_many(conn, job_ids=job_ids)
        owners = {j.owner_id for j in found.values()}
        tenants = await tenants_repo.of_keys(conn, key_ids=list(owners)) if owners else {}
    return {
        k: v
        for k, v in found.items()
        if (tenant := tenants.get(v.owner_id)) is not None and scope.allows(tenant, v.owner_id, k)
    }


async def tenant_of(deps: Deps, owner_id: uuid.UUID) -> uuid.UUID | None:
    """The tenant of a job owner (a key never changes tenant: cached for the process)."""
    key = ("tenant_of", owner_id)
    cached = deps.cache.get(key)
    if cached is not None:
        return cast(uuid.UUID, cached[1])
    async with statements(deps.engine) as conn:
        found = (await tenants_repo.of_keys(conn, key_ids=[owner_id])).get(owner_id)
    if found is not None:
        if len(deps.cache) > 100_000:
            deps.cache.clear()
        deps.cache[key] = (float("inf"), found)
    return found
