"""The workflow engine: what a step job's outcome does to its run, in the same transaction.

There is no engine process. Whoever records a step job's outcome (a worker's runner, lease
recovery) locks the run's row first, records the outcome through the jobs' guarded FINISH
statement, and then, still in that transaction, finishes the step, releases its children and
creates their jobs (`_start`), expands maps, skips what can no longer run and ends the run.
All of it commits together or not at all; dependents' jobs are QUEUED rows that the outbox
sends after commit and the sweep resends if that send is lost (ADR-0023).

The guards that make a duplicate harmless: a job's FINISH matches only its current RUNNING
attempt (a redelivered or late outcome returns nothing, so the engine never sees it), every
step change is a guarded transition of `domain.runs`, `pending_parents` and the map counts
have CHECK constraints, and `workflow_step_jobs` refuses a second job for a step or item.

Size (over ~400 lines on purpose): this is one transaction's logic; its parts call each other
under the run's lock, and the guarantees above are checked by reading them together.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor import pubsub
from conveyor.db import execution as exec_repo
from conveyor.db import jobs as jobs_repo
from conveyor.db import runs as runs_repo
from conveyor.db.engine import transaction
from conveyor.domain import runs
from conveyor.domain.models import JobChange
from conveyor.domain.outcomes import Outcome
from conveyor.domain.runs import (
    PendingRunEvent,
    Run,
    RunEventType,
    RunStatus,
    Step,
    StepStatus,
)
from conveyor.domain.states import CANCELLABLE, RETRYABLE, JobStatus
from conveyor.kinds.workflows import MAX_MAP_ITEMS, Map, StepInputs, Workflow
from conveyor.services import outbox
from conveyor.services.deps import Deps

log = logging.getLogger(__name__)

#: Map item jobs created per transaction: a 10,000-item map is 20 short transactions, not one
#: long one holding the run's lock (the first chunk commits with the parent's outcome).
CHUNK = 500


@dataclass(frozen=True)
class StepRef:
    """Which step (and map item, or -1) a job runs: what the runner knows from the claim."""

    run_id: uuid.UUID
    step_id: uuid.UUID
    map_index: int


#: A step job's outcome to record: (job, attempt, outcome, its step).
Ending = tuple[uuid.UUID, int, Outcome, StepRef]


@dataclass
class Effects:
    """What to do after commit: send and publish job changes, ring the runs' bells, and
    continue maps whose expansion is not finished."""

    job_changes: list[JobChange] = field(default_factory=list)
    runs: set[uuid.UUID] = field(default_factory=set)
    expand: set[uuid.UUID] = field(default_factory=set)


@dataclass
class _Work:
    """One run's changes inside the transaction, written at its end by `runs_repo.update`."""

    run: Run
    wf: Workflow | None
    steps: dict[uuid.UUID, Step]
    events: list[PendingRunEvent] = field(default_factory=list)
    open_delta: int = 0
    started: bool = False

    def by_key(self, key: str) -> Step:
        return next(s for s in self.steps.values() if s.key == key)


async def announce(deps: Deps, effects: Effects) -> None:
    await outbox.announce(deps, effects.job_changes)
    if effects.runs:
        await pubsub.ring(deps.redis, deps.prefix, sorted(effects.runs))
    for run_id in sorted(effects.expand):
        await expand_more(deps, run_id)


async def finish_steps(deps: Deps, items: Sequence[Ending]) -> dict[uuid.UUID, JobChange]:
    """Record step jobs' outcomes and everything they unblock, in one transaction."""
    effects = Effects()
    async with transaction(deps.engine) as conn:
        # The run first, then job rows: the order every run-level transaction takes.
        locked = await runs_repo.lock(conn, run_ids=[ref.run_id for *_, ref in items])
        changes = await exec_repo.finish(conn, outcomes=[(j, a, o) for j, a, o, _ in items])
        ended = [
            (ref, changes[job_id].event.status)
            for job_id, _, _, ref in items
            if job_id in changes and changes[job_id].event.status.is_terminal
        ]
        await settle(conn, deps, locked, ended, effects)
    await announce(deps, effects)
    return changes


