"""The workflow engine against real PostgreSQL, steps worked one job at a time in this process
(`conveyor.testing.Harness`): releases, maps and joins, failures, cancel and retry, snooze,
and the races of ADR-0023 (two parents at once, cancel vs completion, a redelivered outcome).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from conveyor import kinds, metrics
from conveyor.db import runs as runs_repo
from conveyor.db.engine import statements
from conveyor.domain import outcomes
from conveyor.domain.errors import InvalidState, InvalidWorkflow, PermanentError
from conveyor.domain.models import Job, Principal
from conveyor.domain.runs import Run, RunEventType, RunStatus, StepStatus
from conveyor.domain.states import JobStatus
from conveyor.kinds import JobContext, Map, Step, job_kind, workflow
from conveyor.services import auth, execution, workflows
from conveyor.services.deps import Deps, open_deps
from conveyor.services.engine import StepRef
from conveyor.settings import Settings
from conveyor.testing import Harness


class Empty(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Num(BaseModel):
    n: int = 0
    fail: bool = False


class WfInput(BaseModel):
    items: int = 3
    fail_items: list[int] = []


def _registry() -> kinds.Registry:
    reg = kinds.Registry()

    @job_kind("t.make", input=Num, into=reg)
    async def make(ctx: JobContext, input: Num) -> dict[str, Any]:
        return {"items": list(range(input.n)), "n": input.n}

    @job_kind("t.work", input=Num, into=reg, max_attempts=1)
    async def work(ctx: JobContext, input: Num) -> int:
        if input.fail:
            raise PermanentError(f"item {input.n} fails")
        return input.n * 10

    @job_kind("t.sum", input=Num, into=reg)
    async def total(ctx: JobContext, input: Num) -> int:
        return input.n

    @job_kind("t.snooze", input=Num, into=reg)
    async def snoozing(ctx: JobContext, input: Num) -> int:
        if ctx.attempt <= input.n:
            await ctx.snooze(0)
        return ctx.attempt

    @job_kind("t.keyed", input=Num, into=reg, concurrency_key=lambda m: f"n{m.n % 2}")
    async def keyed(ctx: JobContext, input: Num) -> int:
        return input.n

    workflow(
        "t.keyed_fan",
        input=WfInput,
        into=reg,
        steps=[
            Step("make", "t.make", input=lambda c: {"n": c.input.items}),
            Map(
                "work",
                "t.keyed",
                over="make",
                items=lambda r: r["items"],
                input=lambda c, i: {"n": i},
            ),
        ],
    )

    def join_input(c: kinds.StepInputs) -> dict[str, int]:
        return {"n": sum(r for r in c.results["work"] if r is not None)}

    workflow(
        "t.fan",
        input=WfInput,
        into=reg,
        steps=[
            Step("make", "t.make", input=lambda c: {"n": c.input.items}),
            Map(
                "work",
                "t.work",
                over="make",
                items=lambda r: r["items"],
                input=lambda c, i: {"n": i, "fail": i in c.input.fail_items},
                allow_failures=1,
            ),
            Step("join", "t.sum", after=["work"], input=join_input),
        ],
    )
    # a -> (b, c) -> d: a diamond, three levels.
    workflow(
        "t.diamond",
        input=WfInput,
        into=reg,
        steps=[
            Step("a", "t.sum", input=lambda c: {"n": 1}),
            Step("b", "t.sum", after=["a"], input=lambda c: {"n": c.results["a"] + 1}),
            Step(
                "c",
                "t.work",
                after=["a"],
                input=lambda c: {"n": 5, "fail": 5 in c.input.fail_items},
            ),
            Step(
                "d",
                "t.sum",
                after=["b", "c"],
                input=lambda c: {"n": c.results["b"] + c.results["c"]},
            ),
        ],
    )
    return reg


@pytest.fixture
async def deps(settings: Settings) -> AsyncIterator[Deps]:
    async with open_deps(settings, _registry(), pool_size=4) as d:
        yield d


@pytest.fixture
async def alice(deps: Deps) -> Principal:
    key, _ = await auth.create_api_key(
        deps.engine,
        name="alice",
        admin=True,
        secret_key=deps.settings.secret_key.get_secret_value(),
    )
    return key.principal()


@pytest.fixture
def harness(deps: Deps) -> Iterator[Harness]:
    h = Harness(deps)
    yield h
    h.close()


async def _queued(deps: Deps, run_id: uuid.UUID) -> list[Job]:
    async with statements(deps.engine) as conn:
        rows = await conn.exec_driver_sql(
            "SELECT id FROM jobs WHERE run_id = $1 AND status = 'QUEUED' ORDER BY map_index",
            (run_id,),
        )
        ids = [r.id for r in rows]
    return [j for j in await _jobs(deps, run_id) if j.id in ids]


async def _jobs(deps: Deps, run_id: uuid.UUID) -> list[Job]:
    out: list[Job] = []
    for step in await workflows.steps(deps, [run_id]):
        out += await workflows.step_jobs(deps, step.id, statuses=(), after_index=-2, first=100_000)
    return out


async def _drain(deps: Deps, harness: Harness, run_id: uuid.UUID) -> Run:
    """Work every QUEUED job of the run until none is left."""
    while queued := await _queued(deps, run_id):
        for job in queued:
            await harness.run(job.id)
    run = await workflows.get(deps, _admin(deps), run_id)
    assert run is not None
    return run


_ADMIN: dict[int, Principal] = {}


def _admin(deps: Deps) -> Principal:
    return _ADMIN[id(deps)]


async def _submit(deps: Deps, who: Principal, name: str, **input: Any) -> Run:
    _ADMIN[id(deps)] = who
    return await workflows.submit(deps, who, workflows.SubmitRunRequest(name, input))


async def _steps(deps: Deps, run_id: uuid.UUID) -> dict[str, StepStatus]:
    return {s.key: s.status for s in await workflows.steps(deps, [run_id])}


async def _event_types(deps: Deps, run_id: uuid.UUID) -> list[RunEventType]:
    events = await workflows.events_after(deps, run_id, 0, 10_000)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # gapless
    return [e.type for e in events]


async def test_a_map_fans_out_and_the_join_sees_every_result(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    run = await _submit(deps, alice, "t.fan", items=200)
    assert run.status is RunStatus.QUEUED
    done = await _drain(deps, harness, run.id)
    assert done.status is RunStatus.SUCCEEDED, done.error
    jobs = await _jobs(deps, run.id)
    assert len(jobs) == 202  # every step once: 1 + 200 + 1
    assert all(j.status is JobStatus.SUCCEEDED and j.attempt == 1 for j in jobs)
    join = next(j for j in jobs if j.kind == "t.sum")
    assert join.result == sum(i * 10 for i in range(200))
    types = await _event_types(deps, run.id)
    assert types[0] is RunEventType.SUBMITTED
    assert types[-1] is RunEventType.SUCCEEDED


async def test_a_diamond_releases_the_join_once_both_parents_succeeded(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    run = await _submit(deps, alice, "t.diamond")
    done = await _drain(deps, harness, run.id)
    assert done.status is RunStatus.SUCCEEDED
    jobs = {j.kind + str(j.payload): j for j in await _jobs(deps, run.id)}
    assert len(jobs) == 4
    d = [j for j in await _jobs(deps, run.id) if j.payload == {"n": 2 + 50, "fail": False}]
    assert len(d) == 1
    assert d[0].result == 52


async def test_step_jobs_carry_their_kinds_concurrency_key(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    """Per-key limits (ADR-0022) hold step jobs as they hold submitted ones: the key is
    computed from each step job's input when the engine creates it."""
    run = await _submit(deps, alice, "t.keyed_fan", items=3)
    [make] = await _queued(deps, run.id)
    assert make.concurrency_key is None
    await harness.run(make.id)
    items = sorted(await _queued(deps, run.id), key=lambda j: j.map_index or 0)
    assert [(j.map_index, j.concurrency_key) for j in items] == [(0, "n0"), (1, "n1"), (2, "n0")]
    done = await _drain(deps, harness, run.id)
    assert done.status is RunStatus.SUCCEEDED


