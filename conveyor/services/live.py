"""Following a job live: replay from PostgreSQL, then Redis pub/sub, with no gap or duplicate.

The subscription registers with the hub *before* reading PostgreSQL, so anything committed
after the read arrives live; live events at or below the last seq sent are dropped, a jump in
seq (a lost pub/sub message), a hub resync (reconnect, overflow) or a long silence triggers a
re-read of PostgreSQL from the last seq sent.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

from conveyor import pubsub
from conveyor.domain import policy
from conveyor.domain.errors import NotFound, SlowConsumer
from conveyor.domain.models import Event, JobChange, Principal
from conveyor.domain.states import EventType
from conveyor.services import jobs as jobs_service
from conveyor.services.deps import Deps
from conveyor.services.jobs import JobFilterArgs

#: Silence after which a follower re-checks PostgreSQL (covers a publish that never happened).
IDLE_RECHECK_SECONDS = 15.0
#: Spreads the re-checks; a generator of its own, not the process-wide `random` (the
#: application's: see `domain.retry`).
_SPREAD = random.Random()
_PAGE = 500


async def follow_job(
    deps: Deps, hub: pubsub.Hub, principal: Principal, job_id: uuid.UUID, after: int | None
) -> AsyncIterator[Event]:
    sub = hub.subscribe(job_id)
    try:
        await hub.listening()  # before reading PostgreSQL: no gap before the first message
        job = await jobs_service.get(deps, principal, job_id)
        if job is None:
            raise NotFound(str(job_id))
        if after is None:
            yield Event.snapshot(job)
            if job.status.is_terminal:
                return
            last = job.last_seq
        else:
            last = max(after, 0)
            if job.status.is_terminal and last >= job.last_seq:
                return  # the client already holds the terminal event (a resume after it)
        caught_up, done = False, False
        while not done:
            if not caught_up:
                async for event in _stored(deps, job_id, last):
                    last = event.seq
                    yield event
                    if event.is_terminal:
                        return
                caught_up = True
            item = await sub.get(timeout=IDLE_RECHECK_SECONDS * _SPREAD.uniform(0.8, 1.2))
            if item is None or item is pubsub.RESYNC:
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


async def _visible(deps: Deps, change: JobChange, scope: policy.Scope) -> bool:
    if scope.owner_id is not None and change.owner_id != scope.owner_id:
        return False
    if scope.job_id is not None and change.job_id != scope.job_id:
        return False
    return await jobs_service.tenant_of(deps, change.owner_id) == scope.tenant_id


def _matches(change: JobChange, flt: JobFilterArgs) -> bool:
    if flt.statuses and change.event.status not in flt.statuses:
        return False
    if flt.kinds and change.kind not in flt.kinds:
        return False
    return not (flt.queue is not None and change.queue != flt.queue)


async def follow_updates(
    deps: Deps,
    hub: pubsub.Hub,
    principal: Principal,
    flt: JobFilterArgs,
    *,
    window: float = 0.1,
    on_overflow: Callable[[], None] | None = None,
    internal: bool = False,
) -> AsyncIterator[JobChange]:
    """Every change of every visible job matching `flt`, for dashboards.

    Progress is coalesced per job (latest wins within `window` seconds); any other change is
    sent at once, after which that job's older pending progress is dropped. After a pub/sub
    reconnect, jobs changed meanwhile are sent again as SNAPSHOT updates from PostgreSQL. A
    subscriber that lets its buffer overflow is ended with a SLOW_CONSUMER error, and
    `on_overflow` is called at once (the reader may be stuck sending to its client).
    """
    scope = policy.read_scope(principal)
    sub = hub.subscribe(None, on_overflow, internal=internal)
    pending: dict[uuid.UUID, JobChange] = {}
    flush_at: float | None = None
    loop = asyncio.get_running_loop()
    try:
        await hub.listening()  # changes from here on are delivered
        last_seen = datetime.now(UTC)
        while True:
            timeout = None if flush_at is None else max(0.0, flush_at - loop.time())
            item = await sub.get(timeout=timeout)
            if item is None:  # the coalescing window closed
                for change in pending.values():
                    yield change
                pending.clear()
                flush_at = None
                continue
            if item is pubsub.RESYNC:
                if sub.overflowed:
                    raise SlowConsumer("this subscription fell too far behind and was closed")
                async for change in _changed_since(deps, principal, flt, last_seen):
                    yield change
                continue
            assert isinstance(item, JobChange)
            last_seen = item.event.at
            if not _matches(item, flt) or not await _visible(deps, item, scope):
                continue
            if item.event.type is EventType.PROGRESS:
                pending[item.job_id] = item
                if flush_at is None:
                    flush_at = loop.time() + window
                continue
            pending.pop(item.job_id, None)
            yield item
    finally:
        sub.close()


async def _changed_since(
    deps: Deps, principal: Principal, flt: JobFilterArgs, since: datetime
) -> AsyncIterator[JobChange]:
    found, _, _ = await jobs_service.page(
        deps,
        principal,
        flt,
        first=jobs_service.MAX_PAGE,
        updated_since=since - timedelta(seconds=1),
    )
    for job in found:
        yield JobChange.snapshot(job)