async def settle(
    conn: AsyncConnection,
    deps: Deps,
    locked: dict[uuid.UUID, Run],
    ended: Sequence[tuple[StepRef, JobStatus]],
    effects: Effects,
) -> None:
    """Apply step jobs that ended (their FINISH just took effect) to their locked runs."""
    by_run: dict[uuid.UUID, list[tuple[StepRef, JobStatus]]] = {}
    for ref, status in ended:
        by_run.setdefault(ref.run_id, []).append((ref, status))
    for run_id, items in sorted(by_run.items()):
        run = locked.get(run_id)
        if run is None or run.status not in runs.RUN_ACTIVE:
            continue  # a cancelled run records its jobs' outcomes and releases nothing
        work = await _load(conn, deps, run)
        if run.status is RunStatus.QUEUED:
            work.started = True
            work.events.append(PendingRunEvent(RunEventType.STARTED))
        singles = [(ref, status) for ref, status in items if ref.map_index < 0]
        for ref, status in singles:
            step = work.steps.get(ref.step_id)
            if step is not None:
                error = None
                if status is not JobStatus.SUCCEEDED:
                    error = {"type": "StepJobFailed", "message": f"its job ended {status.value}"}
                await _finish_step(
                    conn, deps, work, step, runs.step_outcome_of(status), effects, error=error
                )
        counts: dict[uuid.UUID, tuple[int, int]] = {}
        for ref, status in items:
            if ref.map_index >= 0:
                ok, bad = counts.get(ref.step_id, (0, 0))
                good = status is JobStatus.SUCCEEDED
                counts[ref.step_id] = (ok + good, bad + (not good))
        if counts:
            for step in await runs_repo.count_items(conn, counts=counts):
                work.steps[step.id] = step
                await _after_items(conn, deps, work, step, effects)
        await _close(conn, work, effects)


async def _load(conn: AsyncConnection, deps: Deps, run: Run) -> _Work:
    steps = await runs_repo.steps(conn, run_ids=[run.id])
    return _Work(run, deps.registry.workflows.get(run.workflow), {s.id: s for s in steps})


async def _close(conn: AsyncConnection, work: _Work, effects: Effects) -> None:
    """Write the run's events and counters; end it when no step is open."""
    if not work.events and not work.open_delta and not work.started:
        return
    status: RunStatus | None = RunStatus.RUNNING if work.started else None
    error = None
    if work.run.open_steps + work.open_delta == 0:
        status = runs.run_outcome([s.status for s in work.steps.values()])
        if status is RunStatus.FAILED:
            failed = sorted(s.key for s in work.steps.values() if s.status is StepStatus.FAILED)
            error = {"type": "StepFailed", "message": f"failed step(s): {', '.join(failed)}"}
        if status is not None:
            work.events.append(PendingRunEvent(runs.RUN_EVENT[status], data=error))
    updated = await runs_repo.update(
        conn,
        run=work.run,
        events=work.events,
        status=status,
        open_delta=work.open_delta,
        error=error,
    )
    if updated is None:  # pragma: no cover - the run is locked and was active
        raise RuntimeError(f"run {work.run.id} refused {status}")
    effects.runs.add(work.run.id)


def _event(work: _Work, step: Step, data: dict[str, Any] | None = None) -> None:
    work.events.append(PendingRunEvent(runs.STEP_EVENT[step.status], step.key, step.status, data))


async def _finish_step(
    conn: AsyncConnection,
    deps: Deps,
    work: _Work,
    step: Step,
    target: StepStatus,
    effects: Effects,
    *,
    error: dict[str, Any] | None = None,
) -> None:
    done = await runs_repo.transition_steps(
        conn, step_ids=[step.id], source=runs_repo.FINISH_SOURCES, target=target, error=error
    )
    if not done:
        return  # not RUNNING: cancelled meanwhile, or a duplicate
    step = work.steps[step.id] = done[0]
    _event(work, step, _counts(step) if step.is_map else error)
    work.open_delta -= 1
    if target is StepStatus.SUCCEEDED:
        for child in await runs_repo.release_children(conn, parent_ids=[step.id]):
            work.steps[child.id] = child
            await _start(conn, deps, work, child, effects)
        return
    if step.is_map:  # fail fast: the items still waiting or running stop
        ids = await runs_repo.open_job_ids(
            conn, step_ids=[step.id], statuses=[s.value for s in CANCELLABLE]
        )
        effects.job_changes += await jobs_repo.cancel(conn, job_ids=ids, by="workflow")
    for skipped in await runs_repo.skip_descendants(conn, step_ids=[step.id]):
        work.steps[skipped.id] = skipped
        _event(work, skipped)
        work.open_delta -= 1


def _counts(step: Step) -> dict[str, Any]:
    return {"expected": step.expected, "succeeded": step.succeeded, "failed": step.failed}


