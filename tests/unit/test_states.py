"""The job state machine and the retry policy, without I/O."""

import random

import pytest

from conveyor.domain.retry import backoff_seconds
from conveyor.domain.states import TERMINAL, JobStatus, can_transition, sources_of


def test_terminal_states_have_no_way_out_but_retry() -> None:
    assert not any(can_transition(JobStatus.SUCCEEDED, t) for t in JobStatus)
    for status in (JobStatus.FAILED, JobStatus.CANCELLED):
        allowed = {t for t in JobStatus if can_transition(status, t)}
        assert allowed == {JobStatus.QUEUED}


def test_only_queued_jobs_can_be_claimed() -> None:
    assert sources_of(JobStatus.RUNNING) == {JobStatus.QUEUED}


def test_a_running_job_is_scheduled_again_only_by_its_own_outcome() -> None:
    """A handler that snoozes ends its attempt as SCHEDULED; nothing else schedules it."""
    assert can_transition(JobStatus.RUNNING, JobStatus.SCHEDULED)
    assert sources_of(JobStatus.SCHEDULED) == {JobStatus.RUNNING}


@pytest.mark.parametrize("status", list(JobStatus))
def test_every_status_is_classified(status: JobStatus) -> None:
    assert status.is_terminal == (status in TERMINAL)
    assert not (status.is_terminal and status.is_waiting)


def test_backoff_is_full_jitter_within_the_exponential_ceiling() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        samples = [backoff_seconds(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole range, not a fixed delay
