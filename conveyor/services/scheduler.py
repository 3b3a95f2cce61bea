"""The scheduler loop: whichever process holds the `scheduler` lease fires due schedules.

Every API and worker process runs it (SCHEDULER_ENABLED); one holds the lease (a row in
`leases`, renewed every pass, expiring after SCHEDULER_LEASE_SECONDS) and the others try to
take it over every pass, so a holder that dies is replaced within a lease. The lease only
saves work: the primary key of `schedule_fires` is what guarantees one job per schedule and
fire time, whoever fires (ADR-0022). A holder that could not renew in time stops firing on
its own before its lease can have passed to another.
"""

from __future__ import annotations

import asyncio
import logging
import time

from conveyor import metrics
from conveyor.db import leases
from conveyor.db.engine import transaction
from conveyor.domain.errors import ServiceUnavailable
from conveyor.services import schedules
from conveyor.services.deps import Deps

log = logging.getLogger(__name__)

LEASE = "scheduler"


class Scheduler:
    def __init__(self, deps: Deps, holder: str) -> None:
        self.deps = deps
        self.holder = holder
        #: Monotonic time until which this process may fire (its lease, less a margin).
        self._valid_until = 0.0
        self.term: int | None = None

    @property
    def leader(self) -> bool:
        return time.monotonic() < self._valid_until

    async def run(self) -> None:
        """Until cancelled: take or renew the lease, and fire while holding it."""
        s = self.deps.settings
        try:
            await schedules.sync_code(self.deps)
        except Exception as exc:  # the next start syncs again; firing goes on meanwhile
            log.warning("could not sync the schedules declared in code", extra={"error": repr(exc)})
        try:
            while True:
                try:
                    await self.tick()
                except asyncio.CancelledError:
                    raise
                except ServiceUnavailable:
                    log.warning("scheduler pass failed: database unavailable")
                except Exception:
                    log.error("scheduler pass failed; will retry", exc_info=True)
                await asyncio.sleep(s.scheduler_interval_seconds)
        finally:
            metrics.SCHEDULER_LEADER.set(0)
            if self.leader:
                try:
                    async with transaction(self.deps.engine) as conn:
                        await leases.release_lease(conn, name=LEASE, holder=self.holder)
                except Exception as exc:
                    log.warning("could not release the scheduler lease", extra={"error": repr(exc)})

    async def tick(self) -> int:
        """One pass; returns the jobs made."""
        ttl = self.deps.settings.scheduler_lease_seconds
        asked = time.monotonic()
        async with transaction(self.deps.engine) as conn:
            got = await leases.acquire_lease(conn, name=LEASE, holder=self.holder, ttl_seconds=ttl)
        if got is None:
            if self.term is not None:
                log.warning("scheduler lease lost to another process", extra={"term": self.term})
                self.term = None
            self._valid_until = 0.0
            metrics.SCHEDULER_LEADER.set(0)
            return 0
        term, _ = got
        if term != self.term:
            log.info("scheduler lease taken", extra={"holder": self.holder, "term": term})
            self.term = term
        # Counted from before the renewal was asked for, with a margin: never past the lease.
        self._valid_until = asked + ttl * 0.8
        metrics.SCHEDULER_LEADER.set(1)
        made = 0
        for _ in range(10):  # a backlog is worked off pass after pass, while the lease holds
            n = await schedules.fire_due(self.deps)
            made += n
            if n == 0 or not self.leader:
                break
        return made
