"""Open WebSocket connections by API key, so a revoked key's connections can be closed.

Two paths close them (code 4403): a `{prefix}:revocations` message on Redis, published by
whichever process revoked the key (immediate), and a re-check of every open connection's key
against PostgreSQL every `revocation_check_seconds` (covers a lost message, expiry, and a key
revoked straight in the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import MutableMapping
from typing import Any

from redis.asyncio.client import PubSub
from starlette.websockets import WebSocket, WebSocketState

from app.services import keys
from app.services.auth import Authenticator
from app.services.jobs import Deps

log = logging.getLogger(__name__)

CLOSE_REVOKED = 4403


class Connections:
    def __init__(self, deps: Deps, authenticator: Authenticator) -> None:
        self._deps = deps
        self._authenticator = authenticator
        self._open: dict[int, tuple[uuid.UUID, WebSocket]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def add(self, scope: MutableMapping[str, Any], key_id: uuid.UUID, websocket: WebSocket) -> None:
        self._open[id(scope)] = (key_id, websocket)

    def discard(self, scope: MutableMapping[str, Any]) -> None:
        self._open.pop(id(scope), None)

    def __len__(self) -> int:
        return len(self._open)

    async def close_key(self, key_id: uuid.UUID, reason: str) -> int:
        """Close every open connection of `key_id` (and tokens minted from it)."""
        self._authenticator.forget(key_id)
        closed = 0
        for scope_id, (owner, ws) in list(self._open.items()):
            if owner != key_id:
                continue
            self._open.pop(scope_id, None)
            if ws.application_state != WebSocketState.DISCONNECTED:
                with contextlib.suppress(Exception):  # already closing: nothing to do
                    await ws.close(code=CLOSE_REVOKED, reason=reason)
                    closed += 1
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
            # The flag too: on Python 3.11, a cancel that lands as redis-py's read timeout
            # expires comes out as TimeoutError, which the loop below survives.
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        interval = self._deps.settings.revocation_check_seconds
        channel = keys.revocations_channel(self._deps.settings.redis_prefix)
        loop = asyncio.get_running_loop()
        next_check = loop.time() + interval
        pubsub = None
        try:
            while not self._stopping:
                try:
                    if pubsub is None:
                        pubsub = self._deps.redis.pubsub(ignore_subscribe_messages=True)
                        await pubsub.subscribe(channel)
                    message = await pubsub.get_message(timeout=min(1.0, interval))
                    if message and message.get("type") == "message":
                        raw = message["data"]
                        key_id = uuid.UUID(raw.decode() if isinstance(raw, bytes) else str(raw))
                        await self.close_key(key_id, "API key revoked")
                except Exception:
                    if self._stopping:
                        break
                    log.warning("revocation listener failed; retrying", exc_info=True)
                    await _close(pubsub)
                    pubsub = None
                    await asyncio.sleep(1.0)
                if loop.time() >= next_check:
                    next_check = loop.time() + interval
                    await self._recheck()
        finally:
            await _close(pubsub)

    async def _recheck(self) -> None:
        key_ids = list({key_id for key_id, _ in self._open.values()})
        if not key_ids:
            return
        try:
            inactive = await keys.inactive_keys(self._deps, key_ids)
        except Exception:
            log.warning("could not re-check the keys of open connections", exc_info=True)
            return
        for key_id in inactive:
            await self.close_key(key_id, "API key revoked or expired")


async def _close(pubsub: PubSub | None) -> None:
    if pubsub is not None:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]
