"""Batched progress and log writes for every job running in this worker.

Handlers may report progress as often as they like; the writer keeps, per job, the log events
in order and only the latest progress since the last write, and writes all jobs' events in
one statement every `interval` seconds (ADR-0012).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from conveyor import tasks
from conveyor.domain.errors import ServiceUnavailable
from conveyor.domain.models import PendingEvent
from conveyor.domain.states import EventType
from conveyor.services import execution
from conveyor.services.deps import Deps

log = logging.getLogger(__name__)


class ProgressWriter:
    def __init__(self, deps: Deps, *, interval: float) -> None:
        self._deps = deps
        self._interval = interval
        self._pending: dict[uuid.UUID, list[PendingEvent]] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def add(self, event: PendingEvent) -> None:
        items = self._pending.setdefault(event.job_id, [])
        if event.type is EventType.PROGRESS and items and items[-1].type is EventType.PROGRESS:
            items[-1] = event  # coalesce: the latest progress wins
        else:
            items.append(event)
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="event-writer")

    async def stop(self) -> None:
        if self._task:
            await tasks.finish(self._task)
        await self.flush()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:
                log.warning("progress write failed; will retry", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval)

    async def flush(self, only: uuid.UUID | None = None) -> None:
        async with self._lock:
            if only is None:
                batch, self._pending = self._pending, {}
            else:
                items = self._pending.pop(only, None)
                batch = {only: items} if items else {}
            if not batch:
                return
            try:
                await execution.append(self._deps, [e for items in batch.values() for e in items])
            except ServiceUnavailable:
                for job_id, items in batch.items():  # put back in front, keeping order
                    self._pending[job_id] = items + self._pending.get(job_id, [])
                raise

    async def flush_job(self, job_id: uuid.UUID) -> None:
        """Write what this job reported before its outcome is recorded."""
        with contextlib.suppress(ServiceUnavailable):
            await self.flush(only=job_id)
        self._pending.pop(job_id, None)
