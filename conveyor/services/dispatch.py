"""Handing QUEUED jobs to Redis Streams, and remembering in PostgreSQL that we did.

A message carries only the job id (ADR-0011): the job itself is in PostgreSQL. Sending is
at-least-once: a job is sent after its commit, marked `dispatched_at` in a batched UPDATE, and
sent again by the maintenance loop if the mark never lands. Duplicates are harmless because the
worker's claim is a guarded UPDATE.

Redis may lose its data (ADR-0013). `{prefix}:epoch` goes with it. Whoever finds it missing
(the API when it starts or sends, a worker when it starts or sweeps) unmarks every QUEUED job
in PostgreSQL and only then creates a new epoch, so an epoch exists only once the loss before
it is recorded, and a process that finds one has nothing to resend. A mark is committed only
while the epoch is still the one its messages were sent under, so a message lost with the data
is never left marked as sent.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import orjson
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor import pubsub, tasks, tracing
from conveyor.db import jobs as jobs_repo
from conveyor.db import maintenance as maintenance_repo
from conveyor.db import outbox as outbox_repo
from conveyor.db.engine import statements
from conveyor.domain.models import JobChange
from conveyor.domain.states import Priority

log = logging.getLogger(__name__)

#: The one taskiq task every message names; it runs whatever kind the job row says.
TASK_NAME = "conveyor.run_job"


def stream_key(prefix: str, queue: str, priority: int) -> str:
    """One stream per (queue, priority): `{prefix}:q:{queue}:{high|normal|low}` (ADR-0011)."""
    return f"{prefix}:q:{queue}:{Priority(priority).name.lower()}"


def epoch_key(prefix: str) -> str:
    """A random value that lives as long as Redis keeps its data."""
    return f"{prefix}:epoch"


def message(job_id: uuid.UUID) -> bytes:
    """A taskiq message (the format taskiq's JSON serializer reads) for one job."""
    return orjson.dumps(
        {
            "task_id": uuid.uuid4().hex,
            "task_name": TASK_NAME,
            "labels": {},
            "labels_types": {},
            "args": [str(job_id)],
            "kwargs": {},
        }
    )


Target = tuple[uuid.UUID, str, int]  # job id, queue, priority

#: Told to a waiting `xadd` call: lead the next round trip.
_LEAD = object()


@dataclass(eq=False, slots=True)
class _Outgoing:
    """One `xadd` call's messages and changes, and what its caller waits for."""

    batch: Sequence[Target]
    broadcast: Sequence[JobChange]
    future: asyncio.Future[object]


class Dispatcher:
    """Sends job messages (pipelined) and marks them dispatched in batches."""

    def __init__(
        self, redis: Redis, engine: AsyncEngine, prefix: str, *, mark_interval: float = 0.05
    ) -> None:
        self._redis = redis
        self._engine = engine
        self._prefix = prefix
        self._mark_interval = mark_interval
        #: Jobs sent and not yet marked, by the epoch they were sent under.
        self._to_mark: dict[bytes | None, list[uuid.UUID]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: The epoch this process last adopted (None: not looked yet).
        self._epoch: bytes | None = None
        self._epoch_lock = asyncio.Lock()
        #: How many times this process found Redis's data lost (or replaced) since it started.
        self.losses = 0
        #: `xadd` calls waiting for the round trip in flight (`_sending`) to end.
        self._outgoing: list[_Outgoing] = []
        self._sending = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._mark_loop(), name="dispatch-marker")
        try:
            await self.check_epoch()
        except Exception as exc:  # Redis or PostgreSQL down: the first send looks again
            log.warning("could not check the Redis epoch", extra={"error": repr(exc)})

    async def check_epoch(self) -> bool:
        """Adopt the epoch of the data Redis holds; True when Redis lost its data since this
        process last looked (or before its first look, when no epoch exists).

        A missing epoch means the data is gone, or Redis was never used: the loss is recorded in
        PostgreSQL first (every QUEUED job marked not sent, one idempotent statement, for any
        worker's sweep to resend) and only then is a new epoch created. An epoch that changed
        was created by a process that recorded the loss already."""
        async with self._epoch_lock:
            key = epoch_key(self._prefix)
            current = _epoch_value(await self._redis.get(key))
            lost = current is None or (self._epoch is not None and current != self._epoch)
            if current is None:
                async with statements(self._engine) as conn:
                    forgotten = await maintenance_repo.forget_dispatches(conn)
                # Nothing to resend (a first start, or a loss while nothing waited): news,
                # not a problem.
                log.log(
                    logging.WARNING if forgotten else logging.INFO,
                    "Redis holds no epoch (it lost its data, or this is its first use): every "
                    "QUEUED job will be sent again",
                    extra={"jobs": forgotten},
                )
                await self._redis.set(key, uuid.uuid4().hex, nx=True)
                current = _epoch_value(await self._redis.get(key))
            self._epoch = current
            if lost:
                self.losses += 1
            return lost

    async def stop(self) -> None:
        if self._task:
            await tasks.finish(self._task)
        await self._flush_marks()

    async def send(self, targets: Iterable[Target], *, broadcast: Sequence[JobChange] = ()) -> bool:
        """XADD one message per job. False if Redis failed: the maintenance loop resends.
        `broadcast`: changes to publish to live subscribers in the same round trip (best
        effort, as `pubsub.publish`)."""
        batch = list(targets)
        if not batch:
            await pubsub.publish(self._redis, self._prefix, broadcast)
            return True
        attributes = {"conveyor.jobs": len(batch)}
        with tracing.span("conveyor.dispatch", attributes, kind="producer", child_only=True):
            return await self._send(batch, broadcast)

    async def _send(self, batch: list[Target], broadcast: Sequence[JobChange] = ()) -> bool:
        try:
            sent_under = await self.xadd(batch, broadcast)
        except Exception as exc:
            log.warning(
                "dispatch failed; jobs stay QUEUED and will be resent",
                extra={"jobs": len(batch), "error": repr(exc)},
            )
            return False
        self._to_mark.setdefault(sent_under, []).extend(job_id for job_id, _, _ in batch)
        self._wake.set()
        await self.adopt(sent_under)
        return True

    async def xadd(
        self, batch: Sequence[Target], broadcast: Sequence[JobChange] = ()
    ) -> bytes | None:
        """XADD one message per job, in one MULTI/EXEC with a read of the epoch, which is
        therefore the one of the data the messages went into: what a mark must compare with.
        Raises when Redis fails. Callers mark the jobs themselves (`send`, the outbox relay).
        `broadcast`: changes published in the same round trip, after the messages.

        Calls made while a round trip is in flight wait for it and then share the next one
        (each gets the epoch read in the MULTI/EXEC that carried its messages): under load,
        concurrent submits cost one round trip between them, and a call alone goes at once."""
        entry = _Outgoing(batch, broadcast, asyncio.get_running_loop().create_future())
        self._outgoing.append(entry)
        if self._sending:
            try:
                outcome = await entry.future
            except asyncio.CancelledError:
                if entry.future.done() and not entry.future.cancelled():
                    # Made to lead, then cancelled before it could: hand the lead on.
                    self._outgoing = [e for e in self._outgoing if e is not entry]
                    self._sending = False
                    self._hand_over()
                raise
            if outcome is not _LEAD:
                return cast(bytes | None, outcome)
        # Lead: one round trip for every call waiting, this one included.
        self._sending = True
        group = [e for e in self._outgoing if e is entry or not e.future.done()]
        self._outgoing = []
        try:
            epoch = await self._round_trip(group)
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else ConnectionError("send cancelled")
            for e in group:
                if e is not entry and not e.future.done():
                    e.future.set_exception(failure)
            raise
        finally:
            self._sending = False
            self._hand_over()
        for e in group:
            if e is not entry and not e.future.done():
                e.future.set_result(epoch)
        return epoch

    def _hand_over(self) -> None:
        """The next waiting call leads the next round trip."""
        while self._outgoing:
            first = self._outgoing[0]
            if first.future.done():  # its caller was cancelled: its messages are not sent
                self._outgoing.pop(0)
                continue
            self._sending = True
            first.future.set_result(_LEAD)
            return

    async def _round_trip(self, group: Sequence[_Outgoing]) -> bytes | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for outgoing in group:
                for job_id, queue, priority in outgoing.batch:
                    key = stream_key(self._prefix, queue, priority)
                    pipe.xadd(key, {b"data": message(job_id)})
                for change in outgoing.broadcast:
                    pipe.publish(pubsub.channel(self._prefix), pubsub.encode(change))
            pipe.get(epoch_key(self._prefix))
            replies = await pipe.execute()
        return _epoch_value(replies[-1])

    async def adopt(self, sent_under: bytes | None) -> None:
        """After a send: an epoch other than the adopted one means Redis lost its data (or
        this is the first send); look again, which records a loss (see `check_epoch`)."""
        if sent_under != self._epoch:
            try:
                await self.check_epoch()
            except Exception as exc:
                log.warning("could not check the Redis epoch", extra={"error": repr(exc)})

    async def relay(
        self, job_ids: Sequence[uuid.UUID] | None, *, limit: int, age: float = 0.0
    ) -> int:
        """Send, once, the jobs among `job_ids` (None: any unchanged for `age` seconds) that
        are QUEUED and unsent: the
        outbox relay's step for jobs producers committed (ADR-0021). The rows stay locked
        from the read to the mark's commit, so a relay in another process skips them, then
        finds them marked. Returns how many were sent and marked; raises on a Redis or
        PostgreSQL failure (nothing is marked: the sweep sends them)."""
        async with self._engine.connect() as conn, conn.begin() as tx:
            locked = await outbox_repo.lock_unsent(conn, job_ids=job_ids, limit=limit, age=age)
            if not locked:
                return 0
            sent_under = await self.xadd([(c.job_id, c.queue, int(c.priority)) for c in locked])
            await outbox_repo.mark_sent(conn, job_ids=[c.job_id for c in locked])
            # As `mark`: commit only while the data the messages went into is still there,
            # read with the rows locked.
            current = await self._redis.get(epoch_key(self._prefix))
            marked = sent_under is not None and _epoch_value(current) == sent_under
            if not marked:
                await tx.rollback()
                log.warning(
                    "Redis lost its data while jobs were relayed; they will be resent",
                    extra={"jobs": len(locked)},
                )
        await self.adopt(sent_under)
        # Live subscribers see the job appear (its SUBMITTED event), as after an API submit.
        await pubsub.publish(self._redis, self._prefix, locked)
        return len(locked) if marked else 0

    async def _mark_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self._mark_interval)
            await self._flush_marks()

    async def _flush_marks(self) -> None:
        pending, self._to_mark = self._to_mark, {}
        for epoch, ids in pending.items():
            try:
                await mark(self._engine, self._redis, self._prefix, epoch, ids)
            except Exception as exc:
                log.warning("could not mark jobs dispatched", extra={"error": repr(exc)})


def _epoch_value(raw: object) -> bytes | None:
    return raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else None


#: Rows per mark statement. Its row locks are held until the statement ends and a worker's
#: claim of one of those jobs waits for them: small statements keep that wait short.
MARK_CHUNK = 100


async def mark(
    engine: AsyncEngine,
    redis: Redis,
    prefix: str,
    sent_under: bytes | None,
    job_ids: Sequence[uuid.UUID],
) -> None:
    """Record that these jobs were sent, unless Redis lost its data since. Each chunk commits
    only if the epoch is still `sent_under`, read while the chunk's row locks are held: a
    worker unmarking every job after a loss either waits for this commit (and then unmarks
    these too) or has unmarked already, and then the epoch differs (gone, or new)."""
    async with engine.connect() as conn:
        for i in range(0, len(job_ids), MARK_CHUNK):
            async with conn.begin() as tx:
                await jobs_repo.mark_dispatched(conn, job_ids=job_ids[i : i + MARK_CHUNK])
                if await redis.get(epoch_key(prefix)) != sent_under:
                    await tx.rollback()
                    log.warning(
                        "Redis lost its data after these jobs were sent; they will be resent",
                        extra={"jobs": len(job_ids)},
                    )
                    return
