"""After a commit, tell the world: publish the changes to live subscribers, send the QUEUED
jobs to their streams, and signal the workers of jobs asked to cancel.

Every use case that changes jobs commits first and then calls `announce`. Redis is only a
doorbell here: a publish or a send that is lost is made good from PostgreSQL (subscribers
re-read by `seq`, the maintenance sweep resends unmarked QUEUED jobs; ADR-0013, ADR-0015).
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor import pubsub
from conveyor.domain.models import JobChange
from conveyor.domain.states import EventType, JobStatus
from conveyor.services.deps import Deps


async def announce(deps: Deps, changes: Sequence[JobChange]) -> None:
    if not changes:
        return
    # One round trip: the messages of the QUEUED jobs, then every change to live subscribers.
    await deps.dispatcher.send(
        [
            (c.job_id, c.queue, int(c.priority))
            for c in changes
            if c.event.status is JobStatus.QUEUED
        ],
        broadcast=changes,
    )
    cancels = [c for c in changes if c.event.type is EventType.CANCEL_REQUESTED]
    if cancels:
        await pubsub.send_commands(deps.redis, deps.prefix, [f"cancel {c.job_id}" for c in cancels])
