"""Doorbells for workflow runs: one always-on channel per process carries the ids of runs
that changed; each `workflowEvents` follower waits on its run's bell, then reads the run's
events from PostgreSQL by `seq`. A lost ring costs latency, never an event (ADR-0023)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator

from conveyor import tasks
from conveyor.pubsub.buffers import RESYNC, Inbox

log = logging.getLogger(__name__)


class Bell:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ring(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, timeout: float) -> bool:
        """True when rung, False after `timeout` seconds of silence."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


class RunBells:
    """The process's bells, by run. The channel is subscribed on first use (an API process
    whose clients never follow a run pays nothing)."""

    def __init__(self, subscribe: Callable[[], Inbox]) -> None:
        self._subscribe = subscribe
        self._bells: dict[uuid.UUID, set[Bell]] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def watch(self, run_id: uuid.UUID) -> Iterator[Bell]:
        if self._task is None:
            inbox = self._subscribe()
            self._task = asyncio.create_task(self._read(inbox), name="run-bells")
        bell = Bell()
        self._bells.setdefault(run_id, set()).add(bell)
        try:
            yield bell
        finally:
            found = self._bells.get(run_id)
            if found is not None:
                found.discard(bell)
                if not found:
                    del self._bells[run_id]

    async def _read(self, inbox: Inbox) -> None:
        while True:
            item = await inbox.get()
            if item is RESYNC:  # rings may have been lost: everyone looks
                for bells in self._bells.values():
                    for bell in bells:
                        bell.ring()
                continue
            if not isinstance(item, bytes):
                continue
            try:
                run_id = uuid.UUID(item.decode())
            except ValueError:
                log.warning("undecodable run bell", extra={"message": item[:100].decode("latin-1")})
                continue
            for bell in self._bells.get(run_id, ()):
                bell.ring()

    async def stop(self) -> None:
        if self._task is not None:
            await tasks.finish(self._task)
