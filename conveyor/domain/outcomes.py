"""How an attempt ended, and what that makes of the job.

Decided here, once, for every path that ends an attempt: the worker's runner (the handler
returned, raised, timed out, was cancelled or released at shutdown) and the recovery of an
attempt whose worker stopped renewing its lease. The database only applies an outcome, through
the guarded FINISH statement (`states.FINISH`).
"""

from __future__ import annotations

import random
import traceback
from dataclasses import dataclass
from typing import Any, Protocol

from conveyor.domain.retry import backoff_seconds
from conveyor.domain.states import RELEASED, SNOOZED, AttemptStatus, EventType, JobStatus


class Budget(Protocol):
    """What the retry-or-fail decision reads of a job (a `models.Job` is one)."""

    @property
    def attempt(self) -> int: ...

    @property
    def max_attempts(self) -> int: ...

    @property
    def backoff_base_seconds(self) -> float: ...

    @property
    def backoff_cap_seconds(self) -> float: ...


@dataclass(frozen=True)
class Outcome:
    job_status: JobStatus
    attempt_status: AttemptStatus
    event_type: EventType
    result: Any = None
    #: {type, message, traceback}; clients see only type and message.
    error: dict[str, Any] | None = None
    #: Seconds until the next attempt, for RETRYING.
    delay_seconds: float | None = None
    #: Skip the write when the job was asked to cancel meanwhile (retry/fail outcomes); the
    #: runner then records `cancelled()` instead: a cancellation wins over a retry.
    unless_cancel_requested: bool = False
    #: The attempt does not count (a release at shutdown): `max_attempts` grows by one.
    refund_attempt: bool = False


def error_of(exc: BaseException, type_name: str | None = None) -> dict[str, Any]:
    return {
        "type": type_name or type(exc).__name__,
        "message": str(exc) or type(exc).__name__,
        "traceback": "".join(traceback.format_exception(exc)),
    }


def succeeded(result: Any) -> Outcome:
    return Outcome(JobStatus.SUCCEEDED, AttemptStatus.SUCCEEDED, EventType.SUCCEEDED, result=result)


def failed_permanently(error: dict[str, Any]) -> Outcome:
    """No further attempt, whatever the budget: PermanentError, an input or a result that
    can never be valid."""
    return Outcome(JobStatus.FAILED, AttemptStatus.FAILED, EventType.FAILED, error=error)


def cancelled() -> Outcome:
    return Outcome(JobStatus.CANCELLED, AttemptStatus.CANCELLED, EventType.CANCELLED)


def released() -> Outcome:
    """A stopping worker gives the job back: QUEUED at once, and the attempt does not count."""
    error = {"type": RELEASED, "message": "released by a stopping worker"}
    return Outcome(
        JobStatus.QUEUED, AttemptStatus.LOST, EventType.LOST, error=error, refund_attempt=True
    )


#: Longest `ctx.snooze`: a job that wants to wait longer should be submitted with `runAt`.
MAX_SNOOZE_SECONDS = 7 * 86400.0


def snoozed(seconds: float) -> Outcome:
    """The handler asked to run again after `seconds`: SCHEDULED until then, and the attempt
    does not count against `max_attempts` (like a release). A cancel requested meanwhile wins."""
    if not 0 <= seconds <= MAX_SNOOZE_SECONDS:
        raise ValueError(f"snooze must be within [0, {MAX_SNOOZE_SECONDS:g}] seconds")
    # The attempt is LOST with its own error type, like a release (the attempt status check
    # stays as it is: ADR-0023).
    error = {"type": SNOOZED, "message": f"snoozed for {seconds:g} s"}
    return Outcome(
        JobStatus.SCHEDULED,
        AttemptStatus.LOST,
        EventType.SNOOZED,
        error=error,
        delay_seconds=seconds,
        unless_cancel_requested=True,
        refund_attempt=True,
    )


def after_error(
    job: Budget,
    error: dict[str, Any],
    *,
    timed_out: bool = False,
    rng: random.Random | None = None,
) -> Outcome:
    """Retry after a backoff while attempts remain, else FAILED (the dead-letter set)."""
    status = AttemptStatus.TIMED_OUT if timed_out else AttemptStatus.FAILED
    if job.attempt < job.max_attempts:
        delay = backoff_seconds(job.attempt, job.backoff_base_seconds, job.backoff_cap_seconds, rng)
        return Outcome(
            JobStatus.RETRYING,
            status,
            EventType.TIMED_OUT if timed_out else EventType.RETRY_SCHEDULED,
            error=error,
            delay_seconds=delay,
            unless_cancel_requested=True,
        )
    # The last attempt's event is FAILED either way (the attempt's status says it timed out):
    # a client waits for one terminal event type.
    return Outcome(
        JobStatus.FAILED, status, EventType.FAILED, error=error, unless_cancel_requested=True
    )


def after_lost_lease(*, attempt: int, max_attempts: int, cancel_requested: bool) -> Outcome:
    """The worker running the attempt stopped renewing its lease (it died or hung). Asked to
    cancel: CANCELLED. Out of attempts: FAILED. Else QUEUED at once (no backoff: the job did
    not fail, its worker did); the attempt counts, so a job that kills its worker every time
    ends in the dead-letter set."""
    if cancel_requested:
        return Outcome(JobStatus.CANCELLED, AttemptStatus.LOST, EventType.CANCELLED)
    error = {
        "type": "LeaseExpired",
        "message": "the worker running the attempt stopped responding (lease expired)",
    }
    if attempt >= max_attempts:
        return Outcome(JobStatus.FAILED, AttemptStatus.LOST, EventType.FAILED, error=error)
    return Outcome(JobStatus.QUEUED, AttemptStatus.LOST, EventType.LOST, error=error)
