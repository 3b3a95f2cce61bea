"""Handing QUEUED jobs to Redis Streams, and remembering in PostgreSQL that we did.

A message carries only the job id (ADR-0011): the job itself is in PostgreSQL. Sending is
at-least-once: a job is sent after its commit, marked `dispatched_at` in a batched UPDATE, and
sent again by the maintenance loop if the mark never lands. Duplicates are harmless because the
worker's claim is a guarded UPDATE.

Redis may lose its data (ADR-0013). `{prefix}:epoch` goes with it; workers notice, unmark every
QUEUED job in PostgreSQL and only then create a new epoch. A mark is committed only while the
epoch is still the one its messages were sent under, so a message lost with the data is never
left marked as sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Sequence

import orjson
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import jobs as jobs_repo
from app.domain.states import Priority

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

    async def start(self) -> None:
        self._task = asyncio.create_task(self._mark_loop(), name="dispatch-marker")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush_marks()

    async def send(self, targets: Iterable[Target]) -> bool:
        """XADD one message per job. False if Redis failed: the maintenance loop resends."""
        batch = list(targets)
        if not batch:
            return True
        try:
            # MULTI/EXEC: the epoch read is the one of the data the messages went into.
            async with self._redis.pipeline(transaction=True) as pipe:
                for job_id, queue, priority in batch:
                    pipe.xadd(stream_key(self._prefix, queue, priority), {b"data": message(job_id)})
                pipe.get(epoch_key(self._prefix))
                replies = await pipe.execute()
        except Exception as exc:
            log.warning(
                "dispatch failed; jobs stay QUEUED and will be resent",
                extra={"jobs": len(batch), "error": repr(exc)},
            )
            return False
        self._to_mark.setdefault(replies[-1], []).extend(job_id for job_id, _, _ in batch)
        self._wake.set()
        return True

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
