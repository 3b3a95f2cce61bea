"""What an ended attempt makes of its job: the decisions of `domain.outcomes`, without I/O."""

import random
from dataclasses import dataclass

import pytest

from conveyor.domain import outcomes
from conveyor.domain.states import FINISH, AttemptStatus, EventType, JobStatus, can_transition


@dataclass
class Budget:
    attempt: int
    max_attempts: int
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 10.0


ERROR = {"type": "Boom", "message": "boom"}


def test_an_error_with_attempts_left_retries_after_a_backoff_within_the_cap() -> None:
    decided = outcomes.after_error(Budget(2, 3), ERROR, rng=random.Random(1))
    assert (decided.job_status, decided.event_type) == (
        JobStatus.RETRYING,
        EventType.RETRY_SCHEDULED,
    )
    assert decided.delay_seconds is not None
    assert 0 <= decided.delay_seconds <= 2.0
    # A cancel requested meanwhile wins over the retry.
    assert decided.unless_cancel_requested


def test_the_last_attempts_error_dead_letters_the_job() -> None:
    decided = outcomes.after_error(Budget(3, 3), ERROR)
    assert (decided.job_status, decided.attempt_status, decided.delay_seconds) == (
        JobStatus.FAILED,
        AttemptStatus.FAILED,
        None,
    )


@pytest.mark.parametrize(
    ("attempt", "status", "event"),
    [(1, JobStatus.RETRYING, EventType.TIMED_OUT), (3, JobStatus.FAILED, EventType.FAILED)],
)
def test_a_timeout_is_an_error_that_says_so(
    attempt: int, status: JobStatus, event: EventType
) -> None:
    decided = outcomes.after_error(Budget(attempt, 3), ERROR, timed_out=True)
    assert (decided.job_status, decided.attempt_status, decided.event_type) == (
        status,
        AttemptStatus.TIMED_OUT,
        event,
    )


def test_a_lost_lease_requeues_at_once_until_the_budget_is_spent_and_a_cancel_wins() -> None:
    requeued = outcomes.after_lost_lease(attempt=1, max_attempts=3, cancel_requested=False)
    assert (requeued.job_status, requeued.event_type, requeued.delay_seconds) == (
        JobStatus.QUEUED,
        EventType.LOST,
        None,
    )
    assert not requeued.refund_attempt  # a crash counts; a release does not
    spent = outcomes.after_lost_lease(attempt=3, max_attempts=3, cancel_requested=False)
    assert (spent.job_status, spent.error and spent.error["type"]) == (
        JobStatus.FAILED,
        "LeaseExpired",
    )
    cancelled = outcomes.after_lost_lease(attempt=1, max_attempts=3, cancel_requested=True)
    assert cancelled.job_status is JobStatus.CANCELLED


def test_a_release_at_shutdown_gives_the_attempt_back() -> None:
    released = outcomes.released()
    assert (released.job_status, released.refund_attempt) == (JobStatus.QUEUED, True)


def test_every_outcome_is_a_move_the_finish_transition_allows() -> None:
    decided = [
        outcomes.succeeded(None),
        outcomes.failed_permanently(ERROR),
        outcomes.cancelled(),
        outcomes.released(),
        outcomes.after_error(Budget(1, 3), ERROR),
        outcomes.after_error(Budget(3, 3), ERROR),
        outcomes.after_lost_lease(attempt=1, max_attempts=3, cancel_requested=False),
        outcomes.after_lost_lease(attempt=3, max_attempts=3, cancel_requested=False),
        outcomes.after_lost_lease(attempt=1, max_attempts=3, cancel_requested=True),
    ]
    for o in decided:
        assert o.job_status in FINISH.targets
        assert all(can_transition(s, o.job_status) for s in FINISH.sources)
