"""The worker process: a taskiq Receiver on `ConveyorBroker`, plus the loops that keep jobs
moving (lease heartbeat, cancellation listener, maintenance sweeps)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid

from prometheus_client import start_http_server
from taskiq import Context, TaskiqDepends
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from conveyor import gc_freeze, metrics, pubsub, tasks, tracing
from conveyor.domain.errors import ServiceUnavailable
from conveyor.kinds.registry import Registry
from conveyor.services import engine, execution, limits
from conveyor.services.deps import open_deps
from conveyor.services.dispatch import TASK_NAME
from conveyor.services.scheduler import Scheduler
from conveyor.settings import Settings
from conveyor.worker.broker import ConveyorBroker
from conveyor.worker.pool import process_pool
from conveyor.worker.progress import ProgressWriter
from conveyor.worker.runner import JobRunner

log = logging.getLogger(__name__)


async def run_job(job_id: str, context: Context = TaskiqDepends()) -> None:  # noqa: B008
    """The one taskiq task: run the Conveyor job whose id the message carries."""
    runner: JobRunner = context.state.runner
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        log.warning("message with an invalid job id dropped", extra={"job_id": job_id})
        await context.ack()
        return
    await runner.run(parsed, context)


class Worker:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        queues: list[str],
        concurrency: int,
        handle_signals: bool = True,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.queues = queues
        self.concurrency = concurrency
        self.host = socket.gethostname()
        self.worker_id = f"{self.host}-{os.getpid()}"
        #: Set it to stop (what SIGTERM and SIGINT do): running jobs get the grace period.
        self.stopping = asyncio.Event()
        #: Set once the worker receives jobs.
        self.started = asyncio.Event()
        #: Install SIGTERM/SIGINT handlers (only the main thread can; an embedding host that
        #: runs the worker elsewhere sets `stopping` itself).
        self._handle_signals = handle_signals
        self._loops: list[asyncio.Task[None]] = []
        #: Redis data losses the dispatcher has reported and this worker has acted on.
        self._losses_seen = 0
        #: Redis lost its data, and no sweep of this worker has resent every QUEUED job yet.
        self._resend_pending = False

    async def run(self) -> None:
        s = self.settings
        pool_size = max(4, min(self.concurrency, 20))
        tracing.configure(s, "conveyor-worker")
        async with open_deps(s, self.registry, pool_size=pool_size) as deps:
            self.deps = deps
            await self._run()

    async def _run(self) -> None:
        s = self.settings
        self.writer = ProgressWriter(self.deps, interval=s.progress_interval_seconds)
        processes = s.worker_processes or os.cpu_count() or 1
        self.pool = process_pool(processes)
        self.runner = JobRunner(self.deps, self.worker_id, self.writer, self.pool)
        self.broker = ConveyorBroker(
            s.redis_url,
            prefix=s.redis_prefix,
            queues=self.queues,
            consumer_name=self.worker_id,
            read_count=max(1, min(8, self.concurrency)),
            reclaim_idle_seconds=s.reclaim_idle_seconds,
            free_slots=lambda: self.concurrency - self.runner.busy,
        )
        self.broker.register_task(run_job, task_name=TASK_NAME)
        self.broker.state.runner = self.runner
        self.broker.is_worker_process = True
        try:
            await self._start()
            gc_freeze.settle()
            await self._receive()
        finally:
            await self._stop()

    async def _start(self) -> None:
        if self.settings.metrics_port:
            start_http_server(
                self.settings.metrics_port, self.settings.metrics_host, registry=metrics.REGISTRY
            )
        await self.broker.startup()
        await execution.register_worker(
            self.deps,
            worker_id=self.worker_id,
            host=self.host,
            pid=os.getpid(),
            queues=self.queues,
            concurrency=self.concurrency,
        )
        await self.writer.start()
        try:
            await self._check_redis_epoch()
        except Exception as exc:  # the maintenance loop checks again
            log.warning("could not check the Redis epoch", extra={"error": repr(exc)})
        for loop, name in (
            (self._heartbeat_loop, "heartbeat"),
            (self._control_loop, "control"),
            (self._maintenance_loop, "maintenance"),
            (self._prune_loop, "prune"),
            (self._parked_loop, "parked"),
        ):
            self._loops.append(asyncio.create_task(loop(), name=name))
        await limits.sync_code(self.deps)
        if self.settings.scheduler_enabled:
            self.scheduler = Scheduler(self.deps, f"{self.worker_id}-worker-{uuid.uuid4().hex[:6]}")
            self._loops.append(asyncio.create_task(self.scheduler.run(), name="scheduler"))
        log.info(
            "worker started",
            extra={
                "worker_id": self.worker_id,
                "queues": self.queues,
                "kinds": self.registry.names(),
                "concurrency": self.concurrency,
            },
        )
        self._warn_unserved()

    def _warn_unserved(self) -> None:
        """Kinds this worker knows but whose queue it does not read: unless another worker
        serves that queue, their jobs wait, QUEUED (ADR-0019)."""
        unserved = [k for k in self.registry.all() if k.queue not in self.queues]
        if unserved:
            queues = sorted({k.queue for k in unserved})
            log.warning(
                "this worker does not serve queue%s %s (--queues / WORKER_QUEUES), where "
                "kinds it knows wait: %s; their jobs run only on a worker that serves %s",
                "s" if len(queues) > 1 else "",
                ", ".join(queues),
                ", ".join(f"{k.name} ({k.queue})" for k in unserved),
                "them" if len(queues) > 1 else "it",
                extra={"queues": queues, "kinds": [k.name for k in unserved]},
            )

    async def _receive(self) -> None:
        s = self.settings
        receiver = Receiver(
            self.broker,
            max_async_tasks=self.concurrency,
            max_prefetch=0,
            run_startup=False,
            ack_type=AcknowledgeType.MANUAL,
            wait_tasks_timeout=s.shutdown_grace_seconds,
        )
        if self._handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stopping.set)
        self.started.set()
        await receiver.listen(self.stopping)
        # The grace period is over: release what still runs, so another worker takes it now.
        running = list(self.runner.running.values())
        if running:
            log.warning("releasing jobs still running at shutdown", extra={"jobs": len(running)})
            for r in running:
                r.stop("shutdown")
            async with asyncio.timeout(15):
                while self.runner.running:  # noqa: ASYNC110 - a bounded poll at shutdown
                    await asyncio.sleep(0.05)

    async def _stop(self) -> None:
        await tasks.finish_all(self._loops)
        with contextlib.suppress(Exception):
            await self.writer.stop()
        with contextlib.suppress(Exception):
            await execution.stop_worker(self.deps, worker_id=self.worker_id)
        with contextlib.suppress(Exception):
            await self.broker.shutdown()
        self.pool.shutdown(wait=False, cancel_futures=True)
        log.info("worker stopped", extra={"worker_id": self.worker_id})

    async def _heartbeat_loop(self) -> None:
        """Renew leases; stop handlers whose lease is gone or whose job was asked to cancel.

        Nothing may end this loop but cancellation: without it every lease expires and the
        jobs this worker is running are run again elsewhere while they still run here."""
        interval = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._heartbeat()
            except asyncio.CancelledError:
                raise
            except ServiceUnavailable:
                log.warning("heartbeat failed: database unavailable")
            except Exception:
                log.error("heartbeat failed; will retry", exc_info=True)

    async def _heartbeat(self) -> None:
        # Judge only the attempts this heartbeat asked about: one that starts while the
        # query is in flight is not in its answer, and is not lost.
        snapshot = list(self.runner.running.values())
        held = await execution.renew_leases(
            self.deps, worker_id=self.worker_id, held=[(r.job_id, r.attempt) for r in snapshot]
        )
        for running in snapshot:
            key = (running.job_id, running.attempt)
            if key not in held:
                if not running.finishing:
                    log.warning(
                        "lease lost; stopping the attempt",
                        extra={"job_id": str(running.job_id), "attempt": running.attempt},
                    )
                    running.stop("lost")
            elif held[key]:
                running.stop("cancel")

    async def _control_loop(self) -> None:
        """Cancel requests arrive over pub/sub in milliseconds; the heartbeat is the fallback."""
        while True:
            control = self.deps.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await control.subscribe(pubsub.control_channel(self.deps.prefix))
                while True:
                    message = await control.get_message(timeout=1.0)
                    if not message:
                        continue
                    data = message["data"]
                    text = data.decode() if isinstance(data, bytes) else str(data)
                    command, _, arg = text.partition(" ")
                    if command == "cancel":
                        with contextlib.suppress(ValueError):
                            running = self.runner.running.get(uuid.UUID(arg))
                            if running is not None:
                                running.stop("cancel")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("control channel lost; reconnecting", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await control.aclose()  # type: ignore[no-untyped-call]

    async def _check_redis_epoch(self) -> None:
        """Notice that Redis lost its data (restart without persistence, FLUSHALL, a new
        instance) and make sure every QUEUED job is sent again (ADR-0013).

        The dispatcher records a loss in PostgreSQL (every QUEUED job marked not sent) before
        it creates a new epoch, whether this worker or another process noticed first. Every
        worker's sweep resends unmarked jobs; this one also recreates its consumer groups and
        resends them all at its next sweep instead of waiting for their age.
        """
        await self.deps.dispatcher.check_epoch()
        if self.deps.dispatcher.losses != self._losses_seen:
            self._losses_seen = self.deps.dispatcher.losses
            await self.broker.ensure_groups()
            self._resend_pending = True

    async def _maintenance_loop(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while True:
            await asyncio.sleep(s.maintenance_interval_seconds)
            try:
                await execution.promote_due(self.deps)
                await execution.recover_expired(self.deps)
                await self._check_redis_epoch()
                now = loop.time()
                if self._resend_pending or now >= next_sweep:
                    next_sweep = now + min(2.0, s.redispatch_after_seconds / 2)
                    resend_all = self._resend_pending
                    ran = await execution.sweep(
                        self.deps,
                        redispatch_after=s.redispatch_after_seconds,
                        resend_all=resend_all,
                    )
                    # Not run (another worker holds the sweep lock): that worker's sweeps send
                    # the unmarked jobs too, but this one keeps trying to resend them all now.
                    if ran and resend_all:
                        self._resend_pending = False
                    # Maps whose expansion a dead process left half done (ADR-0023).
                    await engine.expand_interrupted(self.deps)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop must survive outages
                log.warning("maintenance failed; will retry", extra={"error": repr(exc)})

    async def _parked_loop(self) -> None:
        """Wake parked jobs whose wake-up was missed, or whose throttle slot came (ADR-0022)."""
        while True:
            await asyncio.sleep(self.settings.parked_sweep_interval_seconds)
            try:
                await execution.sweep_parked(self.deps)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("parked-jobs sweep failed; will retry", extra={"error": repr(exc)})

    async def _prune_loop(self) -> None:
        """Retention: a pass every PRUNE_INTERVAL_SECONDS, of as many short batches as fit in
        its time budget; the next pass comes at once (after a breath) while a backlog remains."""
        s = self.settings
        if s.retention_days <= 0:
            return
        while True:
            caught_up = True
            try:
                caught_up = await execution.prune(
                    self.deps,
                    retention_days=s.retention_days,
                    batch=s.prune_batch_size,
                    budget_seconds=PRUNE_BUDGET_SECONDS,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pruning failed; will retry", extra={"error": repr(exc)})
            await asyncio.sleep(s.prune_interval_seconds if caught_up else 1.0)


#: Longest pruning pass; batches are separate short transactions in any case.
PRUNE_BUDGET_SECONDS = 5.0
