"""Direct frames: a shared feed writes each subscriber's `next` message straight to its socket.

A change seen by N subscribers of one shared feed (`conveyor.api.feeds`) used to wake N tasks,
each passing the same result through strawberry's protocol handler, Starlette, uvicorn's ASGI
send and `websockets`' framing before the one `transport.write` that matters. Profiled with
2,000 subscribers, the framing alone was 30 % of the API's CPU per event and waking the tasks
another 10 % (`bench.fanout`, docs/benchmarks.md).

Here the feed encodes the result once and, for each subscriber, builds the frame (a two- or
four-byte header, the operation's id, the shared JSON) and writes it to the transport itself.
It does so only when the frame is exactly what the slow path would have sent:

* the connection runs on `conveyor.api.ws_protocol.DirectWebSocketProtocol` (uvicorn's
  legacy `websockets` protocol, the default `WS_IMPLEMENTATION`), is OPEN and negotiated no
  extension (no permessage-deflate), and its transport is not closing;
* the operation speaks graphql-transport-ws and is still registered with its handler (a
  client's `complete` removes it at once, so nothing follows a `complete`);
* the result has data and no errors or extensions (anything else takes the slow path).

Flow control stays the server's: when more than `SUBSCRIBER_BUFFER` frames of this size wait in
the socket's write buffer, the subscriber is too slow and is closed with 4429, as before.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
from websockets.protocol import State

#: The connection's protocol (`conveyor.api.ws_protocol`), set for the connection's ASGI task
#: and every task it starts.
PROTOCOL: contextvars.ContextVar[Any] = contextvars.ContextVar("conveyor_ws_protocol", default=None)


@dataclass(eq=False, slots=True)
class Target:
    """Where a subscriber's frames go: its socket and its graphql-transport-ws operation."""

    protocol: Any  # conveyor.api.ws_protocol.DirectWebSocketProtocol
    handler: Any  # strawberry's BaseGraphQLTransportWSHandler
    operation: Any  # its Operation
    prefix: bytes  # b'{"id":<id>,"type":"next","payload":{"data":'


class Written(Enum):
    SENT = "sent"
    UNAVAILABLE = "unavailable"  # take the slow path (closing socket, extension, gone)
    TOO_SLOW = "too slow"


#: The graphql-transport-ws handler and operation the current task runs, when its results may
#: be written directly.
_OPERATION: contextvars.ContextVar[tuple[Any, Any] | None] = contextvars.ContextVar(
    "conveyor_ws_operation", default=None
)


def serve(handler: Any, operation: Any) -> None:
    """Called by the graphql-transport-ws handler in the task that runs `operation`: a shared
    feed joined from this task may write the operation's results directly."""
    if PROTOCOL.get() is not None:
        _OPERATION.set((handler, operation))


def current() -> Target | None:
    """The target of the operation the current task runs (None: the slow path only). Built
    here, when a shared feed is joined, not for every operation."""
    protocol = PROTOCOL.get()
    served = _OPERATION.get()
    if protocol is None or served is None:
        return None
    handler, operation = served
    prefix = b'{"id":' + orjson.dumps(operation.id) + b',"type":"next","payload":{"data":'
    return Target(protocol, handler, operation, prefix)


def frame(payload: bytes) -> bytes:
    """An unmasked, final text frame (RFC 6455 5.2) around `payload`."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


_SUFFIX = b"}}"


def write(t: Target, data_json: bytes, max_frames: int) -> Written:
    """Write `{"id":…,"type":"next","payload":{"data":<data_json>}}` to the subscriber now."""
    protocol = t.protocol
    operation = t.operation
    transport = protocol.transport
    if (
        protocol.state is not State.OPEN
        or protocol.extensions
        or transport is None
        or transport.is_closing()
        or operation.completed
        or t.handler.operations.get(operation.id) is not operation
    ):
        return Written.UNAVAILABLE
    data = frame(t.prefix + data_json + _SUFFIX)
    if transport.get_write_buffer_size() > max_frames * len(data):
        return Written.TOO_SLOW
    transport.write(data)
    return Written.SENT