async def _after_items(
    conn: AsyncConnection, deps: Deps, work: _Work, step: Step, effects: Effects
) -> None:
    assert step.expected is not None
    target = runs.map_outcome(
        expected=step.expected,
        succeeded=step.succeeded,
        failed=step.failed,
        allow_failures=step.allow_failures,
    )
    if target is None:
        work.events.append(
            PendingRunEvent(RunEventType.MAP_PROGRESS, step.key, step.status, _counts(step))
        )
        return
    error = None
    if target is StepStatus.FAILED:
        error = {
            "type": "TooManyItemsFailed",
            "message": f"{step.failed} item(s) failed; {step.allow_failures} allowed",
        }
    await _finish_step(conn, deps, work, step, target, effects, error=error)


class StepInputError(Exception):
    """A step's input could not be computed or is not valid for its kind."""


def _inputs(work: _Work, results: dict[uuid.UUID, Any]) -> StepInputs:
    assert work.wf is not None
    by_key = {work.steps[i].key: value for i, value in results.items()}
    try:
        model = work.wf.input_model.model_validate(work.run.input)
    except ValidationError as exc:  # the workflow's model changed since the run was submitted
        raise StepInputError(f"the run's input no longer fits the workflow: {exc}") from exc
    return StepInputs(input=model, results=by_key)


def _payload(
    deps: Deps, kind_name: str, value: Any, where: str
) -> tuple[dict[str, Any], str | None]:
    """The step job's validated payload and its concurrency key (ADR-0022), as a submit's."""
    kind = deps.registry.get(kind_name)
    if kind is None:
        raise StepInputError(f"no job kind {kind_name!r} here")
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    if not isinstance(value, dict):
        raise StepInputError(f"{where}: the input must be an object, got {type(value).__name__}")
    try:
        model = kind.input_model.model_validate(value)
    except ValidationError as exc:
        raise StepInputError(f"{where}: invalid input for {kind_name}: {exc}") from exc
    return model.model_dump(mode="json", by_alias=True), kind.key_of(model)


def _new_job(
    deps: Deps, work: _Work, step: Step, payload: tuple[dict[str, Any], str | None], index: int
) -> Any:
    kind = deps.registry.get(step.kind)
    assert kind is not None
    s = deps.settings
    return jobs_repo.NewJob(
        kind=kind.name,
        queue=kind.queue,
        priority=1,
        payload=payload[0],
        concurrency_key=payload[1],
        max_attempts=kind.max_attempts,
        timeout_seconds=kind.timeout_seconds,
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
        owner_id=work.run.owner_id,
        idempotency_key=None,
        run_at=None,
        run_id=work.run.id,
        step_id=step.id,
        map_index=index,
    )


async def _start(
    conn: AsyncConnection, deps: Deps, work: _Work, step: Step, effects: Effects
) -> None:
    """Every parent of `step` succeeded: compute its input and create its job(s), or fail it
    with the reason when the input cannot be computed."""
    if work.wf is None:
        await _fail_to_start(
            conn, deps, work, step, effects, f"workflow {work.run.workflow!r} is not defined here"
        )
        return
    definition = work.wf.step(step.key)
    parents = [work.by_key(k) for k in work.wf.parents[step.key]]
    try:
        inputs = _inputs(work, await runs_repo.results(conn, steps=parents))
        if isinstance(definition, Map):
            items = _items(definition, inputs)
        else:
            value = definition.input(inputs) if definition.input is not None else {}
            payload = _payload(deps, step.kind, value, f"step {step.key!r}")
    except StepInputError as exc:
        await _fail_to_start(conn, deps, work, step, effects, str(exc))
        return
    except Exception as exc:  # the input function itself raised
        await _fail_to_start(
            conn, deps, work, step, effects, f"step {step.key!r}: its input function raised {exc!r}"
        )
        return
    started = await runs_repo.transition_steps(
        conn,
        step_ids=[step.id],
        source=runs_repo.START_SOURCES,
        target=StepStatus.RUNNING,
        expected=len(items) if isinstance(definition, Map) else None,
    )
    if not started:
        return
    step = work.steps[step.id] = started[0]
    _event(work, step, {"items": len(items)} if isinstance(definition, Map) else None)
    # A step run before (a retried run) keeps its jobs: failed ones run again, succeeded ones
    # count; only what never ran gets a new job.
    retried = await _rerun_jobs(conn, step, effects)
    if isinstance(definition, Map):
        if retried is not None:
            step = work.steps[step.id] = retried
        try:
            await _expand(conn, deps, work, step, definition, inputs, items, effects)
        except StepInputError as exc:
            await _finish_step(
                conn,
                deps,
                work,
                step,
                StepStatus.FAILED,
                effects,
                error={"type": "InvalidStepInput", "message": str(exc)},
            )
            return
        assert step.expected is not None
        if step.expected == 0 or step.succeeded >= step.expected:
            await _finish_step(conn, deps, work, step, StepStatus.SUCCEEDED, effects)
        return
    if retried is not None and retried.succeeded:
        await _finish_step(conn, deps, work, step, StepStatus.SUCCEEDED, effects)
        return
    inserted = await runs_repo.insert_step_jobs(conn, new=[_new_job(deps, work, step, payload, -1)])
    effects.job_changes += [change for _, change in inserted]


