"""Closing a WebSocket whose client has stopped keeping up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)

#: Close code for a subscriber whose buffer overflowed.
TOO_SLOW = 4429

# In-flight close tasks, referenced so they are not garbage-collected while they wait.
_closing: set[asyncio.Task[None]] = set()


def close_too_slow(websocket: Any) -> None:
    """Close with 4429 without waiting: the close frame queues behind everything the client
    has not read yet, and the caller (a broadcaster) must not wait for it. A context with no
    socket (a shared feed's own) has nothing to close."""
    if websocket is None:
        return
    log.warning("closing a subscriber too slow to keep up", extra={"code": TOO_SLOW})

    async def close() -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(120):
                await websocket.close(code=TOO_SLOW, reason="subscriber too slow")

    task = asyncio.create_task(close())
    _closing.add(task)
    task.add_done_callback(_closing.discard)
