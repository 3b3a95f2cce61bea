"""`ConveyorBroker`: taskiq-redis's `RedisStreamBroker`, with the traps of KNOWN-TRAPS.md fixed.

- Reads several streams (each queue x priority) and always drains higher priorities first.
- Consumer groups start at id 0, so messages sent before a worker ever started are delivered,
  and are re-created if Redis lost them (restart, FLUSHALL).
- Consumers are named `host-pid`, and consumers idle for an hour with nothing pending are removed.
- Pending entries idle longer than `reclaim_idle_seconds` (their consumer died between reading
  and claiming) are re-claimed on a timer, also on a quiet queue. A pass takes no more than
  the worker has free slots for, and the next pass follows each stream's XAUTOCLAIM cursor at
  once until the stream is done: a backlog drains as fast as the worker runs it.
- Small reads (`read_count`), so one worker never hoards messages it is not running.
- Ack = XACK + XDEL on one long-lived client: acknowledged entries do not pile up in the stream.
- Messages are acked by the task itself once the claim is committed in PostgreSQL (ADR-0013);
  long-running jobs are therefore never re-delivered just for being long.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

from conveyor.domain.states import Priority
from conveyor.services.batching import Batcher
from conveyor.services.deps import redis_retry
from conveyor.services.dispatch import stream_key

log = logging.getLogger(__name__)

GROUP = "conveyor"
#: Most messages one reclaim pass takes over, however many slots are free.
RECLAIM_MAX = 256


class ConveyorBroker(RedisStreamBroker):
    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        queues: list[str],
        consumer_name: str,
        read_count: int = 8,
        block_ms: int = 1000,
        reclaim_idle_seconds: float = 30.0,
        free_slots: Callable[[], int] | None = None,
    ) -> None:
        # redis-py 8 defaults socket_timeout=5s: keep the XREADGROUP block well below it.
        super().__init__(
            url,
            queue_name=stream_key(prefix, queues[0], Priority.NORMAL),
            consumer_group_name=GROUP,
            consumer_name=consumer_name,
            consumer_id="0",
            xread_block=block_ms,
            xread_count=read_count,
            idle_timeout=int(reclaim_idle_seconds * 1000),
            retry=redis_retry(),
        )
        self.prefix = prefix
        self.queues = queues
        # Highest priority first; within a priority, queues in the order given.
        self.streams = [stream_key(prefix, q, p) for p in Priority for q in queues]
        self._client: Redis | None = None
        self._acks: Batcher[tuple[str, str], None] = Batcher(self._ack_many)
        #: How many more messages the worker could start now (bounds a reclaim pass).
        self._free_slots = free_slots or (lambda: read_count)
        #: Per stream, where the next XAUTOCLAIM continues; "0-0" once a scan is complete.
        self._reclaim_cursors = dict.fromkeys(self.streams, "0-0")
        self._last_reclaim = 0.0
        self._last_cleanup = 0.0

    @property
    def client(self) -> Redis:
        if self._client is None:
            self._client = Redis(connection_pool=self.connection_pool)
        return self._client

    async def _declare_consumer_group(self) -> None:
        await self.ensure_groups()

    async def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                await self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def shutdown(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await super().shutdown()

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            await self._acks.submit((queue_name, id))

        return ack

    async def _ack_many(self, entries: list[tuple[str, str]]) -> list[None]:
        """XACK + XDEL for every entry acknowledged at the same moment, in one round trip."""
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        async with self.client.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
            await pipe.execute()
        return [None] * len(entries)

    async def _read(self, streams: list[str], block: int | None) -> list[tuple[str, str, bytes]]:
        fetched: Any = await self.client.xreadgroup(
            GROUP, self.consumer_name, dict.fromkeys(streams, ">"), count=self.count, block=block
        )
        out: list[tuple[str, str, bytes]] = []
        for stream, entries in fetched or []:
            name = stream.decode() if isinstance(stream, bytes) else stream
            for msg_id, fields in entries:
                out.append((name, msg_id, fields[b"data"]))
        return out

    async def _read_by_priority(self) -> list[tuple[str, str, bytes]]:
        per_priority = len(self.queues)
        for start in range(0, len(self.streams), per_priority):
            got = await self._read(self.streams[start : start + per_priority], block=None)
            if got:
                return got
        # Nothing anywhere: block on all streams until something arrives.
        return await self._read(self.streams, block=self.block)

    async def _reclaim(self) -> list[tuple[str, str, bytes]]:
        """Take over entries pending longer than the idle timeout (their consumer died, or
        never managed to claim them), highest priority first: at most as many as the worker
        has free slots for (never more than RECLAIM_MAX), one XAUTOCLAIM per stream, each
        continuing from that stream's cursor."""
        limit = max(1, min(self._free_slots(), RECLAIM_MAX))
        out: list[tuple[str, str, bytes]] = []
        for stream in self.streams:
            if len(out) >= limit:
                break
            reply: Any = await self.client.xautoclaim(
                stream,
                GROUP,
                self.consumer_name,
                min_idle_time=self.idle_timeout,
                start_id=self._reclaim_cursors[stream],
                count=limit - len(out),
            )
            cursor = reply[0]
            self._reclaim_cursors[stream] = cursor.decode() if isinstance(cursor, bytes) else cursor
            for msg_id, fields in reply[1]:
                if fields:  # entries deleted meanwhile come back empty
                    out.append((stream, msg_id, fields[b"data"]))
        if out:
            log.info(
                "re-claimed messages left pending (a dead consumer's, or never claimed)",
                extra={"count": len(out)},
            )
        return out

    def _reclaim_due(self, now: float) -> bool:
        if any(c != "0-0" for c in self._reclaim_cursors.values()):
            return True  # a scan is under way: continue it now
        return now - self._last_reclaim > min(self.idle_timeout / 1000 / 3, 10)

    async def _cleanup_consumers(self) -> None:
        for stream in self.streams:
            consumers: Any = await self.client.xinfo_consumers(stream, GROUP)
            for consumer in consumers:
                name = consumer["name"]
                name = name.decode() if isinstance(name, bytes) else name
                if (
                    name != self.consumer_name
                    and consumer["pending"] == 0
                    and consumer["idle"] > 3_600_000
                ):
                    await self.client.xgroup_delconsumer(stream, GROUP, name)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        while True:
            try:
                now = time.monotonic()
                batch: list[tuple[str, str, bytes]] = []
                if self._reclaim_due(now):
                    self._last_reclaim = now
                    batch = await self._reclaim()
                if now - self._last_cleanup > 600:
                    self._last_cleanup = now
                    await self._cleanup_consumers()
                if not batch:
                    batch = await self._read_by_priority()
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    log.warning("consumer group missing (Redis lost its data?); re-creating")
                    await self.ensure_groups()
                    continue
                raise
            except (RedisError, OSError) as exc:
                log.warning("Redis unreachable; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
                continue
            for stream, msg_id, data in batch:
                yield AckableMessage(data=data, ack=self._ack_generator(msg_id, stream))
