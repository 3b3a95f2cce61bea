"""Client-side load generator for WebSocket fan-out: N subscribers over several processes.

Why: a fan-out figure is only meaningful if the subscribers are real sockets doing real protocol
work, and one Python process cannot hold 10,000 of them without itself becoming the bottleneck.
The same client code drives the bare relay baseline (``--protocol raw``) and Conveyor's GraphQL
subscriptions (``--protocol graphql-ws``), so both sides pay identical client costs.

Each data message carries the publisher's ``time.time()``; a client records ``receipt - publish``
for every message on every connection. Results: latency p50/p90/p99/max, the median over events
of the time until the *last* subscriber had the event, connection and error counts, messages
missing. Clients share the machine with the server, so latencies include client scheduling.

Protocols (``ClientProtocol``):

* ``raw`` - the server pushes JSON text frames ``{"ts": <epoch seconds>, ...}``; clients send
  nothing.
* ``graphql-ws`` - the ``graphql-transport-ws`` subprotocol: ``connection_init`` with payload
  ``{"authorization": "Bearer <token>"}``, wait for ``connection_ack``, one ``subscribe`` with
  ``--query``/``--variables``, then ``next`` messages whose payload holds the timestamp at
  ``--ts-path`` (dotted, e.g. ``data.jobUpdates.at``; float epoch seconds or ISO 8601). ``ping``
  is answered with ``pong``; ``error``/``complete`` count as errors.

Process protocol (between ``ClientFleet`` and its ``--child`` processes): a child prints JSON
lines ``ready`` (after all its connections are open and subscribed) and ``complete`` (when every
connection has ``--events`` messages); it stops on a ``stop`` line on stdin or after
``--max-seconds``, writes its samples to ``--out`` and prints ``done``.

Run standalone (connects, waits for ``--events`` messages per connection, prints JSON):
``.venv/bin/python -m bench.fanout_clients --url ws://127.0.0.1:8765/ws/bench --connections 1000``
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.common import (
    bench_env,
    log,
    percentile,
    raise_nofile_limit,
    require_loopback,
    run_async,
)

PROTOCOLS = ("raw", "graphql-ws")
DEFAULT_TS_PATH = "data.jobUpdates.at"
MAX_ERROR_SAMPLES = 5


class ProtocolError(Exception):
    """The server said something the benchmark does not accept (counted as an error)."""


@dataclass(frozen=True)
class ClientConfig:
    """Everything a child process needs; passed on its command line."""

    url: str
    protocol: str = "raw"
    events: int = 10
    token: str = ""
    query: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    ts_path: str = DEFAULT_TS_PATH
    open_timeout: float = 30.0
    connect_concurrency: int = 64

    def to_argv(self) -> list[str]:
        return ["--config-json", json.dumps(asdict(self))]


# --------------------------------------------------------------------------------------------
# Protocols: the hook where a subscriber's wire format lives.
# --------------------------------------------------------------------------------------------


class ClientProtocol(abc.ABC):
    """How one subscriber opens its subscription and reads publish timestamps from messages."""

    subprotocols: tuple[str, ...] = ()

    @abc.abstractmethod
    async def handshake(self, ws: ClientConnection) -> None:
        """Run after the WebSocket opens; on return the subscription must be active."""

    @abc.abstractmethod
    async def handle(self, ws: ClientConnection, raw: str | bytes) -> float | None:
        """Return the publish timestamp of a data message, None for a control message.

        Raise ``ProtocolError`` for anything that ends the subscription.
        """


class RawProtocol(ClientProtocol):
    """The relay baseline: every frame is JSON with a top-level ``ts``."""

    async def handshake(self, ws: ClientConnection) -> None:
        """Nothing to do: the URL path names the channel."""

    async def handle(self, ws: ClientConnection, raw: str | bytes) -> float | None:
        return float(orjson.loads(raw)["ts"])


def parse_timestamp(value: object) -> float:
    """Epoch seconds from a float/int, a numeric string or an ISO 8601 datetime (UTC if naive)."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.timestamp()
    raise ProtocolError(f"unusable timestamp {value!r}")


def extract_path(payload: object, dotted: str) -> object:
    node = payload
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ProtocolError(f"no {dotted!r} in payload: {str(payload)[:200]}")
    return node


