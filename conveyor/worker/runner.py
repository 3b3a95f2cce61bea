"""Running one job: claim, ack, run the handler under its deadline, record the outcome.

The taskiq message is acknowledged as soon as the claim is committed (or found impossible):
from then on PostgreSQL owns the job, and a dead worker's job comes back through its lease.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from taskiq import Context

from conveyor import logs, metrics, tracing
from conveyor.domain import outcomes
from conveyor.domain.errors import PermanentError, ServiceUnavailable, Snooze
from conveyor.domain.models import Job, JobChange, PendingEvent
from conveyor.domain.outcomes import Outcome
from conveyor.domain.states import EventType, JobStatus, Priority
from conveyor.services import execution, submit
from conveyor.services.batching import Batcher
from conveyor.services.deps import Deps
from conveyor.worker.progress import ProgressWriter

log = logging.getLogger(__name__)
T = TypeVar("T")

#: A claim that failed for a database outage is retried after this, doubling up to the max.
CLAIM_RETRY_FIRST_SECONDS = 0.2
CLAIM_RETRY_MAX_SECONDS = 5.0


@dataclass
class Running:
    job_id: uuid.UUID
    attempt: int
    task: asyncio.Task[Any]
    #: Why we cancelled the handler: "cancel" (client), "lost" (lease gone), "shutdown".
    reason: str | None = None
    finishing: bool = False

    def stop(self, reason: str) -> None:
        if self.reason is None and not self.finishing:
            self.reason = reason
            self.task.cancel()


@dataclass
class RunContext:
    """The `JobContext` handlers receive."""

    job_id: uuid.UUID
    attempt: int
    writer: ProgressWriter
    pool: Executor
    #: The job running, and the process's dependencies: for `submit`.
    job: Job
    deps: Deps

    async def progress(self, fraction: float, message: str | None = None) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress must be within [0, 1], got {fraction}")
        self.writer.add(
            PendingEvent(
                self.job_id, self.attempt, EventType.PROGRESS, float(fraction), message, None
            )
        )

    async def log(self, message: str, level: str = "info") -> None:
        self.writer.add(
            PendingEvent(self.job_id, self.attempt, EventType.LOG, None, message, {"level": level})
        )

    async def run_in_process(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def submit(
        self,
        kind: str,
        input: Mapping[str, Any] | BaseModel | None = None,
        *,
        key: str | None = None,
        run_at: datetime | None = None,
        priority: Priority = Priority.NORMAL,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
    ) -> Job:
        request = submit.SubmitRequest(
            kind=kind,
            payload=submit.payload_of(input),
            run_at=run_at,
            priority=Priority(priority),
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
        )
        child = await submit.submit_child(self.deps, parent=self.job, request=request, key=key)
        log.info(
            "submitted a child job",
            extra={
                "child_id": str(child.id),
                "child_kind": kind,
                "deduplicated": child.deduplicated,
            },
        )
        return child

    async def snooze(self, seconds: float) -> NoReturn:
        if not 0 <= seconds <= outcomes.MAX_SNOOZE_SECONDS:
            raise ValueError(
                f"snooze must be within [0, {outcomes.MAX_SNOOZE_SECONDS:g}] seconds, got {seconds}"
            )
        raise Snooze(float(seconds))


def _to_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    return orjson.loads(orjson.dumps(value))  # raises TypeError when not JSON-serialisable


@dataclass
class JobRunner:
    """Per-worker job runner (one per process)."""

    deps: Deps
    worker_id: str
    writer: ProgressWriter
    pool: Executor
    running: dict[uuid.UUID, Running] = field(default_factory=dict)
    #: Messages being handled now (claiming or running): the receiver slots in use.
    busy: int = 0
    #: How long to keep retrying to record an outcome while PostgreSQL is unreachable.
    record_patience_seconds: float = 600.0
    #: How long one message holds its slot retrying its claim through an outage.
    claim_patience_seconds: float = 600.0
    #: Claims and outcomes of jobs that end at the same moment share one statement.
    claims: Batcher[uuid.UUID, execution.Claimed | None] = field(init=False)
    outcomes: Batcher[execution.Finish, JobChange | None] = field(init=False)
    #: Ends of jobs started by the limited claim: each may wake a parked job (ADR-0022).
    wakes: Batcher[uuid.UUID, None] = field(init=False)

    def __post_init__(self) -> None:
        self.claims = Batcher(
            lambda ids: execution.claim_many(self.deps, worker_id=self.worker_id, job_ids=ids)
        )
        self.outcomes = Batcher(lambda items: execution.finish_many(self.deps, items))
        self.wakes = Batcher(lambda ids: execution.wake_freed(self.deps, ids))

    async def run(self, job_id: uuid.UUID, context: Context | None) -> None:
        self.busy += 1
        try:
            await self._run(job_id, context)
        finally:
            self.busy -= 1

    async def _run(self, job_id: uuid.UUID, context: Context | None) -> None:
        claiming = tracing.now()
        try:
            claimed = await self._claim(job_id)
        except ServiceUnavailable:
            # Not acked: the message is re-claimed later, when PostgreSQL may be back.
            log.warning("claim failed: database unavailable", extra={"job_id": str(job_id)})
            return
        if context is not None:
            try:
                await context.ack()
            except Exception as exc:
                log.warning("ack failed", extra={"job_id": str(job_id), "error": repr(exc)})
        if claimed is None:
            log.debug(
                "not claimable (duplicate, no longer queued, parked, or a kind unknown here)",
                extra={"job_id": str(job_id)},
            )
            return
        job = claimed.job
        # The claim's span, in the trace the job was submitted in (ADR-0024).
        with tracing.span(
            "conveyor.claim",
            {"conveyor.job_id": str(job.id), "conveyor.attempt": job.attempt},
            parent=job.trace_context,
            kind="consumer",
            start_ns=claiming,
        ):
            pass
        try:
            await self._execute(job)
        finally:
            if claimed.limited:
                try:
                    await self.wakes.submit(job.id)
                except Exception as exc:  # the parked-jobs sweep wakes it instead
                    log.warning("could not wake parked jobs", extra={"error": repr(exc)})

    async def _claim(self, job_id: uuid.UUID) -> execution.Claimed | None:
        """Claim, holding this slot through a database outage with exponential backoff: a
        worker that cannot claim must not take more messages, which would only pile up,
        unacknowledged, in its pending list until they are re-claimed."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.claim_patience_seconds
        delay = CLAIM_RETRY_FIRST_SECONDS
        while True:
            try:
                return await self.claims.submit(job_id)
            except ServiceUnavailable:
                if loop.time() + delay > give_up:
                    raise
                log.warning(
                    "claim failed: database unavailable; retrying",
                    extra={"job_id": str(job_id), "retry_in": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, CLAIM_RETRY_MAX_SECONDS)

    async def _execute(self, job: Job) -> None:
        # Every line logged while the attempt runs (the handler's own too) names the job.
        with (
            logs.job_context(job.id, job.attempt, job.kind),
            tracing.span(
                "conveyor.attempt",
                {
                    "conveyor.job_id": str(job.id),
                    "conveyor.attempt": job.attempt,
                    "conveyor.kind": job.kind,
                },
                parent=job.trace_context,
            ),
        ):
            await self._execute_attempt(job)

    async def _execute_attempt(self, job: Job) -> None:
        extra = {"job_id": str(job.id), "attempt": job.attempt, "kind": job.kind}
        log.info("attempt started", extra=extra)
        started = asyncio.get_running_loop().time()
        kind = self.deps.registry[job.kind]  # the claim takes only kinds this registry knows
        try:
            payload = kind.input_model.model_validate(job.payload)
        except ValidationError as exc:
            outcome = outcomes.failed_permanently(outcomes.error_of(exc, "InvalidInput"))
            await self._record(job, outcome, extra, started)
            return
        ctx = RunContext(job.id, job.attempt, self.writer, self.pool, job=job, deps=self.deps)
        task = asyncio.create_task(kind.handler(ctx, payload), name=f"job-{job.id}")
        running = Running(job.id, job.attempt, task)
        self.running[job.id] = running
        metrics.RUNNING.inc()
        try:
            final = await self._await_handler(job, running)
        finally:
            running.finishing = True
        try:
            if final is not None:
                await self.writer.flush_job(job.id)
                await self._record(job, final, extra, started)
        finally:
            self.running.pop(job.id, None)
            metrics.RUNNING.dec()

    async def _await_handler(self, job: Job, running: Running) -> Outcome | None:
        try:
            try:
                async with asyncio.timeout(job.timeout_seconds):
                    result = await asyncio.shield(running.task)
            except TimeoutError:
                running.reason = running.reason or "timeout"
                running.task.cancel()
                await asyncio.gather(running.task, return_exceptions=True)
                err = {
                    "type": "Timeout",
                    "message": f"the attempt exceeded its {job.timeout_seconds:g} s deadline",
                }
                return outcomes.after_error(job, err, timed_out=True)
            try:
                return outcomes.succeeded(_to_json(result))
            except (TypeError, ValueError) as exc:
                return outcomes.failed_permanently(outcomes.error_of(exc, "ResultNotSerializable"))
        except asyncio.CancelledError:
            if running.reason is None:
                # Our own task was cancelled (process stopping) without going through stop().
                running.reason = "shutdown"
                running.task.cancel()
            return self._on_stopped(job, running.reason)
        except Snooze as exc:
            return outcomes.snoozed(exc.seconds)
        except PermanentError as exc:
            return outcomes.failed_permanently(outcomes.error_of(exc))
        except Exception as exc:
            return outcomes.after_error(job, outcomes.error_of(exc))

    @staticmethod
    def _on_stopped(job: Job, reason: str) -> Outcome | None:
        if reason == "cancel":
            return outcomes.cancelled()
        if reason == "shutdown":
            return outcomes.released()
        return None  # "lost": another worker owns the job now; write nothing

    async def _record(
        self, job: Job, outcome: Outcome, extra: dict[str, Any], started: float
    ) -> None:
        """Write the outcome, retrying through a database outage; fenced writes are dropped."""
        delay = 0.2
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.record_patience_seconds
        while True:
            try:
                step = execution.step_of(job)
                change = await self.outcomes.submit((job.id, job.attempt, outcome, step))
                if change is None and outcome.unless_cancel_requested:
                    # Asked to cancel while it ran: the cancellation wins over a retry.
                    outcome = outcomes.cancelled()
                    change = await self.outcomes.submit((job.id, job.attempt, outcome, step))
                break
            except ServiceUnavailable:
                if loop.time() > give_up:
                    log.error("could not record outcome; the lease will recover it", extra=extra)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if change is not None:
            metrics.ATTEMPT_SECONDS.labels(job.kind, outcome.attempt_status.value).observe(
                loop.time() - started
            )
            if outcome.job_status is JobStatus.RETRYING:
                metrics.RETRIES.labels(job.kind).inc()
            elif outcome.job_status is JobStatus.FAILED:
                metrics.DEAD_LETTERED.labels(job.kind).inc()
        _trace_outcome(outcome)
        level = logging.INFO if change is not None else logging.WARNING
        log.log(
            level,
            "attempt ended" if change is not None else "outcome fenced (job moved on)",
            extra={**extra, "outcome": outcome.attempt_status.value},
        )


def _trace_outcome(outcome: Outcome) -> None:
    """The attempt's span says how it ended (an error status when it failed)."""
    span = tracing.current()
    span.set_attribute("conveyor.outcome", outcome.attempt_status.value)
    if outcome.error is not None:
        tracing.failed(span, f"{outcome.error.get('type')}: {outcome.error.get('message')}")
