"""Submitting jobs: validate against the kind's model, admit by the tenant's policy, store job,
first event, decision and audit rows in one transaction, then announce (send to Redis)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor import tracing
from conveyor.db import jobs as jobs_repo
from conveyor.db import keys as keys_repo
from conveyor.db import outbox as outbox_repo
from conveyor.db.engine import statements, transaction
from conveyor.domain import policy, storable
from conveyor.domain.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    ServiceUnavailable,
    Unauthenticated,
    UnknownJobKind,
    UserError,
)
from conveyor.domain.models import Job, JobChange, Principal
from conveyor.domain.states import JobStatus, Priority
from conveyor.services import audit, outbox
from conveyor.services import policy as admission
from conveyor.services.deps import Deps

MAX_ATTEMPTS_LIMIT = 100
MAX_TIMEOUT_SECONDS = 7 * 86400.0
MAX_BACKOFF_SECONDS = 86400.0
#: Largest `submitJobs` batch.
MAX_BATCH = 1000


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
    #: The job whose handler submits this one (`ctx.submit`); never taken from a client.
    parent_id: uuid.UUID | None = None


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


def validate(deps: Deps, req: SubmitRequest, principal: Principal) -> tuple[jobs_repo.NewJob, int]:
    """The job to store and its payload's encoded size, or InvalidInput / UnknownJobKind naming
    every problem at once."""
    refused = _unstorable(req)
    if refused is not None:
        raise refused
    kind = deps.registry.get(req.kind)
    if kind is None:
        raise UnknownJobKind(req.kind)
    errors: list[FieldError] = []
    payload: dict[str, Any] = {}
    concurrency_key: str | None = None
    if not isinstance(req.payload, dict):
        errors.append(FieldError(("payload",), "must be a JSON object"))
    else:
        try:
            model = kind.input_model.model_validate(req.payload)
            payload = model.model_dump(mode="json", by_alias=True)
            concurrency_key = kind.key_of(model)
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
        concurrency_key=concurrency_key,
        parent_id=req.parent_id,
    )
    return new, size


async def submit_many(
    deps: Deps, principal: Principal, reqs: list[SubmitRequest]
) -> list[Job | UserError]:
    """Submit a batch in one transaction and one round trip; a result per item, in order.

    Invalid items are reported and stored nowhere; the valid ones are stored together. A
    reused idempotency key returns the existing job (`deduplicated`) when kind and payload
    match, else `Conflict`.
    """
    results, valid = _checked(deps, principal, reqs)
    changes: list[JobChange] = []
    if valid:
        with tracing.span("conveyor.submit", {"conveyor.jobs": len(valid)}):
            changes = await _store_fast(deps, principal, results, valid)
    await outbox.announce(deps, changes)
    return [r for r in results if r is not None]


async def _store_fast(
    deps: Deps, principal: Principal, results: list[Job | UserError | None], valid: _Valid
) -> list[JobChange]:
    """`_store` in one round trip when it can (ADR-0025): decided by the tenant's policy as
    this process last read it, and written by one statement, atomic on its own (autocommit, no
    BEGIN/COMMIT), that writes nothing unless that policy is still the tenant's current one.
    Otherwise (no policy read yet, a policy that counts waiting jobs and so needs the tenant's
    lock, or a policy changed since) in a transaction, reading the policy afresh."""
    known = admission.cached(deps, principal.tenant_id)
    if known is not None and known.max_waiting_jobs is None:
        async with statements(deps.engine) as conn:
            stored = await _decide_and_insert(conn, deps, principal, _pairs(valid), known)
        if stored is not None:
            return _fill(results, valid, stored)
    async with transaction(deps.engine) as conn:
        return await _store(conn, deps, principal, results, valid)


async def submit_in(
    conn: AsyncConnection, deps: Deps, principal: Principal, reqs: list[SubmitRequest]
) -> list[Job | UserError]:
    """`submit_many` inside the caller's transaction (the Python producer API): the jobs,
    decisions and audit rows commit or roll back with it. Nothing is sent from here: the
    new QUEUED jobs are announced with `pg_notify`, which PostgreSQL delivers only after the
    transaction commits, to the outbox relay of every API and worker process (ADR-0021)."""
    results, valid = _checked(deps, principal, reqs)
    if valid:
        with tracing.span("conveyor.submit", {"conveyor.jobs": len(valid)}):
            changes = await _store(conn, deps, principal, results, valid)
        queued = [c.job_id for c in changes if c.event.status is JobStatus.QUEUED]
        await outbox_repo.notify(conn, job_ids=queued)
    return [r for r in results if r is not None]


_Valid = list[tuple[int, jobs_repo.NewJob, int]]


def _checked(
    deps: Deps, principal: Principal, reqs: list[SubmitRequest]
) -> tuple[list[Job | UserError | None], _Valid]:
    """Per request: its error, or None and its place among the valid ones."""
    if principal.token_scope is not None:
        raise Forbidden("a read-only token cannot submit jobs")
    if len(reqs) > MAX_BATCH:
        raise InvalidInput(
            "batch too large", [FieldError(("inputs",), f"at most {MAX_BATCH} jobs per call")]
        )
    results: list[Job | UserError | None] = []
    valid: _Valid = []
    for i, req in enumerate(reqs):
        try:
            valid.append((i, *validate(deps, req, principal)))
            results.append(None)
        except UserError as exc:
            results.append(exc)
    return results, valid


async def _store(
    conn: AsyncConnection,
    deps: Deps,
    principal: Principal,
    results: list[Job | UserError | None],
    valid: _Valid,
) -> list[JobChange]:
    """`store` the valid requests, filling their places in `results`; the changes to
    announce once committed."""
    return _fill(results, valid, await store(conn, deps, principal, _pairs(valid)))


def _pairs(valid: _Valid) -> list[tuple[jobs_repo.NewJob, int]]:
    return [(n, size) for _, n, size in valid]


def _fill(
    results: list[Job | UserError | None],
    valid: _Valid,
    stored: tuple[list[Job | UserError], list[JobChange]],
) -> list[JobChange]:
    for (i, _, _), result in zip(valid, stored[0], strict=True):
        results[i] = result
    return stored[1]


def payload_of(input: Mapping[str, Any] | BaseModel | None) -> Any:
    """A Python caller's input as a JSON client would send it: a model as its wire form
    (`by_alias`), None as `{}`. Anything else goes to validation as it is."""
    if input is None:
        return {}
    if isinstance(input, BaseModel):
        return input.model_dump(mode="json", by_alias=True)
    return dict(input) if isinstance(input, Mapping) else input


#: Longest `ctx.submit` key: with the parent's id it must fit an idempotency key (200).
MAX_CHILD_KEY = 160


def child_key(kind: str, payload: Any) -> str:
    """The key of a child submitted without one: the same kind and input give the same key
    (and so the same job) on every attempt of the parent."""
    try:
        canonical = orjson.dumps([kind, payload], option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        canonical = repr((kind, payload)).encode()
    return f"auto:{hashlib.sha256(canonical).hexdigest()[:40]}"


async def submit_child(deps: Deps, *, parent: Job, request: SubmitRequest, key: str | None) -> Job:
    """A job a handler submits (`ctx.submit`): as the parent's owner, recorded as its child,
    idempotent per (parent, key) through the owner's idempotency keys. Raises what a submit
    refuses, and Unauthenticated when the owner's key is no longer active."""
    key = child_key(request.kind, request.payload) if key is None else key
    if not 1 <= len(key) <= MAX_CHILD_KEY:
        raise InvalidInput(
            "the job input is invalid",
            [FieldError(("key",), f"must be 1 to {MAX_CHILD_KEY} characters")],
        )
    async with transaction(deps.engine) as conn:
        owner = await keys_repo.get_active(conn, key_id=parent.owner_id)
    if owner is None:
        raise Unauthenticated(
            f"the API key that submitted job {parent.id} is revoked or expired: its jobs "
            "submit nothing more"
        )
    child = replace(request, idempotency_key=f"{parent.id}/{key}", parent_id=parent.id)
    (result,) = await submit_many(deps, owner.principal(), [child])
    if isinstance(result, UserError):
        raise result
    return result


