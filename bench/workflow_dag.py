"""A workflow against the same jobs without one, and against Celery's chord (ADR-0023).

`split -> map of N no-op items -> join` (`demo.pipeline` with `stepSeconds: 0`: every item a
`demo.sleep` of one zero-second step), end to end through the API: from `submitWorkflow`
to the run SUCCEEDED in PostgreSQL. The same run measures N independent `demo.sleep` jobs
sent with one `submitJobs` (from the call to the last one SUCCEEDED), alternating which
goes first. Engine overhead per step = (DAG wall - independent wall) / (N + 2). The Celery
side runs `split -> chord(group(N noop), join)` on one prefork worker with its defaults,
Redis as broker and result backend (bench/celery_dag.py).

    python -m bench.workflow_dag --items 1000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg

from bench.common import emit_result, log, require_loopback
from bench.conveyor import ConveyorStack, submit_batch

SUBMIT = """mutation($i: SubmitWorkflowInput!) { submitWorkflow(input: $i) {
  __typename ... on WorkflowRun { id } ... on UserError { code message } } }"""


async def _wait(pg: asyncpg.Connection, sql: str, *args: Any, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pg.fetchval(sql, *args):
            return time.perf_counter()
        await asyncio.sleep(0.02)
    raise TimeoutError(sql)


async def conveyor_side(items: int, runs: int, redis_url: str) -> dict[str, Any]:
    stack = ConveyorStack("wf", redis_url=redis_url)
    dag: list[float] = []
    independent: list[float] = []
    try:
        await stack.setup()
        await stack.start_api()
        await stack.start_worker(concurrency=100)
        client = stack.client(connections=2)
        pg = await asyncpg.connect(stack.dsn, timeout=10)
        # Warm-up: processes, connections, caches.
        await submit_batch(client, [{"kind": "demo.noop", "payload": {}}] * 100)
        await _wait(pg, "SELECT count(*) = 100 FROM jobs WHERE status = 'SUCCEEDED'")
        for i in range(runs):
            for which in ("dag", "jobs") if i % 2 == 0 else ("jobs", "dag"):
                if which == "dag":
                    start = time.perf_counter()
                    data = await client.execute(
                        SUBMIT,
                        {
                            "i": {
                                "workflow": "demo.pipeline",
                                "input": {"items": items, "stepSeconds": 0},
                            }
                        },
                    )
                    run_id = uuid.UUID(data["submitWorkflow"]["id"])
                    end = await _wait(
                        pg, "SELECT status = 'SUCCEEDED' FROM workflow_runs WHERE id = $1", run_id
                    )
                    dag.append(end - start)
                else:
                    before = await pg.fetchval("SELECT count(*) FROM jobs")
                    start = time.perf_counter()
                    one = {"kind": "demo.sleep", "payload": {"steps": 1, "stepSeconds": 0}}
                    ids = []
                    for at in range(0, items + 2, 1000):  # submitJobs takes 1,000 at most
                        ids += await submit_batch(client, [one] * min(1000, items + 2 - at))
                    end = await _wait(
                        pg,
                        "SELECT count(*) = $2 FROM jobs WHERE id = ANY($1::uuid[]) "
                        "AND status = 'SUCCEEDED'",
                        [uuid.UUID(x) for x in ids],
                        items + 2,
                    )
                    assert await pg.fetchval("SELECT count(*) FROM jobs") == before + items + 2
                    independent.append(end - start)
                log(f"{which}: {(dag if which == 'dag' else independent)[-1]:.3f} s")
        once = await pg.fetchval(
            "SELECT count(*) FROM job_attempts a JOIN jobs j ON j.id = a.job_id "
            "WHERE j.run_id IS NOT NULL AND a.status = 'SUCCEEDED'"
        )
        await pg.close()
        await client.aclose()
    finally:
        await stack.stop()
    return {"dag_s": dag, "independent_s": independent, "succeeded_attempts": once}


def celery_side(items: int, runs: int, redis_url: str) -> list[float]:
    prefix = f"cvbench-celery-{uuid.uuid4().hex[:8]}-"
    env = {**os.environ, "CVBENCH_CELERY_REDIS": redis_url, "CVBENCH_CELERY_PREFIX": prefix}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench.celery_dag", "worker", "--loglevel=WARNING"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.environ.update({"CVBENCH_CELERY_REDIS": redis_url, "CVBENCH_CELERY_PREFIX": prefix})
    from bench import celery_dag

    walls = []
    try:
        celery_dag.split.delay(10).get(timeout=120)  # warm-up, waits for the worker
        for _ in range(runs):
            start = time.perf_counter()
            assert celery_dag.split.delay(items).get(timeout=600) == items
            walls.append(time.perf_counter() - start)
            log(f"celery chord: {walls[-1]:.3f} s")
    finally:
        worker.terminate()
        worker.wait(30)
        from redis import Redis

        redis = Redis.from_url(redis_url)
        keys = list(redis.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            redis.delete(*keys)
        redis.close()
    return walls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-celery", action="store_true")
    args = parser.parse_args(argv)
    require_loopback(args.redis_url)
    conveyor = asyncio.run(conveyor_side(args.items, args.runs, args.redis_url))
    celery = [] if args.no_celery else celery_side(args.items, args.runs, args.redis_url)
    dag = statistics.median(conveyor["dag_s"])
    jobs = statistics.median(conveyor["independent_s"])
    steps = args.items + 2
    metrics = {
        "dag_wall_s": dag,
        "independent_wall_s": jobs,
        "dag_over_independent": dag / jobs,
        "engine_overhead_ms_per_step": (dag - jobs) / steps * 1000,
        "dag_ms_per_step": dag / steps * 1000,
        "independent_ms_per_step": jobs / steps * 1000,
        "celery_chord_wall_s": statistics.median(celery) if celery else None,
        "dag_over_celery": dag / statistics.median(celery) if celery else None,
    }
    emit_result(
        "workflow_dag",
        metrics,
        {"items": args.items, "runs": args.runs, "raw": {**conveyor, "celery_s": celery}},
    )


if __name__ == "__main__":
    main()
