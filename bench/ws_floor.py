"""The WebSocket server's own memory per connection: a bare ASGI app on uvicorn.

Why: the fan-out benchmark's memory goal (under 20 KB of RSS per idle subscription) is read
against what the server stack costs before any GraphQL: this starts uvicorn with an ASGI app
that only accepts WebSockets and waits, opens ``--connections`` idle connections from this
process (no compression, as the fan-out clients), and reports the server's RSS growth per
connection, for each uvicorn WebSocket implementation asked for.

How: the server is ``python -m bench.ws_floor --serve IMPL`` (a child process on a free
loopback port, uvloop as ``python -m conveyor serve`` uses); RSS is read with psutil before the
connections (after one warm-up connection) and 3 s after the last one opened.

Run: ``.venv/bin/python -m bench.ws_floor --connections 1000``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import time
from typing import Any

import psutil  # type: ignore[import-untyped]
import websockets

from bench.common import emit_result, log, raise_nofile_limit, run_async

IMPLEMENTATIONS = ("websockets-sansio", "websockets")


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return


def _serve(impl: str, port: int) -> None:
    import uvicorn

    uvicorn.run(_app, host="127.0.0.1", port=port, ws=impl, log_level="warning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _measure(impl: str, connections: int, batch: int) -> dict[str, float]:
    port = _free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.ws_floor", "--serve", impl, "--port", str(port)
    )
    opened: list[Any] = []
    try:
        url = f"ws://127.0.0.1:{port}/ws"
        deadline = time.monotonic() + 30
        while True:
            try:
                warm = await websockets.connect(url, compression=None)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        proc = psutil.Process(server.pid)
        before = proc.memory_info().rss
        for start in range(0, connections, batch):
            count = min(batch, connections - start)
            opened += await asyncio.gather(
                *(websockets.connect(url, compression=None) for _ in range(count))
            )
        await asyncio.sleep(3)
        after = proc.memory_info().rss
        await warm.close()
        return {
            "connections": float(len(opened)),
            "rss_before_mib": before / 2**20,
            "rss_after_mib": after / 2**20,
            "rss_per_connection_kib": (after - before) / len(opened) / 1024,
        }
    finally:
        for ws in opened:
            with contextlib.suppress(Exception):
                await ws.close()
        server.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait(), 10)


async def _main(args: argparse.Namespace) -> None:
    raise_nofile_limit(args.connections * 2 + 256)
    metrics: dict[str, float] = {}
    for impl in args.impl:
        log(f"{impl}: opening {args.connections} idle connections")
        got = await _measure(impl, args.connections, args.batch)
        for key, value in got.items():
            metrics[f"{impl}_{key}"] = value
        log(f"{impl}: {got['rss_per_connection_kib']:.1f} KiB per connection")
    emit_result(
        "ws_floor",
        metrics,
        {"connections": args.connections, "batch": args.batch, "implementations": args.impl},
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50, help="connections opened at once")
    parser.add_argument("--impl", nargs="+", default=list(IMPLEMENTATIONS))
    parser.add_argument("--serve", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve, args.port)
        return
    run_async(_main(args))


if __name__ == "__main__":
    main()