async def _rerun_jobs(conn: AsyncConnection, step: Step, effects: Effects) -> Step | None:
    """Send the step's failed or cancelled jobs again and recount its items; None when the
    step has no jobs yet."""
    counts = (await runs_repo.job_counts(conn, step_ids=[step.id])).get(step.id)
    if not counts:
        return None
    ids = await runs_repo.open_job_ids(
        conn, step_ids=[step.id], statuses=[s.value for s in RETRYABLE]
    )
    if ids:
        effects.job_changes += await jobs_repo.retry(
            conn, job_ids=ids, budget=None, by="workflow retry"
        )
    succeeded = counts.get(JobStatus.SUCCEEDED.value, 0)
    await conn.execute(
        text("UPDATE workflow_steps SET succeeded = :ok, failed = 0 WHERE id = :id"),
        {"id": step.id, "ok": succeeded},
    )
    found = await runs_repo.steps_by_id(conn, step_ids=[step.id])
    return found[0]


def _items(definition: Map, inputs: StepInputs) -> list[Any]:
    source = inputs.results.get(definition.over)
    try:
        picked = definition.items(source) if definition.items is not None else source
    except Exception as exc:
        raise StepInputError(f"map {definition.key!r}: `items` raised {exc!r}") from exc
    if not isinstance(picked, list | tuple):
        raise StepInputError(
            f"map {definition.key!r}: expected a list of items from {definition.over!r}, "
            f"got {type(picked).__name__}"
        )
    if len(picked) > MAX_MAP_ITEMS:
        raise StepInputError(
            f"map {definition.key!r}: {len(picked)} items; at most {MAX_MAP_ITEMS}"
        )
    return list(picked)


async def _fail_to_start(
    conn: AsyncConnection, deps: Deps, work: _Work, step: Step, effects: Effects, message: str
) -> None:
    started = await runs_repo.transition_steps(
        conn, step_ids=[step.id], source=runs_repo.START_SOURCES, target=StepStatus.RUNNING
    )
    if not started:
        return
    work.steps[step.id] = started[0]
    log.warning(
        "a step could not start",
        extra={"run_id": str(work.run.id), "step": step.key, "error": message},
    )
    await _finish_step(
        conn,
        deps,
        work,
        started[0],
        StepStatus.FAILED,
        effects,
        error={"type": "InvalidStepInput", "message": message},
    )


async def _expand(
    conn: AsyncConnection,
    deps: Deps,
    work: _Work,
    step: Step,
    definition: Map,
    inputs: StepInputs,
    items: list[Any],
    effects: Effects,
) -> None:
    """Create the next chunk of a map's item jobs (idempotently: the cursor only moves from
    where it was read, and a taken (step, index) gets no second job)."""
    assert step.expected is not None
    start, end = step.expanded, min(step.expected, step.expanded + CHUNK)
    if start >= end:
        return
    new = []
    for index in range(start, end):
        try:
            value = (
                definition.input(inputs, items[index])
                if definition.input is not None
                else items[index]
            )
        except Exception as exc:
            raise StepInputError(
                f"map {definition.key!r} item {index}: its input function raised {exc!r}"
            ) from exc
        payload = _payload(deps, step.kind, value, f"map {definition.key!r} item {index}")
        new.append(_new_job(deps, work, step, payload, index))
    inserted = await runs_repo.insert_step_jobs(conn, new=new)
    effects.job_changes += [change for _, change in inserted]
    if await runs_repo.advance_expansion(conn, step_id=step.id, from_=start, to=end):
        work.events.append(
            PendingRunEvent(
                RunEventType.MAP_EXPANDED,
                step.key,
                step.status,
                {"from": start, "to": end, "expected": step.expected},
            )
        )
    if end < step.expected:
        effects.expand.add(work.run.id)


