"""Following a job live: replay from PostgreSQL, then Redis pub/sub, with no gap or duplicate.

The subscription registers with the hub *before* reading PostgreSQL, so anything committed
after the read arrives live; live events at or below the last seq sent are dropped, a jump in
seq (a lost pub/sub message), a hub resync (reconnect, overflow) or a long silence triggers a
re-read of PostgreSQL from the last seq sent.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from app import events
from app.domain.errors import NotFound
from app.domain.models import Event, Job, JobChange, Principal
from app.domain.states import EventType
from app.services import jobs as jobs_service
from app.services.jobs import Deps

#: Silence after which a follower re-checks PostgreSQL (covers a publish that never happened).
IDLE_RECHECK_SECONDS = 15.0
_PAGE = 500


def snapshot(job: Job) -> Event:
    """A synthetic event carrying the job's current state and its latest stored seq."""
    return Event(
        job_id=job.id,
        seq=job.last_seq,
        type=EventType.SNAPSHOT,
        status=job.status,
        progress=job.progress,
        message=job.progress_message,
        data=None,
        at=datetime.now(UTC),
    )


async def follow_job(
    deps: Deps, hub: events.Hub, principal: Principal, job_id: uuid.UUID, after: int | None
) -> AsyncIterator[Event]:
    sub = hub.subscribe(job_id)
    try:
        job = await jobs_service.get(deps, principal, job_id)
        if job is None:
            raise NotFound(str(job_id))
        if after is None:
            yield snapshot(job)
            if job.status.is_terminal:
                return
            last = job.last_seq
        else:
            last = max(after, 0)
        caught_up, done = False, False
        while not done:
            if not caught_up:
                async for event in _stored(deps, job_id, last):
                    last = event.seq
                    yield event
                    if event.is_terminal:
                        return
                caught_up = True
            item = await sub.get(timeout=IDLE_RECHECK_SECONDS * random.uniform(0.8, 1.2))
            if item is None or item is events.RESYNC:
                caught_up = False
                continue
            assert isinstance(item, JobChange)
            if item.event.seq <= last:
                continue
            if item.event.seq > last + 1:
                caught_up = False  # a message went missing: PostgreSQL has it
                continue
            last = item.event.seq
            yield item.event
            done = item.event.is_terminal
    finally:
        sub.close()


async def _stored(deps: Deps, job_id: uuid.UUID, after: int) -> AsyncIterator[Event]:
    while True:
        batch = await jobs_service.events_after(deps, job_id, after, _PAGE)
        for event in batch:
            yield event
        if len(batch) < _PAGE:
            return
        after = batch[-1].seq
