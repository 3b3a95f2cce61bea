"""The WebSocket protocol `conveyor serve` runs: uvicorn's legacy `websockets` protocol, made
known to the application, so that shared feeds can write frames to it (`conveyor.api.direct`).

Kept apart from `direct` because importing uvicorn's legacy protocol announces its deprecation:
only the server imports this module, after it has silenced that notice (ADR-0015 keeps the
legacy protocol on purpose).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_impl import WebSocketProtocol
from websockets.datastructures import Headers

from conveyor.api import direct

#: Shared by every connection after its handshake (see `handshake`).
_NO_HEADERS = Headers()


class DirectWebSocketProtocol(WebSocketProtocol):
    async def handshake(self, *args: Any, **kwargs: Any) -> Any:
        path = await super().handshake(*args, **kwargs)
        # The request's headers live on in the ASGI scope. websockets keeps its own parsed
        # copies of both header sets for introspection only: 3-4 KB per connection (more from
        # browsers, with their cookies), for as long as a subscription stays open.
        self.request_headers = self.response_headers = _NO_HEADERS
        return path

    async def process_request(self, path: str, request_headers: Any) -> Any:
        # The connection's ASGI task is created inside: it inherits this context, and with it
        # the protocol (as does every task it starts: strawberry's operations).
        direct.PROTOCOL.set(self)
        return await super().process_request(path, request_headers)
