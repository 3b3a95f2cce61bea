"""Changing jobs a client already has: cancel and retry, one job or every job matching a filter.
Each transaction re-reads, changes through guarded statements, audits, commits, then announces."""

from __future__ import annotations

import uuid

import orjson

from conveyor.db import jobs as jobs_repo
from conveyor.db.engine import transaction
from conveyor.domain import policy
from conveyor.domain.errors import Forbidden, InvalidState, NotFound, PolicyDenied
from conveyor.domain.models import AuditEntry, Job, JobChange, Principal
from conveyor.domain.states import CANCELLABLE, RETRYABLE, JobStatus
from conveyor.services import audit, outbox
from conveyor.services import policy as admission
from conveyor.services.deps import Deps
from conveyor.services.jobs import JobFilterArgs, get_scoped, repo_filter

#: Largest number of jobs one bulk cancel/retry changes.
MAX_BULK = 100_000
#: Jobs one bulk transaction visits.
BULK_BATCH = 1000
#: Denials that will refuse every further job of the same call: a bulk retry stops there.
_STOPS_BULK = frozenset({policy.RULE_READ_ONLY, policy.RULE_WAITING, policy.RULE_RATE})


async def cancel(deps: Deps, principal: Principal, job_id: uuid.UUID) -> Job:
    scope = policy.write_scope(principal, policy.Action.CANCEL)
    async with transaction(deps.engine) as conn:
        before = await get_scoped(conn, scope, job_id)
        if before is None:
            raise NotFound(str(job_id))
        _not_a_step(before, "cancel")
        changes = await jobs_repo.cancel(conn, job_ids=[job_id], by=principal.name)
        await audit.append(conn, _job_audit(principal, "job.cancel", changes, before.status))
        current = await jobs_repo.get(conn, job_id=job_id, owner_id=None)
    assert current is not None
    if not changes and current.status is not JobStatus.RUNNING:  # RUNNING: already asked
        raise _cannot(current, "cancelled", "cancellable", CANCELLABLE)
    await outbox.announce(deps, changes)
    return current


async def retry(deps: Deps, principal: Principal, job_id: uuid.UUID) -> Job:
    """Send a FAILED/CANCELLED job again, if the admission policy allows (PolicyDenied else)."""
    scope = _retry_scope(principal)
    denied: PolicyDenied | None = None
    changes: list[JobChange] = []
    async with transaction(deps.engine) as conn:
        job = await get_scoped(conn, scope, job_id)
        if job is None:
            raise NotFound(str(job_id))
        _not_a_step(job, "retry")
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
        raise _cannot(current, "retried", "retryable", RETRYABLE)
    await outbox.announce(deps, changes)
    return current


def _not_a_step(job: Job, verb: str) -> None:
    """A workflow step's job changes with its run (`cancelWorkflowRun`, `retryWorkflowRun`):
    changed on its own, the run would wait for it forever or start its dependents twice."""
    if job.run_id is not None:
        raise InvalidState(
            f"this job is a step of workflow run {job.run_id}: {verb} the run instead",
            job.status.value,
        )


def _cannot(job: Job, done: str, able: str, allowed: frozenset[JobStatus]) -> InvalidState:
    return InvalidState(
        f"a {job.status.value} job cannot be {done} "
        f"({able}: {', '.join(sorted(s.value for s in allowed))})",
        job.status.value,
    )


def _retry_scope(principal: Principal) -> policy.Scope:
    # Roles are judged by the admission policy (a viewer's retry is a recorded denial).
    if principal.token_scope is not None:
        raise Forbidden("a read-only token cannot retry jobs")
    return policy.read_scope(principal)


def _job_audit(
    principal: Principal, action: str, changes: list[JobChange], before: JobStatus
) -> list[AuditEntry]:
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


def _bulk_audit(
    principal: Principal, action: str, flt: JobFilterArgs, changes: list[JobChange]
) -> list[AuditEntry]:
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


async def cancel_matching(deps: Deps, principal: Principal, flt: JobFilterArgs) -> int:
    """Cancel every visible job matching the filter (in batches). Returns how many changed."""
    scope = policy.write_scope(principal, policy.Action.CANCEL)
    total = 0
    while total < MAX_BULK:
        async with transaction(deps.engine) as conn:
            found = await jobs_repo.ids_matching(
                conn, flt=repo_filter(scope, flt), statuses=CANCELLABLE, limit=BULK_BATCH
            )
            changes = await jobs_repo.cancel(conn, job_ids=[i for i, _ in found], by=principal.name)
            await audit.append(conn, _bulk_audit(principal, "jobs.cancel", flt, changes))
        await outbox.announce(deps, changes)
        total += len(changes)
        if len(found) < BULK_BATCH or not changes:
            return total
    return total


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
                conn, flt=repo_filter(scope, flt), after=after, limit=BULK_BATCH
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
        await outbox.announce(deps, changes)
        total += len(changes)
        visited += len(found)
        after = found[-1].id
        stopped = any(d.rule in _STOPS_BULK for d in decided.decisions if not d.allowed)
        if stopped or len(found) < BULK_BATCH:
            return total
    return total
