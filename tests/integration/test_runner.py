"""The worker's runner, one job at a time in this process (`conveyor.testing.Harness`): what an
attempt makes of a job, in milliseconds, against real PostgreSQL (no worker process, no broker).
The e2e suite runs the same paths through real servers; these pin the decisions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from conveyor import kinds
from conveyor.db import maintenance
from conveyor.db.engine import statements
from conveyor.domain.errors import UserError
from conveyor.domain.models import Job, Principal
from conveyor.domain.states import AttemptStatus, EventType, JobStatus
from conveyor.services import auth, jobs, submit
from conveyor.services.deps import Deps, open_deps
from conveyor.settings import Settings
from conveyor.testing import Harness


@pytest.fixture
async def deps(settings: Settings) -> AsyncIterator[Deps]:
    async with open_deps(settings, kinds.load(settings.jobs), pool_size=2) as d:
        yield d


@pytest.fixture
async def alice(deps: Deps) -> Principal:
    key, _ = await auth.create_api_key(
        deps.engine, name="alice", secret_key=deps.settings.secret_key.get_secret_value()
    )
    return key.principal()


@pytest.fixture
def harness(deps: Deps) -> Iterator[Harness]:
    h = Harness(deps)
    yield h
    h.close()


async def _submit(
    deps: Deps, who: Principal, kind: str, payload: dict[str, Any], **opts: Any
) -> Job:
    [job] = await submit.submit_many(deps, who, [submit.SubmitRequest(kind, payload, **opts)])
    assert not isinstance(job, UserError), job
    return job


async def _events(deps: Deps, job_id: uuid.UUID) -> list[EventType]:
    return [e.type for e in await jobs.events_after(deps, job_id, 0, 1000)]


async def _attempts(deps: Deps, job_id: uuid.UUID) -> list[AttemptStatus]:
    return [a.status for a in await jobs.attempts(deps, [job_id])]


async def _due_now(deps: Deps, job_id: uuid.UUID) -> None:
    """Skip the backoff: the retry is due now, and promoted as the maintenance loop would."""
    async with statements(deps.engine) as conn:
        await conn.exec_driver_sql("UPDATE jobs SET next_run_at = now() WHERE id = $1", (job_id,))
        await maintenance.promote_due(conn)


async def test_a_job_runs_once_with_its_progress_and_result(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    job = await _submit(deps, alice, "demo.sleep", {"steps": 3, "stepSeconds": 0})
    done = await harness.run(job.id)
    assert (done.status, done.progress, done.result, done.attempt) == (
        JobStatus.SUCCEEDED,
        1.0,
        {"steps": 3},
        1,
    )
    events = await _events(deps, job.id)
    assert events[:2] == [EventType.SUBMITTED, EventType.STARTED]
    assert events[-1] is EventType.SUCCEEDED
    assert EventType.PROGRESS in events
    # The same message delivered again claims nothing and runs nothing.
    again = await harness.run(job.id)
    assert (again.status, again.attempt) == (JobStatus.SUCCEEDED, 1)
    assert await _attempts(deps, job.id) == [AttemptStatus.SUCCEEDED]


async def test_a_failure_retries_after_its_backoff_then_succeeds(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    job = await _submit(deps, alice, "demo.flaky", {"failTimes": 1}, max_attempts=3)
    first = await harness.run(job.id)
    assert first.status is JobStatus.RETRYING
    assert first.next_run_at is not None
    assert first.error == {"type": "FlakyError", "message": first.error["message"]}
    # Not due yet: a message for it now changes nothing.
    assert (await harness.run(job.id)).status is JobStatus.RETRYING
    await _due_now(deps, job.id)
    second = await harness.run(job.id)
    assert (second.status, second.attempt, second.result) == (
        JobStatus.SUCCEEDED,
        2,
        {"attempt": 2},
    )
    assert await _attempts(deps, job.id) == [AttemptStatus.FAILED, AttemptStatus.SUCCEEDED]
    assert EventType.RETRY_SCHEDULED in await _events(deps, job.id)


async def test_the_last_failed_attempt_dead_letters_the_job(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    job = await _submit(deps, alice, "demo.flaky", {"failTimes": 5}, max_attempts=2)
    await harness.run(job.id)
    await _due_now(deps, job.id)
    dead = await harness.run(job.id)
    assert (dead.status, dead.attempt) == (JobStatus.FAILED, 2)
    assert (await _events(deps, job.id))[-1] is EventType.FAILED


async def test_a_permanent_error_fails_at_once_whatever_the_budget(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    job = await _submit(deps, alice, "demo.flaky", {"permanent": True}, max_attempts=5)
    done = await harness.run(job.id)
    assert (done.status, done.attempt) == (JobStatus.FAILED, 1)
    assert done.error is not None
    assert done.error["type"] == "PermanentError"


async def test_an_attempt_over_its_deadline_is_cancelled_and_counts(
    deps: Deps, alice: Principal, harness: Harness
) -> None:
    job = await _submit(
        deps,
        alice,
        "demo.sleep",
        {"steps": 100, "stepSeconds": 1},
        timeout_seconds=0.05,
        max_attempts=1,
    )
    done = await harness.run(job.id)
    assert done.status is JobStatus.FAILED
    assert done.error is not None
    assert done.error["type"] == "Timeout"
    assert await _attempts(deps, job.id) == [AttemptStatus.TIMED_OUT]
    # The last attempt's event is FAILED (the attempt says it timed out).
    assert (await _events(deps, job.id))[-1] is EventType.FAILED
