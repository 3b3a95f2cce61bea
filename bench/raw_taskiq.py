"""Throughput baseline: no-op jobs through raw taskiq + taskiq-redis ``RedisStreamBroker``.

Why: Conveyor adds a durable PostgreSQL lifecycle, an API and events on top of taskiq. This
measures what the bare transport does on the same machine (no database, no API, one worker
process via the real ``taskiq worker`` CLI), so Conveyor's figure can be read as "x% of raw
taskiq" instead of as an absolute number.

How: the producer creates the consumer group at id ``0`` before anything is sent (taskiq-redis
creates it at ``$`` and would lose earlier messages), starts one ``taskiq worker`` process and
waits until it has acknowledged one warm-up job, then kicks ``--jobs`` no-op tasks from
``--senders`` concurrent coroutines. Completion is read from Redis itself: ``XINFO GROUPS``
``entries-read`` and ``pending`` say how many messages were delivered and acknowledged, so the
worker needs no instrumentation and the task stays a true no-op. ``jobs_per_s`` is jobs divided by
the time from the first send to the last acknowledgement (polled every ``--poll-ms``).

Run: ``.venv/bin/python -m bench.raw_taskiq --jobs 20000``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from taskiq_redis import RedisStreamBroker

from bench.common import (
    DEFAULT_REDIS_URL,
    Metrics,
    bench_env,
    emit_result,
    log,
    new_run_id,
    require_loopback,
    run_async,
    stop_process_group,
    throughput_metrics,
    tree_cpu_seconds,
)

TASK_NAME = "bench.noop"
CONSUMER_GROUP = "bench"
ENV_REDIS_URL = "BENCH_REDIS_URL"
ENV_QUEUE = "BENCH_QUEUE"
ENV_XREAD_COUNT = "BENCH_XREAD_COUNT"
MODES = ("concurrent", "drain")


async def noop() -> None:
    """The job: nothing at all, so the figure is pure queue overhead."""


def make_broker() -> RedisStreamBroker:
    """Broker factory used by both the producer and ``taskiq worker bench.raw_taskiq:make_broker``.

    Configuration comes from the environment because the taskiq CLI calls this without
    arguments. Only ``consumer_id`` (a correctness fix, see KNOWN-TRAPS) and a readable
    ``consumer_name`` differ from taskiq-redis defaults; ``xread_count`` stays at its default 100
    unless ``BENCH_XREAD_COUNT`` says otherwise.
    """
    return build_broker(
        redis_url=os.environ.get(ENV_REDIS_URL, DEFAULT_REDIS_URL),
        queue=os.environ.get(ENV_QUEUE, "bench:raw:default"),
        xread_count=int(os.environ.get(ENV_XREAD_COUNT, "100")),
    )


def build_broker(redis_url: str, queue: str, xread_count: int) -> RedisStreamBroker:
    """The broker with the no-op task registered (see ``make_broker``)."""
    broker = RedisStreamBroker(
        url=require_loopback(redis_url),
        queue_name=queue,
        consumer_group_name=CONSUMER_GROUP,
        consumer_name=f"bench-{socket.gethostname()}-{os.getpid()}",
        consumer_id="0",
        xread_count=xread_count,
    )
    broker.register_task(noop, task_name=TASK_NAME)
    return broker


async def _group_info(redis: Redis, queue: str) -> dict[str, Any] | None:
    for group in await redis.xinfo_groups(queue):
        name = group.get("name")
        if name in (CONSUMER_GROUP, CONSUMER_GROUP.encode()):
            return {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in group.items()}
    return None


async def _acked(redis: Redis, queue: str) -> int:
    """Messages delivered to the group and acknowledged (``entries-read`` minus ``pending``)."""
    info = await _group_info(redis, queue) or {}
    return int(info.get("entries-read") or 0) - int(info.get("pending") or 0)


async def _warm_up(
    redis: Redis, queue: str, kick: Callable[[], Awaitable[object]], proc: subprocess.Popen[bytes]
) -> None:
    """Send one job and wait (bounded) for its ack: the worker is up and past its first message.

    Redis 7.0 does not list a consumer that is blocked on an empty stream, so XINFO CONSUMERS
    cannot tell us the worker is ready; a real round trip can.
    """
    await kick()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"taskiq worker exited early with code {proc.returncode}")
        if await _acked(redis, queue) >= 1:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("taskiq worker did not process the warm-up job within 60 s")


def _start_worker(env: dict[str, str], max_async_tasks: int) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "taskiq",
        "worker",
        "bench.raw_taskiq:make_broker",
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


async def _wait_acked(
    redis: Redis,
    queue: str,
    target: int,
    proc: subprocess.Popen[bytes],
    poll_ms: float,
    deadline: float,
) -> tuple[int, float]:
    """Poll until ``target`` messages are acknowledged; return (acked, perf_counter at exit)."""
    while True:
        acked = await _acked(redis, queue)
        if acked >= target:
            return acked, time.perf_counter()
        if time.monotonic() > deadline or proc.poll() is not None:
            log(f"stopped waiting: {acked}/{target} acknowledged, worker rc={proc.poll()}")
            return acked, time.perf_counter()
        await asyncio.sleep(poll_ms / 1000.0)


async def run_raw_taskiq(
    jobs: int = 20_000,
    senders: int = 32,
    max_async_tasks: int = 100,
    xread_count: int = 100,
    redis_url: str = DEFAULT_REDIS_URL,
    poll_ms: float = 10.0,
    timeout_s: float | None = None,
    mode: str = "concurrent",
) -> tuple[Metrics, dict[str, Any]]:
    """Run the baseline once; return (metrics, config). Never raises on slowness.

    ``mode="concurrent"``: the worker is up (one warm-up job acknowledged) and consumes while
    the producer sends; the clock runs from the first send to the last ack, so producer and
    worker share the CPU. ``mode="drain"``: every job is enqueued before the worker starts; the
    clock runs from the first ack to the last (``jobs - 1`` completions), which excludes the
    worker's start-up and measures its consumption rate alone.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    require_loopback(redis_url)
    run_id = new_run_id("raw")
    queue = f"{run_id}:stream"
    timeout_s = timeout_s if timeout_s is not None else 60.0 + jobs / 200.0
    env = bench_env(
        **{ENV_REDIS_URL: redis_url, ENV_QUEUE: queue, ENV_XREAD_COUNT: str(xread_count)}
    )
    broker = build_broker(redis_url, queue, xread_count)
    task = broker.find_task(TASK_NAME)
    assert task is not None
    redis = Redis.from_url(redis_url)
    worker: subprocess.Popen[bytes] | None = None
    config: dict[str, Any] = {
        "jobs": jobs,
        "mode": mode,
        "senders": senders,
        "worker_processes": 1,
        "max_async_tasks": max_async_tasks,
        "xread_count": xread_count,
        "ack_type": "when_saved",
        "consumer_id": "0",
        "poll_ms": poll_ms,
    }

    async def send_all() -> tuple[float, float, float]:
        """Kick every job from ``senders`` coroutines; return (start, end, producer CPU s)."""
        next_index = 0

        async def sender() -> None:
            nonlocal next_index
            while next_index < jobs:
                next_index += 1
                await task.kiq()

        cpu0 = time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(max(1, senders))))
        return start, time.perf_counter(), time.process_time() - cpu0

    try:
        await broker.startup()  # creates the group at id 0 before anything is sent
        if mode == "concurrent":
            worker = _start_worker(env, max_async_tasks)
            await _warm_up(redis, queue, task.kiq, worker)
            cpu_worker0 = tree_cpu_seconds([worker.pid])
            send_start, send_end, producer_cpu = await send_all()
            acked, done = await _wait_acked(
                redis, queue, jobs + 1, worker, poll_ms, time.monotonic() + timeout_s
            )
            acked -= 1  # the warm-up job
            first_acked = 0
            clock_start = send_start
        else:
            send_start, send_end, producer_cpu = await send_all()
            worker = _start_worker(env, max_async_tasks)
            deadline = time.monotonic() + timeout_s
            _, clock_start = await _wait_acked(redis, queue, 1, worker, 1.0, deadline)
            cpu_worker0 = tree_cpu_seconds([worker.pid])  # start-up excluded
            first_acked = await _acked(redis, queue)
            acked, done = await _wait_acked(redis, queue, jobs, worker, poll_ms, deadline)
            acked -= first_acked  # completions inside the clock window
        cpu_worker = tree_cpu_seconds([worker.pid]) - cpu_worker0

        metrics = throughput_metrics(
            jobs=jobs,
            mode=mode,
            completed=acked,
            before_clock=first_acked,
            clock_start=clock_start,
            done=done,
            send_start=send_start,
            send_end=send_end,
            worker_cpu=cpu_worker,
            producer_cpu=producer_cpu,
        )
        return metrics, config
    finally:
        if worker is not None:
            stop_process_group(worker)
        await broker.shutdown()
        keys = [k async for k in redis.scan_iter(match=f"*{run_id}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--senders", type=int, default=32, help="concurrent kiq coroutines")
    parser.add_argument("--max-async-tasks", type=int, default=100)
    parser.add_argument("--xread-count", type=int, default=100)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--poll-ms", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=None, help="max seconds to drain")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="concurrent",
        help="concurrent: worker running, clock from first send to last ack; drain: all jobs "
        "enqueued before the worker starts, clock from first to last ack",
    )
    args = parser.parse_args(argv)
    metrics, config = run_async(
        run_raw_taskiq(
            jobs=args.jobs,
            senders=args.senders,
            max_async_tasks=args.max_async_tasks,
            xread_count=args.xread_count,
            redis_url=args.redis_url,
            poll_ms=args.poll_ms,
            timeout_s=args.timeout,
            mode=args.mode,
        )
    )
    emit_result("raw_taskiq", metrics, config)


if __name__ == "__main__":
    main()
