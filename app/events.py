"""Live job changes over Redis pub/sub: publish after commit, fan out in-process.

Each process holds ONE pub/sub connection (the `Hub`), subscribed to one channel carrying every
job change. Subscribers register in-process and get a bounded buffer. Redis pub/sub is lossy
(reconnects, slow readers), so every message carries the job's `seq`: subscribers detect gaps,
and on any loss the hub tells them to `resync` from PostgreSQL, which holds every event.

The hub listens only while someone subscribes: an API process nobody watches does not read
and decode every change of every job (at a batch submit, that was a third of its CPU). A new
subscriber waits (`listening`) until the channel is subscribed before reading PostgreSQL, so
nothing falls between its snapshot and the first live message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from app.domain.errors import TooManySubscriptions
from app.domain.models import Event, JobChange
from app.domain.states import EventType, JobStatus, Priority

log = logging.getLogger(__name__)


def channel(prefix: str) -> str:
    return f"{prefix}:events"


def control_channel(prefix: str) -> str:
    """Commands to workers (cancel a running job)."""
    return f"{prefix}:control"


def encode(change: JobChange) -> bytes:
    e = change.event
    return orjson.dumps(
        {
            "j": str(e.job_id),
            "s": e.seq,
            "t": e.type.value,
            "st": e.status.value,
            "p": e.progress,
            "m": e.message,
            "d": e.data,
            "at": e.at.isoformat(),
            "k": change.kind,
            "q": change.queue,
            "o": str(change.owner_id),
            "a": change.attempt,
            "jp": change.progress,
            "jm": change.progress_message,
            "pr": int(change.priority),
        }
    )


def decode(raw: bytes | str) -> JobChange:
    d: dict[str, Any] = orjson.loads(raw)
    return JobChange(
        event=Event(
            job_id=uuid.UUID(d["j"]),
            seq=d["s"],
            type=EventType(d["t"]),
            status=JobStatus(d["st"]),
            progress=d["p"],
            message=d["m"],
            data=d["d"],
            at=datetime.fromisoformat(d["at"]),
        ),
        kind=d["k"],
        queue=d["q"],
        owner_id=uuid.UUID(d["o"]),
        attempt=d["a"],
        progress=d["jp"],
        progress_message=d["jm"],
        priority=Priority(d.get("pr", 1)),
    )


async def publish(redis: Redis, prefix: str, changes: Iterable[JobChange]) -> None:
    """Broadcast committed changes. Best effort: subscribers recover losses from PostgreSQL."""
    batch = list(changes)
    if not batch:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for change in batch:
                pipe.publish(channel(prefix), encode(change))
            await pipe.execute()
    except Exception as exc:
        log.warning("publish failed; subscribers will resync", extra={"error": repr(exc)})


#: Put in a subscriber's buffer when it may have missed changes: re-read PostgreSQL.
RESYNC = object()
#: The hub yields to the event loop after this many consecutive messages.
YIELD_EVERY = 64
#: The hub unsubscribes after this long without subscribers.
IDLE_UNSUBSCRIBE_SECONDS = 5.0
#: How long a new subscriber waits for the hub to be listening before going on without it
#: (Redis down or slow: it is sent RESYNC once the hub listens).
LISTEN_WAIT_SECONDS = 2.0


class Subscription:
    """One subscriber's bounded buffer. Overflow drops the buffer and asks for a resync, so a
    slow reader costs bounded memory and never stalls the hub."""

    def __init__(
        self,
        hub: Hub,
        job_id: uuid.UUID | None,
        maxlen: int,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self.hub = hub
        self.job_id = job_id
        self._buffer: deque[JobChange | object] = deque()
        self._maxlen = maxlen
        self._ready = asyncio.Event()
        self._on_overflow = on_overflow
        self.overflowed = 0
        self.internal = False
        self.closed = False

    def push(self, item: JobChange | object) -> None:
        if len(self._buffer) >= self._maxlen:
            self._buffer.clear()
            self.overflowed += 1
            item = RESYNC
            if self.overflowed == 1 and self._on_overflow is not None:
                # The reader may be stuck sending to its client and never see RESYNC.
                self._on_overflow()
        self._buffer.append(item)
        self._ready.set()

    async def get(self, timeout: float | None = None) -> JobChange | object | None:
        """The next change, RESYNC, or None on timeout."""
        if not self._buffer:
            self._ready.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return None
        return self._buffer.popleft()

    def close(self) -> None:
        self.hub._remove(self)


class Hub:
    """The process's single pub/sub reader and its in-process subscribers."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        buffer: int = 1000,
        max_subscribers: int = 20_000,
        idle_unsubscribe: float = IDLE_UNSUBSCRIBE_SECONDS,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._buffer = buffer
        self._max_subscribers = max_subscribers
        self._idle_unsubscribe = idle_unsubscribe
        self._reserved = 0
        self._internal = 0
        self._by_job: dict[uuid.UUID, set[Subscription]] = {}
        self._firehose: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        #: Set while the channel is subscribed (messages are being delivered).
        self._connected = asyncio.Event()
        #: Set while someone needs the channel; the reader sleeps on it when idle.
        self._wanted = asyncio.Event()
        #: A subscriber went on without waiting for the channel: resync everyone once it is up.
        self._late = False

    @property
    def subscriber_count(self) -> int:
        """Client subscriptions: the hub's own, less internal ones, plus those reserved."""
        total = sum(len(s) for s in self._by_job.values()) + len(self._firehose)
        return total - self._internal + self._reserved

    def reserve(self, n: int) -> None:
        """Count `n` subscribers served elsewhere (shared feeds) against the process cap."""
        if n > 0 and self.subscriber_count + n > self._max_subscribers:
            raise TooManySubscriptions(
                f"this server holds its maximum of {self._max_subscribers} subscriptions; "
                "try again later or another replica"
            )
        self._reserved += n

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="events-hub")

    @property
    def is_listening(self) -> bool:
        return self._connected.is_set()

    async def listening(self, timeout: float = LISTEN_WAIT_SECONDS) -> None:
        """Wait until changes published from now on reach this process's subscribers. Call it
        after `subscribe` and before reading the state the live changes continue. On timeout
        (Redis unavailable) the caller goes on, and every subscriber is sent RESYNC once the
        hub listens."""
        if self._connected.is_set():
            return
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            self._late = True

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(
        self,
        job_id: uuid.UUID | None = None,
        on_overflow: Callable[[], None] | None = None,
        *,
        internal: bool = False,
    ) -> Subscription:
        """Changes of one job, or of every job when `job_id` is None. An `internal` one (a
        shared feed's source) does not count against the per-process cap."""
        if not internal and self.subscriber_count >= self._max_subscribers:
            raise TooManySubscriptions(
                f"this server holds its maximum of {self._max_subscribers} subscriptions; "
                "try again later or another replica"
            )
        sub = Subscription(self, job_id, self._buffer, on_overflow)
        sub.internal = internal
        self._internal += internal
        if job_id is None:
            self._firehose.add(sub)
        else:
            self._by_job.setdefault(job_id, set()).add(sub)
        self._wanted.set()
        return sub

    def _needed(self) -> bool:
        return bool(self._by_job or self._firehose)

    def _remove(self, sub: Subscription) -> None:
        if sub.closed:
            return
        sub.closed = True
        self._internal -= sub.internal
        if sub.job_id is None:
            self._firehose.discard(sub)
            return
        subs = self._by_job.get(sub.job_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_job[sub.job_id]

    def _dispatch(self, change: JobChange) -> None:
        for sub in self._by_job.get(change.job_id, ()):
            sub.push(change)
        for sub in self._firehose:
            sub.push(change)

    def _resync_all(self) -> None:
        for subs in self._by_job.values():
            for sub in subs:
                sub.push(RESYNC)
        for sub in self._firehose:
            sub.push(RESYNC)

    async def _run(self) -> None:
        backoff = 0.1
        failed = False
        loop = asyncio.get_running_loop()
        while True:
            await self._wanted.wait()
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel(self._prefix))
                if failed or self._late:
                    # Anything published while we were away is lost to pub/sub.
                    self._resync_all()
                failed = self._late = False
                self._connected.set()
                backoff = 0.1
                burst = 0
                idle_since: float | None = None
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if not self._needed():
                        idle_since = idle_since or loop.time()
                        if loop.time() - idle_since >= self._idle_unsubscribe:
                            # No await between this check and clearing the flags: a new
                            # subscriber either saw the hub listening or waits for it again.
                            self._connected.clear()
                            self._wanted.clear()
                            break
                        continue  # nobody to deliver to: do not decode
                    idle_since = None
                    if message is None or message.get("type") != "message":
                        burst = 0
                        continue
                    burst += 1
                    if burst % YIELD_EVERY == 0:
                        # A burst (a batch submit) may arrive already buffered: let the
                        # subscribers drain before pushing more, so buffers measure slowness.
                        await asyncio.sleep(0)
                    try:
                        change = decode(message["data"])
                    except (ValueError, KeyError) as exc:
                        log.warning("undecodable event", extra={"error": repr(exc)})
                        continue
                    self._dispatch(change)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._connected.clear()
                failed = True
                log.warning(
                    "event stream lost; reconnecting",
                    extra={"error": repr(exc), "retry_in": backoff},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
