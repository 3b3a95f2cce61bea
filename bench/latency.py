"""Latency under a steady offered load: submit -> RUNNING and submit -> SUCCEEDED, as a client
observes them.

Why: throughput says how many jobs per second the system sustains; a dashboard user or an API
client cares how long one job takes to start and to finish while others are being submitted.
Both targets get the same open-loop load (``--rate`` submissions per second for ``--duration``
seconds, each submission fired on its own schedule, never waiting for earlier ones, so a slow
response cannot hide queueing: no coordinated omission).

Targets:

* ``conveyor``: one submission = one ``submitJob`` mutation (``demo.noop``) over HTTP to
  ``python -m conveyor serve``; one ``python -m conveyor worker``. The client observes the job
  through ONE WebSocket subscription, ``jobUpdates(filter: {kind: ["demo.noop"], status: [RUNNING,
  SUCCEEDED]})`` (cheaper than a ``jobEvents`` subscription per job, and what a dashboard does):
  latency = receipt of the job's RUNNING / SUCCEEDED update - the time the client started the
  mutation. From PostgreSQL afterwards: created -> started and created -> finished per job
  (server-side only, no HTTP or WebSocket).
* ``raw``: raw taskiq + taskiq-redis ``RedisStreamBroker`` (as ``bench.raw_taskiq``) and one
  ``taskiq worker`` process; the task PUBLISHes its token on a Redis channel the client is
  subscribed to: latency = receipt - the time the client called ``kiq()``. There is no separate
  "started" signal (the task is a no-op), so RUNNING figures are Conveyor's only.

Run: ``.venv/bin/python -m bench.latency --target conveyor --rate 200 --duration 20``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis
from taskiq_redis import RedisStreamBroker
from websockets.asyncio.client import connect

from bench.common import (
    DEFAULT_REDIS_URL,
    Metrics,
    bench_env,
    emit_result,
    new_run_id,
    percentile,
    require_loopback,
    run_async,
    stop_process_group,
    tree_cpu_seconds,
)
from bench.conveyor import SUBMIT_JOB, ConveyorStack, submit_one
from bench.http_client import JSONPoster

TARGETS = ("conveyor", "raw")
ENV_REDIS_URL = "BENCH_REDIS_URL"
ENV_QUEUE = "BENCH_QUEUE"
ENV_CHANNEL = "BENCH_CHANNEL"
TASK_NAME = "bench.ping"

# ---------------------------------------------------------------------------------------------
# Raw taskiq side: a task that says "done" on a Redis channel.
# ---------------------------------------------------------------------------------------------

_worker_redis: Redis | None = None


async def ping(token: str) -> None:
    """The job: tell the client it ran (one PUBLISH on a long-lived connection)."""
    global _worker_redis
    if _worker_redis is None:
        _worker_redis = Redis.from_url(os.environ.get(ENV_REDIS_URL, DEFAULT_REDIS_URL))
    await _worker_redis.publish(os.environ[ENV_CHANNEL], token)


def make_broker() -> RedisStreamBroker:
    """For ``taskiq worker bench.latency:make_broker`` (configured from the environment)."""
    return build_broker(
        os.environ.get(ENV_REDIS_URL, DEFAULT_REDIS_URL), os.environ.get(ENV_QUEUE, "bench:lat")
    )


def build_broker(redis_url: str, queue: str) -> RedisStreamBroker:
    broker = RedisStreamBroker(
        url=require_loopback(redis_url),
        queue_name=queue,
        consumer_group_name="bench",
        consumer_name=f"bench-{socket.gethostname()}-{os.getpid()}",
        consumer_id="0",
    )
    broker.register_task(ping, task_name=TASK_NAME)
    return broker


# ---------------------------------------------------------------------------------------------
# The open-loop driver shared by both targets.
# ---------------------------------------------------------------------------------------------


async def drive(
    rate: float,
    duration: float,
    submit: Callable[[int], Coroutine[Any, Any, None]],
    max_wait: float = 30.0,
) -> tuple[int, list[float]]:
    """Call ``submit(i)`` at ``t0 + i / rate`` for ``duration`` seconds, each in its own task.

    Submissions still unanswered ``max_wait`` seconds after the last start are cancelled (and
    end up missing). Returns (submissions, lateness of each start in ms: actual - scheduled).
    """
    total = int(rate * duration)
    lateness: list[float] = []
    tasks: set[asyncio.Task[None]] = set()
    t0 = time.perf_counter() + 0.05
    for i in range(total):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lateness.append(max(0.0, (time.perf_counter() - (t0 + i / rate)) * 1000.0))
        task = asyncio.create_task(submit(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=max_wait)
    for task in list(tasks):  # still waiting after max_wait: counted as missing
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5)
    return total, lateness


def _pct(values: list[float], prefix: str) -> Metrics:
    ordered = sorted(values)
    return {
        f"{prefix}_p50_ms": percentile(ordered, 50),
        f"{prefix}_p90_ms": percentile(ordered, 90),
        f"{prefix}_p99_ms": percentile(ordered, 99),
        f"{prefix}_max_ms": ordered[-1] if ordered else float("nan"),
    }


# ---------------------------------------------------------------------------------------------
# Conveyor
# ---------------------------------------------------------------------------------------------

LATENCY_SUBSCRIPTION = """
subscription($filter: JobFilter) {
  jobUpdates(filter: $filter) { jobId status at }
}
"""


NOOP_INPUT = {"kind": "demo.noop", "payload": {}}


async def run_conveyor(
    rate: float,
    duration: float,
    redis_url: str,
    concurrency: int,
    grace: float,
    connections: int = 32,
) -> tuple[Metrics, dict[str, Any]]:
    stack = ConveyorStack("lat", redis_url=redis_url)
    config: dict[str, Any] = {
        "target": "conveyor",
        "observed_through": "one jobUpdates subscription (kind demo.noop, status RUNNING or "
        "SUCCEEDED) over graphql-transport-ws",
        "submit": "submitJob over HTTP, one per job",
        "worker_concurrency": concurrency,
    }
    sent: dict[str, float] = {}  # job id -> time.time() when the mutation started
    mutation_ms: list[float] = []
    seen: dict[tuple[str, str], float] = {}  # (job id, status) -> receipt time.time()
    errors: list[str] = []
    try:
        await stack.setup()
        await stack.start_api()
        await stack.start_worker(concurrency)
        assert stack.api is not None
        client = stack.client(connections=2)
        # The load itself goes through a lean keep-alive client (see bench.http_client).
        poster = JSONPoster(
            f"{stack.base_url}/graphql",
            {"Authorization": f"Bearer {stack.key}"},
            connections=connections,
        )
        try:
            async with connect(
                stack.ws_url,
                subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                compression=None,
                ping_interval=None,
                max_size=2**22,
                proxy=None,
            ) as ws:
                await ws.send(
                    json.dumps(
                        {
                            "type": "connection_init",
                            "payload": {"authorization": f"Bearer {stack.key}"},
                        }
                    )
                )
                ack = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"no connection_ack: {ack}")
                await ws.send(
                    json.dumps(
                        {
                            "id": "1",
                            "type": "subscribe",
                            "payload": {
                                "query": LATENCY_SUBSCRIPTION,
                                "variables": {
                                    "filter": {
                                        "kind": ["demo.noop"],
                                        "status": ["RUNNING", "SUCCEEDED"],
                                    }
                                },
                            },
                        }
                    )
                )

                async def reader() -> None:
                    async for raw in ws:
                        now = time.time()
                        message = orjson.loads(raw)
                        if message.get("type") == "ping":
                            await ws.send('{"type":"pong"}')
                            continue
                        if message.get("type") != "next":
                            errors.append(str(message)[:300])
                            continue
                        update = message["payload"]["data"]["jobUpdates"]
                        seen.setdefault((update["jobId"], update["status"]), now)

                read_task = asyncio.create_task(reader())
                # Warm-up (not measured): the worker is up and the subscription delivers.
                warm = await submit_one(client, "demo.noop", {})
                deadline = time.monotonic() + 60
                while (warm, "SUCCEEDED") not in seen and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                if (warm, "SUCCEEDED") not in seen:
                    raise RuntimeError(f"warm-up not observed: {stack.log_tail('worker-0')}")

                noop = {"query": SUBMIT_JOB, "variables": {"input": NOOP_INPUT}}

                async def submit(_: int) -> None:
                    started = time.time()
                    try:
                        body = await poster.post(noop)
                        item = body["data"]["submitJob"]
                        job_id = item["id"]
                    except Exception as exc:
                        errors.append(f"submit: {exc!r}"[:300])
                        return
                    mutation_ms.append((time.time() - started) * 1000.0)
                    sent[job_id] = started

                cpu_api0 = tree_cpu_seconds([stack.api.pid])
                cpu_worker0 = tree_cpu_seconds([p.pid for p in stack.workers])
                wall0 = time.perf_counter()
                total, lateness = await drive(rate, duration, submit)
                offered_s = time.perf_counter() - wall0
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and any(  # noqa: ASYNC110 - bounded poll
                    (j, "SUCCEEDED") not in seen for j in sent
                ):
                    await asyncio.sleep(0.05)
                wall = time.perf_counter() - wall0
                cpu_api = tree_cpu_seconds([stack.api.pid]) - cpu_api0
                cpu_worker = tree_cpu_seconds([p.pid for p in stack.workers]) - cpu_worker0
                read_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await read_task
        finally:
            await client.aclose()
            await poster.aclose()

        running = [
            (seen[(j, "RUNNING")] - t) * 1000 for j, t in sent.items() if (j, "RUNNING") in seen
        ]
        done = [
            (seen[(j, "SUCCEEDED")] - t) * 1000 for j, t in sent.items() if (j, "SUCCEEDED") in seen
        ]
        server = await _server_side(stack.dsn, list(sent))
        unseen = [j for j in sent if (j, "SUCCEEDED") not in seen]
        config["unobserved_sample"] = await _describe(
            stack.dsn, unseen[:5], {j: (j, "RUNNING") in seen for j in unseen[:5]}
        )
        config["http_connections"] = connections
        metrics: Metrics = {
            "offered_per_s": rate,
            "submitted": float(len(sent)),
            "completed": float(len(done)),
            "missing": float(total - len(done)),
            "achieved_per_s": len(sent) / offered_s if offered_s > 0 else 0.0,
            **_pct(done, "done"),
            **_pct(running, "running"),
            "unobserved": float(len(unseen)),
            **_pct(mutation_ms, "submit"),
            **server,
            "send_lateness_p99_ms": percentile(sorted(lateness), 99),
            "api_cpu_pct": 100.0 * cpu_api / wall,
            "worker_cpu_pct": 100.0 * cpu_worker / wall,
            "errors": float(len(errors)),
        }
        config["error_samples"] = errors[:5]
        return metrics, config
    finally:
        await stack.stop()


async def _describe(dsn: str, job_ids: list[str], running_seen: dict[str, bool]) -> list[Any]:
    """What PostgreSQL says about jobs the client never saw finish (diagnostics)."""
    if not job_ids:
        return []
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT id::text AS id, status, attempt, last_seq, "
            "extract(epoch FROM finished_at - created_at) * 1000 AS finish_ms "
            "FROM jobs WHERE id = ANY($1::uuid[])",
            job_ids,
        )
    finally:
        await conn.close()
    return [{**dict(r), "running_update_seen": running_seen.get(r["id"])} for r in rows]


async def _server_side(dsn: str, job_ids: list[str]) -> Metrics:
    """created -> started / finished per job, from PostgreSQL's own timestamps."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM started_at - created_at) * 1000 AS start_ms, "
            "extract(epoch FROM finished_at - created_at) * 1000 AS finish_ms "
            "FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'SUCCEEDED'",
            job_ids,
        )
    finally:
        await conn.close()
    start = [float(r["start_ms"]) for r in rows]
    finish = [float(r["finish_ms"]) for r in rows]
    out = _pct(start, "server_started")
    out.update(_pct(finish, "server_finished"))
    return out


