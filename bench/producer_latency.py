"""Committed -> RUNNING for jobs a Python producer submits in its own transaction (ADR-0021).

Why: a producer never calls Redis; its job is sent by the outbox relay of the API and worker
processes, woken by the `pg_notify` its COMMIT delivers. The figure says how long that detour
takes, next to the API's own path.

What runs: a private database and Redis prefix, `python -m conveyor serve` and `--workers`
`python -m conveyor worker` processes (every one of them relays). The bench process is the
producer: `--jobs` `demo.noop` jobs, one per transaction (`async with engine.begin()`), one
every `--interval` seconds, with the wall-clock time taken as COMMIT returns. RUNNING is the
attempt's `started_at`, read from PostgreSQL afterwards (same machine, same clock). The
comparison: the same number of `submitJob` mutations over HTTP, from the request's start to
`started_at` (the API commits, then sends itself). Also reported: messages added to the
stream (one per job means no relay sent a job twice).

Run: `.venv/bin/python -m bench.producer_latency --jobs 200 --workers 2` (standalone: not part
of `make bench`; the figures are in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from bench.common import (
    DEFAULT_POSTGRES_DSN,
    DEFAULT_REDIS_URL,
    bench_env,
    emit_result,
    log,
    percentile,
    require_loopback,
    run_async,
)
from conveyor import Producer, kinds
from conveyor.db.engine import create_engine
from conveyor.services.dispatch import stream_key

SUBMIT = """mutation { submitDemoNoop { __typename ... on Job { id } } }"""


def _admin_dsn(database: str = "postgres") -> str:
    base = DEFAULT_POSTGRES_DSN.rsplit("/", 1)[0]
    return f"{base}/{database}"


class Stack:
    def __init__(self, workers: int) -> None:
        run = uuid.uuid4().hex[:8]
        self.database = f"cvbench_producer_{run}"
        self.prefix = f"cvbench-producer-{run}"
        self.url = _admin_dsn(self.database).replace("postgresql://", "postgresql+asyncpg://")
        self.env = bench_env(
            DATABASE_URL=self.url,
            REDIS_URL=require_loopback(DEFAULT_REDIS_URL),
            REDIS_PREFIX=self.prefix,
            LOG_LEVEL="WARNING",
            REDISPATCH_AFTER_SECONDS="3600",  # only the relay sends producers' jobs
        )
        self.workers = workers
        self.procs: list[subprocess.Popen[bytes]] = []
        self.port = 0

    def _cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "conveyor", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout

    def _spawn(self, *args: str) -> None:
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "conveyor", *args],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    async def start(self) -> str:
        self._cli("migrate")
        self._cli("create-api-key", "--name", "producer")
        key = self._cli("create-api-key", "--name", "http").strip().splitlines()[-1]
        with contextlib.closing(__import__("socket").socket()) as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._spawn("serve", "--port", str(self.port))
        for _ in range(self.workers):
            self._spawn("worker", "--queues", "default")
        conn = await asyncpg.connect(_admin_dsn(self.database))
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                # Every process relays once its LISTEN connection is up.
                listening = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = $1 AND query LIKE 'LISTEN%'",
                    self.database,
                )
                workers = await conn.fetchval(
                    "SELECT count(*) FROM workers WHERE stopped_at IS NULL"
                )
                if listening == 1 + self.workers and workers == self.workers:
                    return key
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        raise RuntimeError("the stack did not start")

    async def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        conn = await asyncpg.connect(_admin_dsn())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            await conn.close()
        redis = Redis.from_url(DEFAULT_REDIS_URL)
        try:
            keys = [k async for k in redis.scan_iter(match=f"{self.prefix}:*")]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()


async def _started(stack: Stack, ids: list[uuid.UUID]) -> dict[uuid.UUID, float]:
    """Each job's first attempt start (epoch seconds), once every job has finished."""
    conn = await asyncpg.connect(_admin_dsn(stack.database))
    try:
        deadline = time.monotonic() + 120
        while True:
            done = await conn.fetchval(
                "SELECT count(*) FROM jobs WHERE id = ANY($1) AND status = 'SUCCEEDED'", ids
            )
            if done == len(ids):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {len(ids)} jobs finished")
            await asyncio.sleep(0.2)
        rows = await conn.fetch(
            "SELECT job_id, extract(epoch FROM started_at) AS t FROM job_attempts "
            "WHERE job_id = ANY($1) AND number = 1",
            ids,
        )
        return {r["job_id"]: float(r["t"]) for r in rows}
    finally:
        await conn.close()


def _summary(latencies_ms: list[float]) -> dict[str, float]:
    values = sorted(latencies_ms)
    return {
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "max_ms": values[-1],
    }


async def _producer_side(stack: Stack, jobs: int, interval: float) -> dict[str, float]:
    engine = create_engine(stack.url, pool_size=2)
    producer = Producer(engine, key="producer", registry=kinds.load(kinds.DEMO_MODULES))
    committed: dict[uuid.UUID, float] = {}
    try:
        for i in range(jobs + 20):  # the first 20 warm up connections and caches
            async with engine.begin() as conn:
                job = await producer.submit("demo.noop", connection=conn)
            if i >= 20:
                committed[job.id] = time.time()
            await asyncio.sleep(interval)
    finally:
        await producer.aclose()
        await engine.dispose()
    started = await _started(stack, list(committed))
    return _summary([(started[j] - t) * 1000 for j, t in committed.items()])


async def _api_side(stack: Stack, key: str, jobs: int, interval: float) -> dict[str, float]:
    sent: dict[uuid.UUID, float] = {}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.port}", headers={"Authorization": f"Bearer {key}"}
    ) as http:
        for i in range(jobs + 20):
            t = time.time()
            body = (await http.post("/graphql", json={"query": SUBMIT})).json()
            if i >= 20:
                sent[uuid.UUID(body["data"]["submitDemoNoop"]["id"])] = t
            await asyncio.sleep(interval)
    started = await _started(stack, list(sent))
    return _summary([(started[j] - t) * 1000 for j, t in sent.items()])


async def main(args: argparse.Namespace) -> None:
    stack = Stack(args.workers)
    try:
        key = await stack.start()
        log(f"stack up: API + {args.workers} worker(s), all relaying")
        producer = await _producer_side(stack, args.jobs, args.interval)
        log(f"producer commit -> RUNNING: {producer}")
        api = await _api_side(stack, key, args.jobs, args.interval)
        log(f"submitJob request -> RUNNING: {api}")
        redis = Redis.from_url(DEFAULT_REDIS_URL)
        try:
            info: dict[str, Any] = await redis.xinfo_stream(stream_key(stack.prefix, "default", 1))
        finally:
            await redis.aclose()
        metrics = {
            **{f"producer_{k}": v for k, v in producer.items()},
            **{f"api_{k}": v for k, v in api.items()},
            "messages_per_job": info["entries-added"] / (2 * (args.jobs + 20)),
        }
        emit_result("producer_latency", metrics, vars(args))
    finally:
        await stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between submits")
    run_async(main(parser.parse_args()))
