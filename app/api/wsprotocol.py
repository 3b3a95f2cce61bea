"""uvicorn's sans-I/O WebSocket protocol, made to let go of clients that stopped reading.

uvicorn's `websockets-sansio` implementation keeps no task per connection, which is what lets
one API process hold 10,000 subscriptions cheaply (docs/benchmarks.md). But when it gives up on
a connection (keepalive ping unanswered, or no answer to its close frame) it calls
`transport.close()`, and asyncio's `close()` first flushes the write buffer: a client that
stopped reading keeps that buffer full, so the connection, its buffer and its subscription live
on forever. Here every `close()` is followed by `abort()` if the connection is not gone within
`ABORT_AFTER_CLOSE_SECONDS` (a close that can flush at all does so in milliseconds: the buffer
holds at most the transport's high-water mark), and a client gets `CLOSE_TIMEOUT_SECONDS`
(uvicorn: 10) to answer a close frame. A stalled client is thus gone about 7 s after the
server gave up on it (4429 "too slow", or an unanswered keepalive ping).
"""

from __future__ import annotations

import asyncio
from asyncio import BaseTransport, TimerHandle, Transport
from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

#: How long a closing connection may take to flush before it is aborted.
ABORT_AFTER_CLOSE_SECONDS = 2.0
#: How long a client has to answer the server's close frame.
CLOSE_TIMEOUT_SECONDS = 5.0


class _AbortingTransport:
    """Delegates to a transport; `close()` also schedules an `abort()`."""

    def __init__(self, transport: Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._abort_timer: TimerHandle | None = None

    def close(self) -> None:
        self._transport.close()
        if self._abort_timer is None:
            self._abort_timer = self._loop.call_later(
                ABORT_AFTER_CLOSE_SECONDS, self._transport.abort
            )

    def lost(self) -> None:
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = CLOSE_TIMEOUT_SECONDS

    def connection_made(self, transport: BaseTransport) -> None:
        wrapped: Any = _AbortingTransport(cast(Transport, transport), self.loop)
        super().connection_made(wrapped)

    def connection_lost(self, exc: Exception | None) -> None:
        transport: Any = self.transport
        if isinstance(transport, _AbortingTransport):
            transport.lost()
        super().connection_lost(exc)


#: What `uvicorn.run(ws=...)` takes to use it.
IMPORT_PATH = f"{__name__}:{WebSocketProtocol.__name__}"
