"""Open WebSocket connections by API key, so a revoked or expired credential's connections
can be closed (code 4403).

Three paths close them: a `{prefix}:revocations` message on Redis, published by whichever
process revoked the key (immediate; the channel is always on, on the events hub's one pub/sub
connection); a timer per connection at its credential's expiry (a token's, or its key's
`expiresAt`); and a re-check of every open connection's key against PostgreSQL every
`revocation_check_seconds` (covers a key revoked or expired straight in the database), and at
once whenever messages may have been lost (the hub reconnected, or this reader fell behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from conveyor import pubsub, tasks
from conveyor.domain.models import Principal
from conveyor.services import keys
from conveyor.services.auth import Authenticator
from conveyor.services.deps import Deps

log = logging.getLogger(__name__)

CLOSE_REVOKED = 4403


@dataclass(eq=False)
class _Open:
    key_id: uuid.UUID
    websocket: WebSocket
    expiry: asyncio.TimerHandle | None


class Connections:
    def __init__(self, deps: Deps, authenticator: Authenticator, hub: pubsub.Hub) -> None:
        self._deps = deps
        self._authenticator = authenticator
        self._revocations = hub.always_on(keys.revocations_channel(deps.prefix))
        self._open: dict[int, _Open] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Expiry closes in flight, referenced so they are not garbage-collected meanwhile.
        self._closing: set[asyncio.Task[bool]] = set()

    def add(
        self, scope: MutableMapping[str, Any], principal: Principal, websocket: WebSocket
    ) -> None:
        expiry = None
        if principal.expires_at is not None:
            delay = max(0.0, principal.expires_at.timestamp() - time.time())
            expiry = asyncio.get_running_loop().call_later(
                delay, self._expired, id(scope), websocket
            )
        self._open[id(scope)] = _Open(principal.key_id, websocket, expiry)

    def discard(self, scope: MutableMapping[str, Any]) -> None:
        self._forget(id(scope))

    def __len__(self) -> int:
        return len(self._open)

    def _forget(self, scope_id: int) -> _Open | None:
        entry = self._open.pop(scope_id, None)
        if entry is not None and entry.expiry is not None:
            entry.expiry.cancel()
        return entry

    def _expired(self, scope_id: int, websocket: WebSocket) -> None:
        entry = self._open.get(scope_id)
        if entry is None or entry.websocket is not websocket:
            return
        self._forget(scope_id)
        log.info("closing a connection whose credential expired", extra={"code": CLOSE_REVOKED})
        task = asyncio.create_task(_close(websocket, "credential expired"))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_key(self, key_id: uuid.UUID, reason: str) -> int:
        """Close every open connection of `key_id` (and tokens minted from it)."""
        self._authenticator.forget(key_id)
        closed = 0
        for scope_id, entry in list(self._open.items()):
            if entry.key_id != key_id:
                continue
            self._forget(scope_id)
            closed += await _close(entry.websocket, reason)
        if closed:
            log.info(
                "closed connections of a revoked key", extra={"key_id": str(key_id), "n": closed}
            )
        return closed

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="revocations")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            # The flag too: a cancel swallowed on the way (Python 3.11's `asyncio.wait_for`
            # loses one that lands as the awaited call completes) must still end the loop.
            await tasks.finish(self._task)

    async def _run(self) -> None:
        interval = self._deps.settings.revocation_check_seconds
        loop = asyncio.get_running_loop()
        next_check = loop.time() + interval
        while not self._stopping:
            try:
                item = await self._revocations.get(timeout=max(0.0, next_check - loop.time()))
                if item is pubsub.RESYNC:
                    # Revocations may have been published while the hub was away.
                    next_check = loop.time()
                elif isinstance(item, bytes):
                    await self._revoked(item)
                if loop.time() >= next_check:
                    next_check = loop.time() + interval
                    await self._recheck()
            except Exception:
                log.warning("revocation handling failed", exc_info=True)
                await asyncio.sleep(1.0)

    async def _revoked(self, raw: bytes) -> None:
        try:
            key_id = uuid.UUID(raw.decode())
        except ValueError:
            log.warning("ignoring a malformed revocation", extra={"payload": repr(raw[:100])})
            return
        await self.close_key(key_id, "API key revoked")

    async def _recheck(self) -> None:
        key_ids = list({entry.key_id for entry in self._open.values()})
        if not key_ids:
            return
        try:
            inactive = await keys.inactive_keys(self._deps, key_ids)
        except Exception:
            log.warning("could not re-check the keys of open connections", exc_info=True)
            return
        for key_id in inactive:
            await self.close_key(key_id, "API key revoked or expired")


async def _close(websocket: WebSocket, reason: str) -> bool:
    """Close with 4403; False when it was closed or closing already."""
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return False
    with contextlib.suppress(Exception):  # already closing (or never drains): nothing to do
        async with asyncio.timeout(30):
            await websocket.close(code=CLOSE_REVOKED, reason=reason)
        return True
    return False