async def test_an_empty_map_completes_at_once(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    run = await _submit(deps, alice, "t.fan", items=0)
    done = await _drain(deps, harness, run.id)
    assert done.status is RunStatus.SUCCEEDED
    assert len(await _jobs(deps, run.id)) == 2


async def test_a_map_within_its_allowed_failures_goes_on(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    run = await _submit(deps, alice, "t.fan", items=4, fail_items=[2])
    done = await _drain(deps, harness, run.id)
    assert done.status is RunStatus.SUCCEEDED
    join = next(j for j in await _jobs(deps, run.id) if j.kind == "t.sum")
    assert join.result == 0 + 10 + 30


async def test_too_many_failures_fail_the_map_skip_the_join_and_retry_reruns_only_them(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    run = await _submit(deps, alice, "t.fan", items=5, fail_items=[1, 3])
    done = await _drain(deps, harness, run.id)
    assert done.status is RunStatus.FAILED
    steps = await _steps(deps, run.id)
    assert steps == {
        "make": StepStatus.SUCCEEDED,
        "work": StepStatus.FAILED,
        "join": StepStatus.SKIPPED,
    }
    before = {j.map_index: j for j in await _jobs(deps, run.id)}
    # Retry: the failed items run again (they fail again unless the input changes: make
    # them pass by changing what the kind sees is not possible, so count the runs instead).
    retried = await workflows.retry(deps, alice, run.id)
    assert retried.status is RunStatus.RUNNING
    assert retried.generation == 2
    after_retry = {j.map_index: j for j in await _jobs(deps, run.id)}
    requeued = sorted(i for i, j in after_retry.items() if j.status is JobStatus.QUEUED)
    # Only items that did not succeed are queued again; `make` and the good items keep theirs.
    not_succeeded = sorted(
        i for i, j in before.items() if i >= 0 and j.status is not JobStatus.SUCCEEDED
    )
    assert {1, 3} <= set(not_succeeded)
    assert requeued == not_succeeded
    for i, j in after_retry.items():
        if before[i].status is JobStatus.SUCCEEDED:
            assert j.status is JobStatus.SUCCEEDED
            assert j.attempt == before[i].attempt
    assert after_retry[-1].status is JobStatus.SUCCEEDED  # make: not re-run
    await _drain(deps, harness, run.id)
    final = {j.map_index: j for j in await _jobs(deps, run.id)}
    assert final[-1].attempt == 1


async def test_a_failed_branch_skips_what_depends_on_it_and_retry_runs_only_that(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    run = await _submit(deps, alice, "t.diamond", fail_items=[5])
    done = await _drain(deps, harness, run.id)
    assert done.status is RunStatus.FAILED
    assert await _steps(deps, run.id) == {
        "a": StepStatus.SUCCEEDED,
        "b": StepStatus.SUCCEEDED,
        "c": StepStatus.FAILED,
        "d": StepStatus.SKIPPED,
    }
    with pytest.raises(InvalidState):
        await workflows.cancel(deps, alice, run.id)
    await workflows.retry(deps, alice, run.id)
    queued = await _queued(deps, run.id)
    assert [j.kind for j in queued] == ["t.work"]  # c alone: a and b are not run again
    attempts_before = {j.kind + str(j.payload): j.attempt for j in await _jobs(deps, run.id)}
    await _drain(deps, harness, run.id)
    for j in await _jobs(deps, run.id):
        if j.kind == "t.sum" and j.payload in ({"n": 1, "fail": False}, {"n": 2, "fail": False}):
            assert j.attempt == attempts_before[j.kind + str(j.payload)] == 1


async def test_cancel_stops_waiting_steps_and_nothing_starts_afterwards(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    run = await _submit(deps, alice, "t.fan", items=10)
    [make] = await _queued(deps, run.id)
    await harness.run(make.id)  # the map's items are queued now
    cancelled = await workflows.cancel(deps, alice, run.id)
    assert cancelled.status is RunStatus.CANCELLED
    jobs = await _jobs(deps, run.id)
    assert all(j.status in (JobStatus.SUCCEEDED, JobStatus.CANCELLED) for j in jobs)
    assert not await _queued(deps, run.id)
    assert await _steps(deps, run.id) == {
        "make": StepStatus.SUCCEEDED,
        "work": StepStatus.CANCELLED,
        "join": StepStatus.CANCELLED,
    }
    types = await _event_types(deps, run.id)
    assert types[-1] is RunEventType.CANCELLED


async def test_cancel_racing_a_completion_starts_nothing(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    """The last item's outcome and a cancel at the same moment: whichever takes the run's lock
    first wins, and the join never starts after the cancel."""
    run = await _submit(deps, alice, "t.fan", items=1)
    [make] = await _queued(deps, run.id)
    await harness.run(make.id)
    [item] = await _queued(deps, run.id)
    [claimed] = await execution.claim_many(deps, worker_id="w", job_ids=[item.id])
    assert claimed is not None
    job = claimed.job
    ref = execution.step_of(job)
    finish = execution.finish_many(deps, [(job.id, job.attempt, outcomes.succeeded(10), ref)])
    cancel = workflows.cancel(deps, alice, run.id)
    results = await asyncio.gather(finish, cancel, return_exceptions=True)
    final = await workflows.get(deps, alice, run.id)
    assert final is not None
    steps = await _steps(deps, run.id)
    if isinstance(results[1], InvalidState):  # the completion won and ended... not the run
        pytest.fail("the run cannot have ended: the join was still to run")
    assert final.status is RunStatus.CANCELLED
    assert steps["join"] is StepStatus.CANCELLED
    assert not [j for j in await _jobs(deps, run.id) if j.kind == "t.sum"] or all(
        j.status is JobStatus.CANCELLED for j in await _jobs(deps, run.id) if j.kind == "t.sum"
    )
    assert not await _queued(deps, run.id)


async def test_two_parents_finishing_at_once_start_the_child_exactly_once(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    run = await _submit(deps, alice, "t.diamond")
    [a] = await _queued(deps, run.id)
    await harness.run(a.id)
    b, c = await _queued(deps, run.id)
    claimed = await execution.claim_many(deps, worker_id="w", job_ids=[b.id, c.id])
    ends = []
    for found, value in zip(claimed, (2, 50), strict=True):
        assert found is not None
        job = found.job
        ends.append(
            execution.finish_many(
                deps, [(job.id, job.attempt, outcomes.succeeded(value), execution.step_of(job))]
            )
        )
    await asyncio.gather(*ends)
    queued = await _queued(deps, run.id)
    assert [j.payload for j in queued] == [{"n": 52, "fail": False}]
    async with statements(deps.engine) as conn:
        steps = {s.key: s for s in await runs_repo.steps(conn, run_ids=[run.id])}
    assert steps["d"].status is StepStatus.RUNNING
    assert steps["d"].pending_parents == 0


async def test_a_redelivered_completion_counts_once(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    run = await _submit(deps, alice, "t.fan", items=2)
    [make] = await _queued(deps, run.id)
    await harness.run(make.id)
    first, _ = await _queued(deps, run.id)
    [found] = await execution.claim_many(deps, worker_id="w", job_ids=[first.id])
    assert found is not None
    job = found.job
    item = (job.id, job.attempt, outcomes.succeeded(0), execution.step_of(job))
    answers = await asyncio.gather(
        execution.finish_many(deps, [item]), execution.finish_many(deps, [item])
    )
    assert sorted(a[0] is None for a in answers) == [False, True]
    async with statements(deps.engine) as conn:
        steps = {s.key: s for s in await runs_repo.steps(conn, run_ids=[run.id])}
    assert steps["work"].succeeded == 1
    assert steps["work"].status is StepStatus.RUNNING


async def test_the_same_step_cannot_get_a_second_job(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    """The constraint, not only the code: a second job for a taken (step, index) is refused."""
    run = await _submit(deps, alice, "t.diamond")
    [a] = await _queued(deps, run.id)
    assert a.step_id is not None
    async with statements(deps.engine) as conn:
        found = await runs_repo.insert_step_jobs(
            conn,
            new=[
                execution_new_job(a),
            ],
        )
    assert found == []


def execution_new_job(job: Job) -> Any:
    from conveyor.db.jobs import NewJob

    return NewJob(
        kind=job.kind,
        queue=job.queue,
        priority=1,
        payload=job.payload,
        max_attempts=1,
        timeout_seconds=10,
        backoff_base_seconds=1,
        backoff_cap_seconds=1,
        owner_id=job.owner_id,
        idempotency_key=None,
        run_at=None,
        run_id=job.run_id,
        step_id=job.step_id,
        map_index=job.map_index,
    )


async def test_a_reused_idempotency_key_returns_the_same_run(deps: Deps, alice: Principal) -> None:
    req = workflows.SubmitRunRequest("t.fan", {"items": 2}, idempotency_key="k1")
    first = await workflows.submit(deps, alice, req)
    again = await workflows.submit(deps, alice, req)
    assert again.id == first.id
    assert again.deduplicated
    assert len(await _jobs(deps, first.id)) == 1


async def test_snooze_runs_again_later_without_using_an_attempt(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    from conveyor.services import submit

    [job] = await submit.submit_many(
        deps, alice, [submit.SubmitRequest("t.snooze", {"n": 2}, max_attempts=1)]
    )
    assert isinstance(job, Job)
    after = await harness.run(job.id)
    assert after.status is JobStatus.SCHEDULED
    assert after.max_attempts == 2
    for _ in range(2):
        async with statements(deps.engine) as conn:
            await conn.exec_driver_sql(
                "UPDATE jobs SET status = 'QUEUED', next_run_at = NULL WHERE id = $1", (job.id,)
            )
        after = await harness.run(job.id)
    assert after.status is JobStatus.SUCCEEDED
    assert after.result == 3


def test_a_definition_is_validated_at_import() -> None:
    reg = _registry()
    with pytest.raises(InvalidWorkflow, match="cycle"):
        workflow(
            "t.cycle",
            input=WfInput,
            into=reg,
            steps=[Step("a", "t.sum", after=["b"]), Step("b", "t.sum", after=["a"])],
        )
    with pytest.raises(InvalidWorkflow, match=r"unknown job kind 't\.nope'"):
        workflow("t.bad", input=WfInput, into=reg, steps=[Step("a", "t.nope")])
    with pytest.raises(InvalidWorkflow, match="unreachable"):
        workflow("t.cut", input=WfInput, into=reg, steps=[Step("a", "t.sum"), Step("b", "t.sum")])
    with pytest.raises(InvalidWorkflow, match="unknown step 'x'"):
        workflow("t.dangling", input=WfInput, into=reg, steps=[Step("a", "t.sum", after=["x"])])


_ = (Empty, StepRef)


async def test_a_step_job_whose_lease_expired_is_recovered_counted_and_runs_again(
    settings: Settings, deps: Deps, alice: Principal, harness: Harness
) -> None:
    """Lease recovery of a step job goes through the run (its row locked first) and is
    counted as any recovered attempt (`conveyor_recovered_attempts_total`)."""
    run = await _submit(deps, alice, "t.fan", items=2)
    [make] = await _queued(deps, run.id)
    short = settings.model_copy(update={"lease_seconds": 0.2})
    async with open_deps(short, _registry(), pool_size=2, relay=False) as crashed:
        [claimed] = await execution.claim_many(crashed, worker_id="gone", job_ids=[make.id])
        assert claimed is not None
    before = metrics.REGISTRY.get_sample_value("conveyor_recovered_attempts_total") or 0.0
    await asyncio.sleep(0.4)  # nobody renews the 0.2 s lease
    assert await execution.recover_expired(deps) == 1
    assert metrics.REGISTRY.get_sample_value("conveyor_recovered_attempts_total") == before + 1
    [again] = await _queued(deps, run.id)
    assert (again.id, again.attempt) == (make.id, 1)
    done = await _drain(deps, harness, run.id)
    assert done.status is RunStatus.SUCCEEDED, done.error
