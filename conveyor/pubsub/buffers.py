"""Bounded per-subscriber buffers: a slow reader costs bounded memory and never stalls the hub;
on overflow (or any possible loss) it is told to RESYNC from PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from conveyor.domain.models import JobChange

T = TypeVar("T")

#: Put in a buffer when it may have missed messages: re-read PostgreSQL.
RESYNC = object()


class Buffer(Generic[T]):
    """A bounded buffer. Overflow drops its contents for RESYNC, so a slow reader costs bounded
    memory and never stalls the hub."""

    def __init__(self, maxlen: int, on_overflow: Callable[[], None] | None = None) -> None:
        self._buffer: deque[T | object] = deque()
        self._maxlen = maxlen
        self._ready = asyncio.Event()
        self._on_overflow = on_overflow
        self.overflowed = 0

    def push(self, item: T | object) -> None:
        if len(self._buffer) >= self._maxlen:
            self._buffer.clear()
            self.overflowed += 1
            item = RESYNC
            if self.overflowed == 1 and self._on_overflow is not None:
                # The reader may be stuck sending to its client and never see RESYNC.
                self._on_overflow()
        self._buffer.append(item)
        self._ready.set()

    async def get(self, timeout: float | None = None) -> T | object | None:
        """The next item, RESYNC, or None on timeout."""
        if not self._buffer:
            self._ready.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return None
        return self._buffer.popleft()


class Subscription(Buffer[JobChange]):
    """One subscriber's changes (of one job, or of every job when `job_id` is None)."""

    def __init__(
        self,
        job_id: uuid.UUID | None,
        maxlen: int,
        on_overflow: Callable[[], None] | None,
        on_close: Callable[[Subscription], None],
    ) -> None:
        super().__init__(maxlen, on_overflow)
        self.job_id = job_id
        self.internal = False
        self.closed = False
        self._on_close = on_close

    def close(self) -> None:
        self._on_close(self)


class Inbox(Buffer[bytes]):
    """The raw messages of an always-on channel, and RESYNC whenever some may have been lost
    (the connection dropped, or the reader fell `maxlen` behind)."""

    def __init__(self, channel: str, maxlen: int) -> None:
        super().__init__(maxlen)
        self.channel = channel
