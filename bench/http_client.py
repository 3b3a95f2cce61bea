"""A minimal HTTP/1.1 keep-alive client for load generation (POST JSON, read JSON).

Why not httpx: under an open-loop load thousands of requests can be waiting for a connection
at once, and httpx's pool then spends the client's CPU on bookkeeping, so the load generator,
not the server, sets the pace (measured: at 200 requests/s offered the API sat at ~16 % CPU
while requests waited seconds in the client). Here a request waits in one FIFO queue (O(1)) and
each of ``connections`` workers runs one request at a time over its own socket. Only what the
benchmarks need: ``POST`` with a JSON body, responses with ``Content-Length`` (what uvicorn
sends for JSON), loopback targets.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench.common import require_loopback


class HTTPError(RuntimeError):
    pass


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):  # a keep-alive socket closed by the server is reopened once
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            try:
                self.writer.write(head + body)
                status_line = await self.reader.readline()
                if not status_line:
                    raise ConnectionResetError("closed by the server")
                status = int(status_line.split(b" ", 2)[1])
                length = 0
                close = False
                while (line := await self.reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    key = name.strip().lower()
                    if key == b"content-length":
                        length = int(value)
                    elif key == b"connection" and value.strip().lower() == b"close":
                        close = True
                    elif key == b"transfer-encoding":
                        raise HTTPError("chunked responses are not supported")
                data = await self.reader.readexactly(length)
                if close:
                    self.close()
                return status, data
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class JSONPoster:
    """``await post(json)`` -> parsed JSON, over ``connections`` keep-alive sockets."""

    def __init__(self, url: str, headers: dict[str, str], *, connections: int = 16) -> None:
        require_loopback(url)
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\n{extra}"
        ).encode()
        self._queue: asyncio.Queue[tuple[bytes, asyncio.Future[tuple[int, bytes]]]] = (
            asyncio.Queue()
        )
        self._conns = [_Conn(self.host, self.port) for _ in range(connections)]
        self._tasks = [asyncio.create_task(self._work(c)) for c in self._conns]

    async def _work(self, conn: _Conn) -> None:
        while True:
            body, future = await self._queue.get()
            if future.cancelled():
                continue
            head = self._head + f"Content-Length: {len(body)}\r\n\r\n".encode()
            try:
                result = await conn.request(head, body)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                continue
            if not future.done():
                future.set_result(result)

    async def post(self, payload: Any) -> Any:
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((orjson.dumps(payload), future))
        status, data = await future
        if status != 200:
            raise HTTPError(f"HTTP {status}: {data[:300]!r}")
        return orjson.loads(data)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for conn in self._conns:
            conn.close()