async def expand_more(deps: Deps, run_id: uuid.UUID) -> None:
    """Create the remaining chunks of a run's maps, one transaction per chunk, each under the
    run's lock and only while the run is active. Run after the commit that created the first
    chunk, and by the workers' sweep for maps a crash interrupted."""
    while True:
        effects = Effects()
        async with transaction(deps.engine) as conn:
            run = (await runs_repo.lock(conn, run_ids=[run_id])).get(run_id)
            if run is None or run.status not in runs.RUN_ACTIVE:
                return
            work = await _load(conn, deps, run)
            pending = [
                s
                for s in work.steps.values()
                if s.is_map
                and s.status is StepStatus.RUNNING
                and s.expected is not None
                and s.expanded < s.expected
            ]
            if not pending or work.wf is None:
                return
            step = pending[0]
            definition = work.wf.step(step.key)
            assert isinstance(definition, Map)
            parents = [work.by_key(k) for k in work.wf.parents[step.key]]
            try:
                inputs = _inputs(work, await runs_repo.results(conn, steps=parents))
                await _expand(
                    conn, deps, work, step, definition, inputs, _items(definition, inputs), effects
                )
            except StepInputError as exc:
                await _finish_step(
                    conn,
                    deps,
                    work,
                    step,
                    StepStatus.FAILED,
                    effects,
                    error={"type": "InvalidStepInput", "message": str(exc)},
                )
            await _close(conn, work, effects)
        effects.expand.discard(run_id)
        await announce(deps, effects)


async def expand_interrupted(deps: Deps) -> int:
    """The sweep: continue maps whose expansion stopped (the process expanding them died)."""
    async with transaction(deps.engine) as conn:
        found = await runs_repo.expanding(conn)
    for run_id in found:
        await expand_more(deps, run_id)
    return len(found)


async def mark_started(deps: Deps, run_ids: Sequence[uuid.UUID]) -> None:
    """A step job was claimed: its QUEUED run becomes RUNNING. Never waits for a run's lock
    (a claim must not queue behind a run's transition, nor deadlock with one): a run that is
    busy is marked by whoever records its next step outcome instead."""
    effects = Effects()
    async with transaction(deps.engine) as conn:
        result = await conn.execute(
            text(
                "SELECT id FROM workflow_runs WHERE id = ANY(:ids) AND status = 'QUEUED' "
                "ORDER BY id FOR NO KEY UPDATE SKIP LOCKED"
            ),
            {"ids": sorted(set(run_ids))},
        )
        ids = [r.id for r in result]
        if not ids:
            return
        for run in (await runs_repo.lock(conn, run_ids=ids)).values():
            if run.status is RunStatus.QUEUED:
                await runs_repo.update(
                    conn,
                    run=run,
                    events=[PendingRunEvent(RunEventType.STARTED)],
                    status=RunStatus.RUNNING,
                )
                effects.runs.add(run.id)
    await announce(deps, effects)


async def recover_expired_steps(deps: Deps) -> list[JobChange]:
    """Lease recovery for step jobs: like `execution.recover_expired`, but each run's row is
    locked before its jobs' (the engine's order), and the outcome settles the run. Returns
    the step jobs' changes, announced (the caller counts them and wakes freed slots)."""
    async with transaction(deps.engine) as conn:
        run_ids = await exec_repo.expired_step_runs(conn)
    recovered: list[JobChange] = []
    for run_id in run_ids:
        effects = Effects()
        async with transaction(deps.engine) as conn:
            locked = await runs_repo.lock(conn, run_ids=[run_id])
            current, changes = await exec_repo.end_expired(conn, run_ids=[run_id])
            ended = [
                (StepRef(run_id, e.step_id, e.map_index), changes[e.job_id].event.status)
                for e in current
                if e.job_id in changes
                and e.step_id is not None
                and e.map_index is not None
                and changes[e.job_id].event.status.is_terminal
            ]
            await settle(conn, deps, locked, ended, effects)
        effects.job_changes += list(changes.values())
        recovered += changes.values()
        for c in changes.values():
            log.warning(
                "recovered a step job whose worker stopped responding (lease expired)",
                extra={
                    "job_id": str(c.job_id),
                    "attempt": c.attempt,
                    "kind": c.kind,
                    "status": c.event.status.value,
                    "run_id": str(run_id),
                },
            )
        await announce(deps, effects)
    return recovered
