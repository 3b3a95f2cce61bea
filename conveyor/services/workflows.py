"""Workflow runs as clients use them: submit, read, cancel, retry, follow (ADR-0023).

Each use case owns one transaction that locks the run's row before any job row (the engine's
order), goes through guarded transitions, records admission decisions and audit rows like
jobs do, commits, then announces.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import text

from conveyor import pubsub
from conveyor.db import jobs as jobs_repo
from conveyor.db import runs as runs_repo
from conveyor.db.engine import statements, transaction
from conveyor.domain import policy, runs, storable
from conveyor.domain.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    InvalidState,
    NotFound,
    UnknownWorkflow,
)
from conveyor.domain.models import Job, Principal
from conveyor.domain.runs import (
    PendingRunEvent,
    Run,
    RunEvent,
    RunEventType,
    RunStatus,
    Step,
    StepStatus,
)
from conveyor.domain.states import CANCELLABLE
from conveyor.kinds.workflows import Map, Workflow
from conveyor.services import audit, engine
from conveyor.services import policy as admission
from conveyor.services.deps import Deps
from conveyor.services.engine import Effects

MAX_PAGE = 500
#: Silence after which a follower re-reads PostgreSQL (covers a doorbell that never rang).
IDLE_RECHECK_SECONDS = 5.0
_EVENTS_PAGE = 500


@dataclass(frozen=True)
class SubmitRunRequest:
    workflow: str
    input: Any
    idempotency_key: str | None = None


def _scope(principal: Principal) -> policy.Scope:
    return policy.read_scope(principal)


def _owner_tenant(scope: policy.Scope) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    if scope.job_id is not None:
        # A token for one job sees no runs (the run is more than that job).
        return uuid.UUID(int=0), scope.tenant_id
    return scope.owner_id, scope.tenant_id


def validate(deps: Deps, req: SubmitRunRequest) -> tuple[Workflow, dict[str, Any]]:
    # What PostgreSQL cannot store, anywhere in what the client sent (ADR-0017): the guard
    # leaves this mutation to the service, as it does submits.
    found = storable.find_unstorable(req.input, ("input",)) or storable.find_unstorable(
        req.idempotency_key, ("idempotencyKey",)
    )
    if found is not None:
        raise InvalidInput("the workflow input is invalid", [FieldError(found.path, found.reason)])
    wf = deps.registry.workflows.get(req.workflow)
    if wf is None:
        raise UnknownWorkflow(req.workflow)
    errors: list[FieldError] = []
    data: dict[str, Any] = {}
    raw = {} if req.input is None else req.input
    if not isinstance(raw, dict):
        errors.append(FieldError(("input",), "must be a JSON object"))
    else:
        try:
            data = wf.input_model.model_validate(raw).model_dump(mode="json", by_alias=True)
        except ValidationError as exc:
            errors += [
                FieldError(("input", *(str(p) for p in e["loc"])), e["msg"]) for e in exc.errors()
            ]
    if req.idempotency_key is not None and not 1 <= len(req.idempotency_key) <= 200:
        errors.append(FieldError(("idempotencyKey",), "must be 1 to 200 characters"))
    if errors:
        raise InvalidInput("the workflow input is invalid", errors)
    return wf, data


async def submit(deps: Deps, principal: Principal, req: SubmitRunRequest) -> Run:
    """Store the run, its steps and edges, and start its root steps, in one transaction.

    The admission policy decides the run as the jobs it will run: one candidate per step (a
    map counts once: its items are not known yet) against the role's kinds, the payload size
    and the tenant's job limits; every decision is recorded. A reused idempotency key returns
    the existing run (`deduplicated`) when workflow and input match, else `Conflict`."""
    if principal.token_scope is not None:
        raise Forbidden("a read-only token cannot submit workflows")
    wf, data = validate(deps, req)
    size = len(orjson.dumps(data))
    effects = Effects()
    async with transaction(deps.engine) as conn:
        decided = await admission.admit(
            conn,
            deps,
            principal,
            policy.Action.SUBMIT,
            [admission.Candidate(s.kind, size) for s in wf.steps],
        )
        await admission.record(conn, decided, [None] * len(wf.steps))
        denied = next((d for d in decided.decisions if not d.allowed), None)
        if denied is not None:
            refusal = admission.denial(denied)
        else:
            refusal = None
            ids = {s.key: uuid.uuid4() for s in wf.steps}
            run = await runs_repo.insert_run(
                conn,
                workflow=wf.name,
                input=data,
                owner_id=principal.id,
                idempotency_key=req.idempotency_key,
                steps=[
                    runs_repo.NewStep(
                        id=ids[s.key],
                        key=s.key,
                        kind=s.kind,
                        is_map=isinstance(s, Map),
                        pending_parents=len(wf.parents[s.key]),
                        allow_failures=s.allow_failures if isinstance(s, Map) else 0,
                    )
                    for s in wf.steps
                ],
                edges=[(ids[p], ids[s.key]) for s in wf.steps for p in wf.parents[s.key]],
            )
            if run is None:
                assert req.idempotency_key is not None
                return await _existing(conn, principal, wf, data, req.idempotency_key)
            await audit.append(
                conn,
                [
                    audit.entry(
                        principal,
                        "workflow.submit",
                        f"run:{run.id}",
                        after={"workflow": wf.name, "status": run.status.value},
                    )
                ],
            )
            work = await engine._load(conn, deps, run)
            work.events.append(PendingRunEvent(RunEventType.SUBMITTED, data={"workflow": wf.name}))
            for step in list(work.steps.values()):
                if step.pending_parents == 0:
                    await engine._start(conn, deps, work, step, effects)
            await engine._close(conn, work, effects)
            stored = await runs_repo.get(conn, run_id=run.id)
    if refusal is not None:  # the decisions are committed; nothing else was
        raise refusal
    await engine.announce(deps, effects)
    assert stored is not None
    return stored


async def _existing(
    conn: Any, principal: Principal, wf: Workflow, data: dict[str, Any], key: str
) -> Run:
    existing = await runs_repo.get_by_idempotency_key(conn, owner_id=principal.id, key=key)
    if existing is None:  # pragma: no cover - deleted meanwhile
        raise Conflict("the idempotency key was just released; submit again", "")
    if existing.workflow != wf.name or existing.input != data:
        raise Conflict(
            "this idempotency key was already used with another workflow or input",
            str(existing.id),
        )
    return replace(existing, deduplicated=True)


async def get(deps: Deps, principal: Principal, run_id: uuid.UUID) -> Run | None:
    owner, tenant = _owner_tenant(_scope(principal))
    async with statements(deps.engine) as conn:
        return await runs_repo.get(conn, run_id=run_id, owner_id=owner, tenant_id=tenant)


async def page(
    deps: Deps,
    principal: Principal,
    *,
    statuses: tuple[RunStatus, ...] = (),
    workflows: tuple[str, ...] = (),
    first: int = 50,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> tuple[list[Run], bool]:
    if not 0 <= first <= MAX_PAGE:
        raise InvalidInput(
            "invalid page size", [FieldError(("first",), f"must be between 0 and {MAX_PAGE}")]
        )
    owner, tenant = _owner_tenant(_scope(principal))
    async with statements(deps.engine) as conn:
        return await runs_repo.page(
            conn,
            owner_id=owner,
            tenant_id=tenant,
            statuses=statuses,
            workflows=workflows,
            first=first,
            after=after,
        )


async def steps(deps: Deps, run_ids: list[uuid.UUID]) -> list[Step]:
    async with statements(deps.engine) as conn:
        return await runs_repo.steps(conn, run_ids=run_ids)


async def step_jobs(
    deps: Deps, step_id: uuid.UUID, *, statuses: tuple[str, ...], after_index: int, first: int
) -> list[Job]:
    async with statements(deps.engine) as conn:
        return await runs_repo.step_jobs(
            conn, step_id=step_id, statuses=statuses, after_index=after_index, limit=first
        )


async def job_counts(deps: Deps, step_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    async with statements(deps.engine) as conn:
        return await runs_repo.job_counts(conn, step_ids=step_ids)


async def step_of(deps: Deps, step_id: uuid.UUID) -> Step | None:
    async with statements(deps.engine) as conn:
        found = await runs_repo.steps_by_id(conn, step_ids=[step_id])
    return found[0] if found else None


async def _locked(conn: Any, scope: policy.Scope, run_id: uuid.UUID) -> Run:
    owner, tenant = _owner_tenant(scope)
    if await runs_repo.get(conn, run_id=run_id, owner_id=owner, tenant_id=tenant) is None:
        raise NotFound(str(run_id))
    return (await runs_repo.lock(conn, run_ids=[run_id]))[run_id]


async def cancel(deps: Deps, principal: Principal, run_id: uuid.UUID) -> Run:
    """Every open step is cancelled, its waiting jobs at once and its running ones asked to
    stop (cooperatively, as `cancelJob`); nothing starts afterwards (the run's status is
    checked under its lock by every release and map expansion)."""
    scope = policy.write_scope(principal, policy.Action.CANCEL)
    effects = Effects()
    async with transaction(deps.engine) as conn:
        run = await _locked(conn, scope, run_id)
        if run.status.is_terminal:
            raise InvalidState(
                f"a {run.status.value} run cannot be cancelled (cancellable: QUEUED, RUNNING)",
                run.status.value,
            )
        open_steps = [
            s for s in await runs_repo.steps(conn, run_ids=[run.id]) if s.status in runs.STEP_OPEN
        ]
        cancelled = await runs_repo.transition_steps(
            conn,
            step_ids=[s.id for s in open_steps],
            source=runs_repo.CANCEL_SOURCES,
            target=StepStatus.CANCELLED,
        )
        job_ids = await runs_repo.open_job_ids(
            conn, step_ids=[s.id for s in cancelled], statuses=[s.value for s in CANCELLABLE]
        )
        effects.job_changes += await jobs_repo.cancel(conn, job_ids=job_ids, by=principal.name)
        events = [PendingRunEvent(RunEventType.STEP_CANCELLED, s.key, s.status) for s in cancelled]
        events.append(PendingRunEvent(RunEventType.CANCELLED, data={"by": principal.name}))
        updated = await runs_repo.update(
            conn,
            run=run,
            events=events,
            status=RunStatus.CANCELLED,
            open_delta=-len(cancelled),
        )
        assert updated is not None
        await audit.append(
            conn,
            [
                audit.entry(
                    principal,
                    "workflow.cancel",
                    f"run:{run.id}",
                    before={"status": run.status.value},
                    after={"status": RunStatus.CANCELLED.value, "jobs": len(job_ids)},
                )
            ],
        )
    effects.runs.add(run.id)
    await engine.announce(deps, effects)
    return updated[0]


async def retry(deps: Deps, principal: Principal, run_id: uuid.UUID) -> Run:
    """Run again what did not succeed: failed, skipped and cancelled steps go back to
    BLOCKED, a failed map re-runs only its failed (and cancelled) items, and steps whose
    parents all succeeded start now. Steps that succeeded keep their results and never run
    again. Refused while a job of the run is still stopping (a cancel in progress)."""
    if principal.token_scope is not None:
        raise Forbidden("a read-only token cannot retry workflows")
    scope = _scope(principal)
    effects = Effects()
    refusal = None
    async with transaction(deps.engine) as conn:
        run = await _locked(conn, scope, run_id)
        if run.status not in runs.RUN_RETRY.sources:
            raise InvalidState(
                f"a {run.status.value} run cannot be retried (retryable: CANCELLED, FAILED)",
                run.status.value,
            )
        stopping = (
            await conn.execute(
                text("SELECT count(*) FROM jobs WHERE run_id = :id AND status = 'RUNNING'"),
                {"id": run.id},
            )
        ).scalar_one()
        if stopping:
            raise InvalidState(
                f"{stopping} job(s) of this run are still stopping; retry when they ended",
                run.status.value,
            )
        all_steps = await runs_repo.steps(conn, run_ids=[run.id])
        again = [s for s in all_steps if s.status in runs.STEP_RETRYABLE]
        decided = await admission.admit(
            conn,
            deps,
            principal,
            policy.Action.RETRY,
            [admission.Candidate(s.kind, len(orjson.dumps(run.input))) for s in again],
        )
        await admission.record(conn, decided, [None] * len(again))
        denied = next((d for d in decided.decisions if not d.allowed), None)
        if denied is not None:
            refusal = admission.denial(denied)
        else:
            reset = await runs_repo.transition_steps(
                conn,
                step_ids=[s.id for s in again],
                source=runs_repo.RETRY_SOURCES,
                target=StepStatus.BLOCKED,
            )
            blocked = await runs_repo.set_pending(conn, step_ids=[s.id for s in reset])
            updated = await runs_repo.update(
                conn,
                run=run,
                events=[
                    PendingRunEvent(
                        RunEventType.RETRIED,
                        data={"by": principal.name, "steps": sorted(s.key for s in reset)},
                    )
                ],
                status=RunStatus.RUNNING,
                open_delta=len(reset),
                retried=True,
            )
            assert updated is not None
            work = await engine._load(conn, deps, updated[0])
            for step in blocked:
                if step.pending_parents == 0:
                    await engine._start(conn, deps, work, work.steps[step.id], effects)
            await engine._close(conn, work, effects)
            await audit.append(
                conn,
                [
                    audit.entry(
                        principal,
                        "workflow.retry",
                        f"run:{run.id}",
                        before={"status": run.status.value},
                        after={"steps": sorted(s.key for s in reset)},
                    )
                ],
            )
            stored = await runs_repo.get(conn, run_id=run.id)
    if refusal is not None:
        raise refusal
    await engine.announce(deps, effects)
    assert stored is not None
    return stored


async def events_after(deps: Deps, run_id: uuid.UUID, after: int, limit: int) -> list[RunEvent]:
    async with statements(deps.engine) as conn:
        return await runs_repo.events(conn, run_id=run_id, after=after, limit=limit)


async def follow(
    deps: Deps, bells: pubsub.RunBells, principal: Principal, run_id: uuid.UUID, after: int | None
) -> AsyncIterator[RunEvent]:
    """A run's events in seq order, without gaps or duplicates: a SNAPSHOT (without `after`),
    then every stored event with a higher seq, read from PostgreSQL whenever the run's
    doorbell rings (or after a silence); ends after the terminal event."""
    with bells.watch(run_id) as bell:
        run = await get(deps, principal, run_id)
        if run is None:
            raise NotFound(str(run_id))
        if after is None:
            yield RunEvent.snapshot(run)
            if run.status.is_terminal:
                return
            last = run.last_seq
        else:
            last = max(after, 0)
            if run.status.is_terminal and last >= run.last_seq:
                return
        while True:
            bell.clear()
            while True:
                batch = await events_after(deps, run_id, last, _EVENTS_PAGE)
                for event in batch:
                    last = event.seq
                    yield event
                    if event.is_terminal:
                        return
                if len(batch) < _EVENTS_PAGE:
                    break
            await bell.wait(IDLE_RECHECK_SECONDS * random.uniform(0.8, 1.2))