# ---------------------------------------------------------------------------------------------
# Raw taskiq
# ---------------------------------------------------------------------------------------------


def _start_raw_worker(env: dict[str, str], max_async_tasks: int) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "taskiq",
        "worker",
        "bench.latency:make_broker",
        "--workers",
        "1",
        "--log-level",
        "WARNING",
        "--max-async-tasks",
        str(max_async_tasks),
        "--shutdown-timeout",
        "2",
        "--wait-tasks-timeout",
        "5",
    ]
    return subprocess.Popen(argv, env=env, start_new_session=True)


async def run_raw(
    rate: float, duration: float, redis_url: str, max_async_tasks: int, grace: float
) -> tuple[Metrics, dict[str, Any]]:
    require_loopback(redis_url)
    run_id = new_run_id("lat")
    queue, channel = f"{run_id}:stream", f"{run_id}:done"
    env = bench_env(**{ENV_REDIS_URL: redis_url, ENV_QUEUE: queue, ENV_CHANNEL: channel})
    broker = build_broker(redis_url, queue)
    task = broker.find_task(TASK_NAME)
    assert task is not None
    redis = Redis.from_url(redis_url)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    worker: subprocess.Popen[bytes] | None = None
    sent: dict[str, float] = {}
    kiq_ms: list[float] = []
    seen: dict[str, float] = {}
    errors: list[str] = []
    config: dict[str, Any] = {
        "target": "raw",
        "observed_through": "Redis PUBLISH from the task, client subscribed",
        "max_async_tasks": max_async_tasks,
        "consumer_id": "0",
    }
    try:
        await broker.startup()
        await pubsub.subscribe(channel)

        async def reader() -> None:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    seen.setdefault(message["data"].decode(), time.time())

        read_task = asyncio.create_task(reader())
        worker = _start_raw_worker(env, max_async_tasks)
        await task.kiq("warm-up")
        deadline = time.monotonic() + 60
        while "warm-up" not in seen and time.monotonic() < deadline and worker.poll() is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if "warm-up" not in seen:
            raise RuntimeError("raw taskiq warm-up not observed")

        async def submit(i: int) -> None:
            token = str(i)
            started = time.time()
            try:
                await task.kiq(token)
            except Exception as exc:
                errors.append(f"kiq: {exc!r}"[:300])
                return
            kiq_ms.append((time.time() - started) * 1000.0)
            sent[token] = started

        cpu0 = tree_cpu_seconds([worker.pid])
        wall0 = time.perf_counter()
        total, lateness = await drive(rate, duration, submit)
        offered_s = time.perf_counter() - wall0
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(t not in seen for t in sent):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - wall0
        cpu_worker = tree_cpu_seconds([worker.pid]) - cpu0
        read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await read_task
        done = [(seen[t] - s) * 1000 for t, s in sent.items() if t in seen]
        metrics: Metrics = {
            "offered_per_s": rate,
            "submitted": float(len(sent)),
            "completed": float(len(done)),
            "missing": float(total - len(done)),
            "achieved_per_s": len(sent) / offered_s if offered_s > 0 else 0.0,
            **_pct(done, "done"),
            **_pct(kiq_ms, "submit"),
            "send_lateness_p99_ms": percentile(sorted(lateness), 99),
            "worker_cpu_pct": 100.0 * cpu_worker / wall,
            "errors": float(len(errors)),
        }
        config["error_samples"] = errors[:5]
        return metrics, config
    finally:
        if worker is not None:
            stop_process_group(worker)
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]
        await broker.shutdown()
        keys = [k async for k in redis.scan_iter(match=f"*{run_id}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=TARGETS, default="conveyor")
    parser.add_argument("--rate", type=float, default=200.0, help="submissions per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of offered load")
    parser.add_argument("--grace", type=float, default=15.0, help="max seconds to wait after")
    parser.add_argument("--concurrency", type=int, default=16, help="Conveyor worker concurrency")
    parser.add_argument("--max-async-tasks", type=int, default=100, help="raw taskiq worker")
    parser.add_argument("--connections", type=int, default=32, help="Conveyor: HTTP connections")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)
    if args.target == "conveyor":
        coro = run_conveyor(
            args.rate,
            args.duration,
            args.redis_url,
            args.concurrency,
            args.grace,
            args.connections,
        )
    else:
        coro = run_raw(args.rate, args.duration, args.redis_url, args.max_async_tasks, args.grace)
    metrics, config = run_async(coro)
    config.update({"rate": args.rate, "duration_s": args.duration})
    emit_result(f"latency_{args.target}", metrics, config)


if __name__ == "__main__":
    main()
