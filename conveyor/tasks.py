"""Stopping background tasks for sure.

On Python 3.11, `asyncio.wait_for` (which redis-py and asyncpg use for every timed call) can
swallow a cancel that lands as the awaited call completes (cpython#86296, fixed in 3.12): a
loop cancelled once may then go on forever, and `await task` with it. So a task is cancelled
again until it has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def finish(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it ended, cancelling again every second meanwhile. Its
    exception, if any, is marked retrieved: the caller is stopping either way."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled():
        task.exception()


async def finish_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """`finish` every task, concurrently."""
    await asyncio.gather(*(finish(t) for t in tasks))
