"""Fan-out benchmark: one event stream delivered to N WebSocket subscribers.

Why: Conveyor's dashboard pushes job updates to every open browser tab. What matters is how the
server's memory grows per subscriber, what CPU it burns while idle and while delivering, and how
long the last subscriber waits for an event. This drives a server ("target") with
``bench.fanout_clients`` and measures exactly that; the baseline target is the bare relay in
``bench.relay``, and Conveyor plugs in as another target.

Timeline of one run:
  1. start the target; after 1 s read its RSS (``rss_empty``);
  2. open N subscribers over several client processes; wait until all are open;
  3. settle 2 s, then measure an idle window (default 20 s, one keepalive period of the
     ``websockets`` server): server CPU with N idle subscribers, and RSS
     (``rss_per_sub_kib = (rss_connected - rss_empty) / connected``);
  4. publish ``--events`` events at a fixed rate (one every ``--interval`` s), each stamped with
     the publisher's ``time.time()``; wait (bounded) until every subscriber has all of them;
  5. stop clients and target; report latency percentiles from every received message.

RSS and CPU are summed over the target's processes and their children (psutil).

Run: ``.venv/bin/python -m bench.fanout --subscribers 1000``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis

from bench.common import (
    DEFAULT_REDIS_URL,
    Metrics,
    bench_env,
    emit_result,
    log,
    new_run_id,
    require_loopback,
    run_async,
    stop_async_process_group,
    tree_cpu_seconds,
    tree_rss_bytes,
)
from bench.conveyor import ConveyorStack, GraphQLClient, submit_one
from bench.fanout_clients import ClientConfig, ClientFleet


class FanoutTarget(Protocol):
    """A server under test. Implement this (and register it in ``TARGETS``) to add one."""

    name: str

    async def start(self) -> None:
        """Launch the server process(es) and return once they accept subscribers."""

    def server_pids(self) -> list[int]:
        """Processes whose RSS and CPU are the server's cost (children are included)."""

    def client_config(self, events: int) -> ClientConfig:
        """Where and how subscribers connect (URL, protocol, token, query, timestamp path)."""

    async def publish(self, seq: int, total: int) -> None:
        """Cause one event that every subscriber must receive, stamped with ``time.time()``."""

    async def stop(self) -> None:
        """Stop everything ``start`` launched and clean up Redis keys (bounded)."""


TargetFactory = Callable[[str, dict[str, str]], FanoutTarget]


def job_update_event(seq: int, total: int, job_id: str) -> dict[str, Any]:
    """A message shaped like Conveyor's ``JobUpdate`` so frame sizes are comparable."""
    now = time.time()
    return {
        "jobId": job_id,
        "seq": seq,
        "type": "PROGRESS",
        "kind": "bench.noop",
        "queue": "default",
        "status": "RUNNING",
        "progress": seq / total,
        "progressMessage": f"step {seq} of {total}",
        "attempt": 1,
        "at": datetime.fromtimestamp(now, UTC).isoformat(),
        "ts": now,
    }