class GraphQLTransportWSProtocol(ClientProtocol):
    """``graphql-transport-ws`` (the protocol strawberry serves), one subscription per socket."""

    subprotocols = ("graphql-transport-ws",)
    subscription_id = "1"

    def __init__(
        self,
        token: str,
        query: str,
        variables: dict[str, Any],
        ts_path: str,
        ack_timeout: float,
    ) -> None:
        if not query:
            raise ValueError("graphql-ws needs --query")
        self.init = orjson.dumps(
            {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        ).decode()
        self.subscribe = orjson.dumps(
            {
                "id": self.subscription_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables},
            }
        ).decode()
        self.ts_path = ts_path
        self.ack_timeout = ack_timeout

    async def handshake(self, ws: ClientConnection) -> None:
        await ws.send(self.init)
        async with asyncio.timeout(self.ack_timeout):
            while True:
                message = orjson.loads(await ws.recv())
                kind = message.get("type")
                if kind == "connection_ack":
                    break
                if kind == "ping":
                    await ws.send('{"type":"pong"}')
                    continue
                raise ProtocolError(f"expected connection_ack, got {str(message)[:200]}")
        await ws.send(self.subscribe)

    async def handle(self, ws: ClientConnection, raw: str | bytes) -> float | None:
        message = orjson.loads(raw)
        kind = message.get("type")
        if kind == "next":
            payload = message.get("payload") or {}
            if payload.get("errors"):
                raise ProtocolError(f"graphql errors: {str(payload['errors'])[:200]}")
            return parse_timestamp(extract_path(payload, self.ts_path))
        if kind == "ping":
            await ws.send('{"type":"pong"}')
            return None
        if kind == "pong":
            return None
        raise ProtocolError(f"subscription ended: {str(message)[:200]}")


def make_protocol(config: ClientConfig) -> ClientProtocol:
    if config.protocol == "raw":
        return RawProtocol()
    if config.protocol == "graphql-ws":
        return GraphQLTransportWSProtocol(
            token=config.token,
            query=config.query,
            variables=config.variables,
            ts_path=config.ts_path,
            ack_timeout=config.open_timeout,
        )
    raise ValueError(f"unknown protocol {config.protocol!r}; choose from {PROTOCOLS}")


# --------------------------------------------------------------------------------------------
# Child process: holds a share of the connections.
# --------------------------------------------------------------------------------------------


@dataclass
class ChildState:
    connected: int = 0
    failed: int = 0
    settled_connections: int = 0  # got all events, or died trying
    received: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    per_event: dict[float, list[float]] = field(default_factory=dict)  # ts -> [count, max ms]
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    missing: int = 0

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"{kind}: {detail[:300]}")


