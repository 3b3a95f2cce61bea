"""Micro-batching without timers: calls made in the same moment share one round trip.

The first `submit` schedules a flush for the next turn of the event loop, so every caller that
submits in the current turn joins it; calls that arrive while a flush is in flight form the
next one. An idle system pays no added latency; a busy one pays one round trip per batch
instead of one per item.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(
        self, process: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_size: int = 500
    ) -> None:
        self._process = process
        self._max_size = max_size
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None:
            # A fresh context: the batch belongs to no caller in particular (log context).
            self._task = asyncio.create_task(self._drain(), context=contextvars.Context())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_size]
                del self._pending[: self._max_size]
                try:
                    results = await self._process([item for item, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._task = None
