"""The outbox relay: sends the jobs producers committed in their own transactions (ADR-0021).

A producer never calls Redis. Its transaction `pg_notify`s the new jobs' ids, which PostgreSQL
delivers to every listening session after the commit (and never after a rollback). Each API
and worker process runs one relay: on a notification it locks those jobs if they are still
QUEUED and unsent (`FOR UPDATE SKIP LOCKED`: what one relay holds, the others skip, and once
marked they no longer match), sends them through the Dispatcher, marks them sent under the
Dispatcher's epoch rule (ADR-0013) and commits; then it publishes their SUBMITTED events for
live subscribers. So a committed job is sent once, within milliseconds, however many processes
listen. The maintenance sweep (`execution.sweep`) stays the safety net: a notification is
lost when no relay listens at that moment (every process down, or reconnecting). A second
after every (re)connect, the relay sends the unsent QUEUED jobs committed before it (waiting
that second, because younger unsent jobs may be an API's own sends whose mark is on its way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import asyncpg

from conveyor import tasks
from conveyor.db import outbox as outbox_repo
from conveyor.db.engine import is_outage
from conveyor.services.dispatch import Dispatcher

log = logging.getLogger(__name__)

#: Jobs one relay transaction locks, sends and marks.
BATCH = 500
#: How long the listening connection may be silent before it is checked (a half-open TCP
#: connection delivers nothing and says nothing).
CHECK_AFTER_SECONDS = 15.0
#: The catch-up after a (re)connect runs this long after it, for jobs unsent this long: an API
#: marks what it sent within ~50 ms (`Dispatcher`), and resending those makes duplicates.
CATCH_UP_AGE_SECONDS = 1.0
RECONNECT_FIRST_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 5.0


class Relay:
    """One process's listener and relay loop: `start()`, then `stop()`."""

    def __init__(self, dispatcher: Dispatcher, database_url: str) -> None:
        self._dispatcher = dispatcher
        self._database_url = database_url
        self._pending: set[uuid.UUID] = set()
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            await tasks.finish(self._task)

    def _terminated(self, _conn: object) -> None:
        self._lost.set()
        self._wake.set()

    def _received(self, job_ids: list[uuid.UUID]) -> None:
        self._pending.update(job_ids)
        self._wake.set()

    async def _run(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await outbox_repo.listen(self._database_url, self._received)
                conn.add_termination_listener(self._terminated)
                delay = RECONNECT_FIRST_SECONDS
                await self._serve(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                level = logging.WARNING if is_outage(exc) else logging.ERROR
                log.log(level, "outbox relay: reconnecting", extra={"error": repr(exc)})
            finally:
                self._lost.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _serve(self, conn: asyncpg.Connection) -> None:
        loop = asyncio.get_running_loop()
        catch_up_at: float | None = loop.time() + CATCH_UP_AGE_SECONDS
        while True:
            wait = CHECK_AFTER_SECONDS if catch_up_at is None else catch_up_at - loop.time()
            try:
                await asyncio.wait_for(self._wake.wait(), max(wait, 0.0))
            except TimeoutError:
                if catch_up_at is None:
                    await conn.execute("SELECT 1", timeout=5)  # raises when the connection died
                else:
                    # Notifications sent before this connection listened are gone: send what
                    # was committed before it, now old enough not to be an API's own send
                    # whose mark is on its way.
                    catch_up_at = None
                    await self._send(None)
                continue
            if self._lost.is_set():
                raise ConnectionError("the listening connection was closed")
            self._wake.clear()
            job_ids, self._pending = list(self._pending), set()
            await self._send(job_ids)

    async def _send(self, job_ids: list[uuid.UUID] | None) -> None:
        """Relay `job_ids` (None: every unsent job), batch after batch. A failure is logged:
        the jobs stay QUEUED and unsent for the sweep."""
        try:
            if job_ids is None:
                relay = self._dispatcher.relay
                while await relay(None, limit=BATCH, age=CATCH_UP_AGE_SECONDS) == BATCH:
                    pass
                return
            for i in range(0, len(job_ids), BATCH):
                await self._dispatcher.relay(job_ids[i : i + BATCH], limit=BATCH)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "outbox relay failed; the sweep will send these jobs", extra={"error": repr(exc)}
            )