def _emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def _stdin_stop(stop: asyncio.Event) -> None:
    """Set ``stop`` when the parent writes ``stop`` (or closes stdin)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line or line.strip() == b"stop":
            stop.set()
            return


async def child_main(config: ClientConfig, connections: int, out: Path, max_seconds: float) -> None:
    require_loopback(config.url)
    raise_nofile_limit()
    hard_deadline = time.monotonic() + max_seconds
    protocol = make_protocol(config)
    state = ChildState()
    stop = asyncio.Event()
    all_complete = asyncio.Event()
    stdin_task = asyncio.create_task(_stdin_stop(stop))
    semaphore = asyncio.Semaphore(config.connect_concurrency)
    subprotocols = [Subprotocol(p) for p in protocol.subprotocols] or None

    async def open_one() -> ClientConnection | None:
        async with semaphore:
            if stop.is_set():
                return None
            ws: ClientConnection | None = None
            try:
                ws = await connect(
                    config.url,
                    subprotocols=subprotocols,
                    compression=None,
                    open_timeout=config.open_timeout,
                    ping_interval=None,  # browsers don't ping; the server's keepalive still runs
                    close_timeout=2,
                    max_size=2**20,
                    proxy=None,
                )
                await protocol.handshake(ws)
            except Exception as exc:  # every failure is counted, none is fatal
                state.failed += 1
                state.error(f"connect:{type(exc).__name__}", str(exc))
                if ws is not None:
                    ws.transport.abort()
                return None
            state.connected += 1
            return ws

    started = time.monotonic()
    opened = [ws for ws in await asyncio.gather(*(open_one() for _ in range(connections))) if ws]
    _emit(
        "ready",
        connected=state.connected,
        failed=state.failed,
        connect_s=time.monotonic() - started,
    )

    def settle() -> None:
        state.settled_connections += 1
        if state.settled_connections == len(opened):
            all_complete.set()

    async def receive(ws: ClientConnection) -> None:
        got = 0
        try:
            async for raw in ws:
                now = time.time()
                ts = await protocol.handle(ws, raw)
                if ts is None:
                    continue
                latency_ms = (now - ts) * 1000.0
                state.latencies_ms.append(latency_ms)
                slot = state.per_event.get(ts)
                if slot is None:
                    state.per_event[ts] = [1.0, latency_ms]
                else:
                    slot[0] += 1
                    slot[1] = max(slot[1], latency_ms)
                got += 1
                state.received += 1
                if got == config.events:
                    settle()
        except ConnectionClosed as exc:
            if not stop.is_set():
                code = exc.rcvd.code if exc.rcvd else "none"
                state.error(f"closed:{code}", str(exc))
        except ProtocolError as exc:
            state.error("protocol", str(exc))
        except Exception as exc:
            state.error(f"receive:{type(exc).__name__}", str(exc))
        finally:
            state.missing += max(0, config.events - got)
            if got < config.events:
                settle()  # a dead connection will not get its events: don't wait for it

    receivers = [asyncio.create_task(receive(ws)) for ws in opened]
    if not opened:
        all_complete.set()
    complete_task = asyncio.create_task(all_complete.wait())
    stop_task = asyncio.create_task(stop.wait())
    remaining = max(0.0, hard_deadline - time.monotonic())
    done, _ = await asyncio.wait(
        {complete_task, stop_task}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
    )
    if complete_task in done:
        _emit("complete", received=state.received)
        await asyncio.wait({stop_task}, timeout=max(0.0, hard_deadline - time.monotonic()))
    stop.set()
    for task in (complete_task, stop_task, stdin_task):
        task.cancel()

    # Close politely but briefly; whatever is left is aborted when the process exits.
    async def close(ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            await ws.close()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(close(ws) for ws in opened)), timeout=10)
    for task in receivers:
        task.cancel()
    await asyncio.gather(*receivers, return_exceptions=True)

    result = {
        "connected": state.connected,
        "failed": state.failed,
        "received": state.received,
        "missing": state.missing,
        "errors": dict(state.errors),
        "error_samples": state.error_samples,
        "latencies_ms": [round(v, 3) for v in state.latencies_ms],
        "per_event": [[ts, count, mx] for ts, (count, mx) in state.per_event.items()],
    }
    await asyncio.to_thread(out.write_text, json.dumps(result))
    _emit("done")


# --------------------------------------------------------------------------------------------
# Parent side: spawn children, wait for them, merge their samples.
# --------------------------------------------------------------------------------------------


@dataclass
class _Child:
    proc: asyncio.subprocess.Process
    out: Path
    connections: int
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    complete: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ready_info: dict[str, Any] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None


class ClientFleet:
    """N subscriber connections spread over ``processes`` child processes."""

    def __init__(
        self,
        config: ClientConfig,
        connections: int,
        processes: int = 4,
        max_seconds: float = 600.0,
    ) -> None:
        require_loopback(config.url)
        make_protocol(config)  # validate options before spawning anything
        self.config = config
        self.connections = connections
        self.processes = max(1, min(processes, connections))
        self.max_seconds = max_seconds
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-fanout-")
        self._children: list[_Child] = []

    async def _read(self, child: _Child) -> None:
        assert child.proc.stdout is not None
        while line := await child.proc.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            event = message.get("event")
            if event == "ready":
                child.ready_info = message
                child.ready.set()
            elif event == "complete":
                child.complete.set()
            elif event == "done":
                child.done.set()
        for flag in (child.ready, child.complete, child.done):
            flag.set()  # a dead child must not keep anyone waiting

    async def start(self, timeout: float) -> dict[str, float]:
        """Spawn the children and wait until every connection is open (or failed)."""
        base, extra = divmod(self.connections, self.processes)
        for index in range(self.processes):
            count = base + (1 if index < extra else 0)
            out = Path(self._tmp.name) / f"child-{index}.json"
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.fanout_clients",
                "--child",
                "--connections",
                str(count),
                "--out",
                str(out),
                "--max-seconds",
                str(self.max_seconds),
                *self.config.to_argv(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=bench_env(),
            )
            child = _Child(proc=proc, out=out, connections=count)
            child.reader = asyncio.create_task(self._read(child))
            self._children.append(child)
        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(c.ready.wait() for c in self._children)), timeout=timeout
            )
        infos = [c.ready_info for c in self._children]
        return {
            "connected": float(sum(i.get("connected", 0) for i in infos)),
            "connect_failed": float(sum(i.get("failed", 0) for i in infos)),
            "connect_s": time.monotonic() - started,
        }

    async def wait_complete(self, timeout: float) -> bool:
        """Wait until every child saw every event on every connection (bounded)."""
        try:
            await asyncio.wait_for(
                asyncio.gather(*(c.complete.wait() for c in self._children)), timeout=timeout
            )
        except TimeoutError:
            return False
        return True

    async def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        """Tell the children to stop, collect and merge their samples."""
        for child in self._children:
            if child.proc.stdin is not None and child.proc.returncode is None:
                with contextlib.suppress(ConnectionError):
                    child.proc.stdin.write(b"stop\n")
                    await child.proc.stdin.drain()
        for child in self._children:
            try:
                await asyncio.wait_for(child.proc.wait(), timeout=timeout)
            except TimeoutError:
                log(f"client child {child.proc.pid} did not stop, killing it")
                child.proc.kill()
                await child.proc.wait()
            if child.reader is not None:
                await child.reader
        try:
            return self._merge()
        finally:
            self._tmp.cleanup()

    def _merge(self) -> dict[str, Any]:
        latencies: list[float] = []
        per_event: dict[float, list[float]] = {}
        errors: Counter[str] = Counter()
        samples: list[str] = []
        totals = Counter[str]()
        lost_children = 0
        for child in self._children:
            if not child.out.exists():
                lost_children += 1
                errors["client_process_lost"] += child.connections
                continue
            data = json.loads(child.out.read_text())
            latencies.extend(data["latencies_ms"])
            for key in ("connected", "failed", "received", "missing"):
                totals[key] += data[key]
            errors.update(data["errors"])
            samples.extend(data["error_samples"][: MAX_ERROR_SAMPLES - len(samples)])
            for ts, count, mx in data["per_event"]:
                slot = per_event.setdefault(ts, [0.0, 0.0])
                slot[0] += count
                slot[1] = max(slot[1], mx)
        latencies.sort()
        event_max = sorted(mx for _, mx in per_event.values())
        return {
            "metrics": {
                "connected": float(totals["connected"]),
                "connect_failed": float(totals["failed"]),
                "messages_received": float(totals["received"]),
                "messages_missing": float(totals["missing"]),
                "errors": float(sum(errors.values())),
                "latency_p50_ms": percentile(latencies, 50),
                "latency_p90_ms": percentile(latencies, 90),
                "latency_p99_ms": percentile(latencies, 99),
                "latency_max_ms": latencies[-1] if latencies else float("nan"),
                "all_delivered_ms_median": percentile(event_max, 50),
                "events_seen": float(len(per_event)),
            },
            "errors_by_kind": dict(errors),
            "error_samples": samples,
            "lost_client_processes": lost_children,
        }


async def run_standalone(
    config: ClientConfig, connections: int, processes: int, max_seconds: float
) -> dict[str, Any]:
    fleet = ClientFleet(config, connections, processes, max_seconds=max_seconds)
    ready = await fleet.start(timeout=max_seconds)
    log(f"clients ready: {ready}; waiting for {config.events} events per connection")
    await fleet.wait_complete(timeout=max_seconds)
    result = await fleet.stop()
    result["metrics"].update({"connect_s": ready["connect_s"]})
    return result


def _config_from_args(args: argparse.Namespace) -> ClientConfig:
    if args.config_json:
        return ClientConfig(**json.loads(args.config_json))
    if not args.url:
        raise SystemExit("--url is required")
    return ClientConfig(
        url=args.url,
        protocol=args.protocol,
        events=args.events,
        token=args.token,
        query=args.query,
        variables=json.loads(args.variables),
        ts_path=args.ts_path,
        open_timeout=args.open_timeout,
        connect_concurrency=args.connect_concurrency,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="ws://127.0.0.1:PORT/... (loopback only)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="raw")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--events", type=int, default=10, help="data messages per connection")
    parser.add_argument("--token", default="", help="graphql-ws: API key for connection_init")
    parser.add_argument("--query", default="", help="graphql-ws: subscription document")
    parser.add_argument("--variables", default="{}", help="graphql-ws: JSON variables")
    parser.add_argument("--ts-path", default=DEFAULT_TS_PATH, help="graphql-ws: timestamp path")
    parser.add_argument("--open-timeout", type=float, default=30.0)
    parser.add_argument("--connect-concurrency", type=int, default=64, help="per process")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="hard stop")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config-json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    config = _config_from_args(args)
    if args.child:
        run_async(child_main(config, args.connections, args.out, args.max_seconds))
        return
    result = run_async(run_standalone(config, args.connections, args.processes, args.max_seconds))
    print(json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