#: How often `store` decides again when the tenant's policy changed while it decided.
_POLICY_RACES = 5


async def store(
    conn: AsyncConnection,
    deps: Deps,
    principal: Principal,
    valid: list[tuple[jobs_repo.NewJob, int]],
    *,
    audit_after: dict[str, Any] | None = None,
) -> tuple[list[Job | UserError], list[JobChange]]:
    """Admit validated jobs by the tenant's policy and store the admitted ones with their
    decision and audit rows, in the caller's transaction: every job enters here, a
    schedule's too (ADR-0022). A result per item (the job, or why not) and the changes to
    announce after commit."""
    for _ in range(_POLICY_RACES):
        current = await admission.current(conn, principal.tenant_id)
        admission.remember(deps, principal.tenant_id, current)
        stored = await _decide_and_insert(conn, deps, principal, valid, current, audit_after)
        if stored is not None:
            return stored
    raise ServiceUnavailable("the tenant's policy kept changing during the submit; submit again")


async def _decide_and_insert(
    conn: AsyncConnection,
    deps: Deps,
    principal: Principal,
    valid: list[tuple[jobs_repo.NewJob, int]],
    current: policy.Policy,
    audit_after: dict[str, Any] | None = None,
) -> tuple[list[Job | UserError], list[JobChange]] | None:
    """Decide by `current` and write jobs, first events, decisions and audit rows in one
    statement; None (nothing written) when the tenant's policy is no longer `current`."""
    decided = await admission.admit(
        conn,
        deps,
        principal,
        policy.Action.SUBMIT,
        [admission.Candidate(n.kind, size) for n, size in valid],
        current_policy=current,
    )
    ids = [uuid.uuid4() if d.allowed else None for d in decided.decisions]
    admitted = [(i, n) for i, ((n, _), job_id) in enumerate(zip(valid, ids, strict=True)) if job_id]
    audit_rows = [
        audit.entry(
            principal,
            "job.submit",
            f"job:{ids[i]}",
            after={**_audited(n), **(audit_after or {})},
        )
        for i, n in admitted
    ]
    # The jobs carry the submit span's context: their claims and attempts join its trace.
    inserted = await jobs_repo.insert_admitted(
        conn,
        ids=[job_id for job_id in ids if job_id is not None],
        new=[n for _, n in admitted],
        decisions=decided.rows(ids),
        audit=audit_rows,
        tenant_id=principal.tenant_id,
        policy_version=decided.version,
        trace_context=tracing.carrier(),
    )
    if inserted is None:
        return None
    by_index: dict[int, Job | UserError] = {
        i: admission.denial(d) for i, d in enumerate(decided.decisions) if not d.allowed
    }
    changes: list[JobChange] = []
    taken: list[int] = []  # admitted, but their idempotency key was already used
    for (i, new), row in zip(admitted, inserted, strict=True):
        if row is not None:
            by_index[i] = row[0]
            changes.append(row[1])
        else:
            by_index[i] = await _existing(conn, principal, new)
            taken.append(i)
    results = [by_index[i] for i in range(len(valid))]
    if taken:  # their decisions name the job the key already has
        existing = replace(
            decided,
            candidates=[decided.candidates[i] for i in taken],
            decisions=[decided.decisions[i] for i in taken],
        )
        await admission.record(
            conn, existing, [r.id if isinstance(r := results[i], Job) else None for i in taken]
        )
    return results, changes


def _audited(new: jobs_repo.NewJob) -> dict[str, str]:
    after = {"kind": new.kind, "status": jobs_repo.first_status(new).value}
    if new.parent_id is not None:
        after["parent"] = str(new.parent_id)
    return after


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
