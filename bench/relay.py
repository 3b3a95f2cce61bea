"""Fan-out baseline server: a bare Redis pub/sub -> WebSocket relay (no GraphQL).

Why: Conveyor's live dashboard delivers one job event to many GraphQL subscribers. The floor for
that on this machine is the least work any server can do: one Redis pub/sub connection, and every
message of a channel written unchanged to every WebSocket connected to that channel. Conveyor's
subscription figures are compared against this relay.

Protocol: a client connects to ``ws://HOST:PORT/ws/<name>`` and receives, as text frames, every
message published on the Redis channel ``<channel-prefix><name>``. Clients send nothing. The
relay uses ``websockets.broadcast``, which writes synchronously and never awaits a slow client, so
one slow subscriber cannot stall the single Redis reader.

``GET /stats`` answers JSON (connections, messages relayed, frames sent); it is 503 until the Redis
subscription is active. On start the relay prints one JSON line with its port, on exit one with
its final stats. It stops on SIGTERM/SIGINT or after ``--max-seconds``.

Run: ``.venv/bin/python -m bench.relay --port 8765``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections import defaultdict
from http import HTTPStatus

from redis.asyncio import Redis
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from bench.common import (
    DEFAULT_REDIS_URL,
    raise_nofile_limit,
    require_loopback,
    run_async,
)

WS_PATH_PREFIX = "/ws/"


class Relay:
    """State of one relay process: subscribers per channel and counters."""

    def __init__(self, channel_prefix: str) -> None:
        self.channel_prefix = channel_prefix
        self.subscribers: defaultdict[str, set[ServerConnection]] = defaultdict(set)
        self.connections = 0
        self.relayed = 0
        self.frames = 0
        self.subscribed = False
        self.ready = asyncio.Event()

    def stats(self) -> dict[str, int | bool]:
        return {
            "connections": self.connections,
            "relayed": self.relayed,
            "frames": self.frames,
            "subscribed": self.subscribed,
        }

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Serve ``/stats`` over plain HTTP; let ``/ws/...`` upgrade; 404 anything else."""
        if request.path == "/stats":
            status = HTTPStatus.OK if self.subscribed else HTTPStatus.SERVICE_UNAVAILABLE
            body = json.dumps(self.stats()).encode()
            headers = Headers([("Content-Type", "application/json")])
            headers["Content-Length"] = str(len(body))
            return Response(status.value, status.phrase, headers, body)
        if not request.path.startswith(WS_PATH_PREFIX):
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        return None

    async def handler(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None  # set once the handshake completed
        channel = self.channel_prefix + websocket.request.path.removeprefix(WS_PATH_PREFIX)
        subscribers = self.subscribers[channel]
        subscribers.add(websocket)
        self.connections += 1
        try:
            async for _ in websocket:  # clients send nothing; drain to see the close frame
                pass
        finally:
            subscribers.discard(websocket)
            self.connections -= 1

    async def pump(self, redis: Redis, stop: asyncio.Event) -> None:
        """The single Redis reader: forward each message to the channel's subscribers."""
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.psubscribe(self.channel_prefix + "*")
        self.subscribed = True
        self.ready.set()
        try:
            while not stop.is_set():
                # get_message(timeout=...) rather than listen(): bounded waits, so the loop
                # notices ``stop`` and never trips redis-py's 5 s socket_timeout.
                message = await pubsub.get_message(timeout=1.0)
                if message is None or message["type"] != "pmessage":
                    continue
                channel = message["channel"].decode()
                targets = self.subscribers.get(channel)
                self.relayed += 1
                if targets:
                    broadcast(targets, message["data"], text=True)
                    self.frames += len(targets)
        finally:
            self.subscribed = False
            await pubsub.aclose()  # type: ignore[no-untyped-call]


async def run_relay(
    host: str, port: int, redis_url: str, channel_prefix: str, max_seconds: float
) -> dict[str, int | bool]:
    require_loopback(f"ws://{host}:{port}")
    require_loopback(redis_url)
    raise_nofile_limit()
    relay = Relay(channel_prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    redis = Redis.from_url(redis_url)
    async with serve(
        relay.handler,
        host,
        port,
        process_request=relay.process_request,
        compression=None,
        max_size=2**16,
        backlog=4096,
    ) as server:
        pump = asyncio.create_task(relay.pump(redis, stop))
        ready = asyncio.create_task(relay.ready.wait())
        await asyncio.wait({pump, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if pump.done():
            await pump  # surface the Redis error
        if not relay.subscribed:
            raise TimeoutError("Redis subscription not active within 10 s")
        bound_port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"event": "listening", "port": bound_port}), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max_seconds)
        stop.set()
        await asyncio.wait_for(pump, timeout=5)
    await redis.aclose()
    final = relay.stats()
    print(json.dumps({"event": "stopped", **final}), flush=True)
    return final


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--channel-prefix", default="bench:fanout:")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="hard stop")
    args = parser.parse_args(argv)
    try:
        run_async(
            run_relay(args.host, args.port, args.redis_url, args.channel_prefix, args.max_seconds)
        )
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