class RelayTarget:
    """The baseline: ``bench.relay`` in its own process, fed by Redis PUBLISH."""

    name = "relay"
    channel_name = "jobs"

    def __init__(self, redis_url: str, options: dict[str, str] | None = None) -> None:
        self.redis_url = require_loopback(redis_url)
        self.prefix = new_run_id("fanout") + ":"
        self.channel = self.prefix + self.channel_name
        self.job_id = str(uuid.uuid4())
        self.max_seconds = float((options or {}).get("max_seconds", "900"))
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.redis: Redis | None = None

    async def start(self) -> None:
        self.redis = Redis.from_url(self.redis_url)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.relay",
            "--port",
            "0",
            "--redis-url",
            self.redis_url,
            "--channel-prefix",
            self.prefix,
            "--max-seconds",
            str(self.max_seconds),
            stdout=asyncio.subprocess.PIPE,
            env=bench_env(),
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=30)
        if not line:
            raise RuntimeError(f"relay exited before listening (rc={await self.proc.wait()})")
        self.port = int(json.loads(line)["port"])

    def server_pids(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def client_config(self, events: int) -> ClientConfig:
        return ClientConfig(
            url=f"ws://127.0.0.1:{self.port}/ws/{self.channel_name}",
            protocol="raw",
            events=events,
        )

    async def publish(self, seq: int, total: int) -> None:
        assert self.redis is not None
        event = job_update_event(seq, total, self.job_id)
        await self.redis.publish(self.channel, orjson.dumps(event))

    async def stop(self) -> None:
        if self.proc is not None:
            await stop_async_process_group(self.proc)
            if self.proc.stdout is not None:
                final = await self.proc.stdout.read()
                if final.strip():
                    log(f"relay: {final.decode().strip().splitlines()[-1]}")
        if self.redis is not None:
            await self.redis.aclose()


JOB_UPDATES_QUERY = """
subscription($filter: JobFilter) {
  jobUpdates(filter: $filter) {
    jobId seq type kind queue status progress progressMessage attempt at
  }
}
"""


class ConveyorTarget:
    """Conveyor: one ``python -m conveyor serve`` process holding every subscription, plus one
    ``python -m conveyor worker``; each event is a real job moving through the worker.

    Every subscriber runs the dashboard's ``jobUpdates`` selection filtered to
    ``{kind: [demo.noop], status: [SUCCEEDED]}``. ``publish`` submits one ``demo.noop`` job
    (``submitJob`` over HTTP); the worker claims, runs and finishes it, and its SUCCEEDED update
    is the one message every subscriber must receive. Its ``at`` is the time of the finishing
    transaction in PostgreSQL, so latency = receipt - ``at`` covers commit, the worker's Redis
    publish, the API's hub, per-subscriber GraphQL execution and the WebSocket write. The two
    other updates of each job (QUEUED, RUNNING) reach every subscription too and are filtered
    out per subscriber, as a dashboard filter would. Server cost (RSS, CPU) is the API process
    alone.
    """

    name = "conveyor"

    def __init__(self, redis_url: str, options: dict[str, str] | None = None) -> None:
        options = options or {}
        self.redis_url = require_loopback(redis_url)
        self.concurrency = int(options.get("concurrency", "16"))
        self.stack = ConveyorStack("fanout", redis_url=redis_url)
        self.client: GraphQLClient | None = None
        self.published: list[str] = []
        # Optional: py-spy on the API from the first published event to the end.
        self.profile_dir = options.get("profile_dir")
        self.py_spy = options.get("py_spy")
        self.profilers: Any = None

    async def start(self) -> None:
        try:
            await self.stack.setup()
            await self.stack.start_api()
            await self.stack.start_worker(self.concurrency)
            self.client = self.stack.client(connections=2)
            # Warm-up before any subscriber connects: worker up, every code path imported.
            job_id = await submit_one(self.client, "demo.noop", {})
            if not await self._wait_succeeded(job_id, timeout=60):
                tail = self.stack.log_tail("worker-0")
                raise RuntimeError(f"warm-up job did not succeed: {tail}")
        except BaseException:
            await self.stop()
            raise

    async def _wait_succeeded(self, job_id: str, timeout: float) -> bool:
        assert self.client is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = await self.client.execute(
                "query($id: ID!) { job(id: $id) { status } }", {"id": job_id}
            )
            if (data.get("job") or {}).get("status") == "SUCCEEDED":
                return True
            await asyncio.sleep(0.05)
        return False

    def server_pids(self) -> list[int]:
        return [self.stack.api.pid] if self.stack.api else []

    def client_config(self, events: int) -> ClientConfig:
        return ClientConfig(
            url=self.stack.ws_url,
            protocol="graphql-ws",
            events=events,
            token=self.stack.key,
            query=JOB_UPDATES_QUERY,
            variables={"filter": {"kind": ["demo.noop"], "status": ["SUCCEEDED"]}},
            ts_path="data.jobUpdates.at",
        )

    async def publish(self, seq: int, total: int) -> None:
        assert self.client is not None
        if seq == 1 and self.profile_dir and self.py_spy and self.stack.api is not None:
            from pathlib import Path

            from bench.conveyor_throughput import Profilers

            self.profilers = Profilers(self.py_spy, Path(self.profile_dir))
            await self.profilers.attach("api_fanout", self.stack.api.pid)
        self.published.append(await submit_one(self.client, "demo.noop", {}))

    async def stop(self) -> None:
        if self.profilers is not None:
            written = await self.profilers.stop()
            self.profilers = None
            log(f"profiles: {written}")
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        await self.stack.stop()


TARGETS: dict[str, TargetFactory] = {
    "relay": RelayTarget,
    "conveyor": ConveyorTarget,
}


async def run_fanout(
    target: FanoutTarget,
    subscribers: int = 1000,
    events: int = 10,
    interval: float = 2.0,
    client_processes: int = 4,
    idle_window: float = 20.0,
) -> tuple[Metrics, dict[str, Any]]:
    """One fan-out run against ``target``; return (metrics, details). Never raises on slowness."""
    connect_timeout = 60.0 + subscribers / 50.0
    deliver_grace = max(5.0, interval * 2) + subscribers / 500.0
    hard_limit = connect_timeout + idle_window + 5 + events * interval + deliver_grace + 60
    details: dict[str, Any] = {}
    fleet: ClientFleet | None = None
    await target.start()
    try:
        pids = target.server_pids()
        await asyncio.sleep(1.0)
        rss_empty = tree_rss_bytes(pids)

        fleet = ClientFleet(
            target.client_config(events), subscribers, client_processes, max_seconds=hard_limit
        )
        ready = await fleet.start(timeout=connect_timeout)
        log(
            f"{target.name}: {ready['connected']:.0f}/{subscribers} subscribers connected "
            f"in {ready['connect_s']:.1f}s"
        )

        await asyncio.sleep(2.0)
        cpu_idle0 = tree_cpu_seconds(pids)
        await asyncio.sleep(idle_window)
        cpu_idle1 = tree_cpu_seconds(pids)
        rss_connected = tree_rss_bytes(pids)

        cpu_pub0 = tree_cpu_seconds(pids)
        t0 = time.monotonic()
        for seq in range(1, events + 1):
            delay = t0 + (seq - 1) * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await target.publish(seq, events)
        all_delivered = await fleet.wait_complete(timeout=deliver_grace)
        publish_wall = time.monotonic() - t0
        cpu_pub1 = tree_cpu_seconds(pids)

        merged = await fleet.stop()
        fleet = None
        connected = merged["metrics"]["connected"]
        metrics: Metrics = {
            "subscribers": float(subscribers),
            **merged["metrics"],
            "connect_s": ready["connect_s"],
            "events_published": float(events),
            "messages_expected": connected * events,
            "all_delivered_in_time": 1.0 if all_delivered else 0.0,
            "rss_empty_mib": rss_empty / 2**20,
            "rss_connected_mib": rss_connected / 2**20,
            "rss_per_sub_kib": (rss_connected - rss_empty) / max(connected, 1) / 1024,
            "idle_cpu_pct": 100.0 * (cpu_idle1 - cpu_idle0) / idle_window,
            "publish_cpu_pct": 100.0 * (cpu_pub1 - cpu_pub0) / publish_wall,
            "server_cpu_ms_per_event": 1000.0 * (cpu_pub1 - cpu_pub0) / max(events, 1),
        }
        details = {
            "errors_by_kind": merged["errors_by_kind"],
            "error_samples": merged["error_samples"],
            "lost_client_processes": merged["lost_client_processes"],
        }
        return metrics, details
    finally:
        if fleet is not None:
            await fleet.stop(timeout=10)
        await target.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="relay")
    parser.add_argument(
        "--target-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to the target factory (e.g. token=..., url=...)",
    )
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between events")
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument(
        "--idle-window",
        type=float,
        default=20.0,
        help="seconds of idle CPU measurement; >= the server's keepalive interval (websockets: 20)",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)
    options = dict(opt.split("=", 1) for opt in args.target_option)
    target = TARGETS[args.target](args.redis_url, options)

    metrics, details = run_async(
        run_fanout(
            target,
            subscribers=args.subscribers,
            events=args.events,
            interval=args.interval,
            client_processes=args.client_processes,
            idle_window=args.idle_window,
        )
    )
    config = {
        "target": args.target,
        "subscribers": args.subscribers,
        "events": args.events,
        "interval_s": args.interval,
        "idle_window_s": args.idle_window,
        "client_processes": args.client_processes,
        **details,
    }
    emit_result(f"fanout_{args.target}", metrics, config)


if __name__ == "__main__":
    main()
