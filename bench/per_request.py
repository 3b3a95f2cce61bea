"""Per-request cost: single `submitJob` mutations per second on one API process, beside the
same process's floor and a bare Starlette floor.

Why: browsers and web backends submit one job per mutation, so what one request costs (HTTP,
auth, GraphQL, validation, the transaction) decides how many submits an API process answers.
Closed loop: ``--connections`` keep-alive sockets (the benchmarks' own client,
``bench.http_client``; httpx tops out near 400 requests/s on this machine), each sending its
next request as soon as the previous answer arrives, for ``--duration`` seconds after a
warm-up. No worker runs: the jobs stay QUEUED (the submit path alone is measured).

Targets:

* ``submit``: ``submitJob(input: {kind: "demo.noop"})`` to ``python -m conveyor serve``
  (``--api-workers N`` processes on one port), as an admin key. Every answer is checked to be a
  `Job`; the count of jobs in PostgreSQL is checked against the answers at the end.
* ``typename``: the same process's floor, an authenticated ``{ __typename }`` POST.
* ``starlette``: the floor under both, a bare Starlette app on uvicorn with the same server
  options (uvloop, httptools, no access log), answering ``{"data": {"__typename": "Query"}}`` to
  every POST, no auth, no GraphQL.

Run: ``.venv/bin/python -m bench.per_request --target submit --duration 15``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from typing import Any

import asyncpg
import httpx

from bench.common import (
    Metrics,
    bench_env,
    emit_result,
    percentile,
    run_async,
    stop_process_group,
    tree_cpu_seconds,
)
from bench.conveyor import SUBMIT_JOB, ConveyorStack, free_port
from bench.http_client import JSONPoster

TARGETS = ("submit", "typename", "starlette")
TYPENAME = "{ __typename }"


async def _starlette_endpoint(request: Any) -> Any:
    from starlette.responses import Response

    await request.body()
    return Response(b'{"data":{"__typename":"Query"}}', media_type="application/json")


def starlette_app() -> Any:
    """The floor: `uvicorn bench.per_request:starlette_app --factory`."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    return Starlette(routes=[Route("/graphql", _starlette_endpoint, methods=["POST"])])


async def _closed_loop(
    poster: JSONPoster, body: dict[str, Any], *, connections: int, seconds: float, check: Any
) -> tuple[list[float], int]:
    """Each of `connections` loops sends `body` and waits for its answer until `seconds` pass;
    the latencies (ms) and the number of answers that failed `check`."""
    latencies: list[float] = []
    failed = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal failed
        while (start := time.perf_counter()) < deadline:
            try:
                answer = await poster.post(body)
                ok = check(answer)
            except Exception:
                ok = False
            latencies.append((time.perf_counter() - start) * 1000.0)
            failed += 0 if ok else 1

    await asyncio.gather(*(loop() for _ in range(connections)))
    return latencies, failed


def _figures(latencies: list[float], failed: int, seconds: float, cpu: float) -> Metrics:
    ordered = sorted(latencies)
    done = len(ordered)
    return {
        "requests_per_s": done / seconds,
        "p50_ms": percentile(ordered, 50),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] if ordered else float("nan"),
        "requests": float(done),
        "failed": float(failed),
        "server_cpu_ms_per_request": cpu * 1000.0 / done if done else float("nan"),
    }


async def _drive(
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    pids: list[int],
    *,
    connections: int,
    duration: float,
    warmup: float,
    check: Any,
) -> Metrics:
    poster = JSONPoster(url, headers, connections=connections)
    try:
        await _closed_loop(poster, body, connections=connections, seconds=warmup, check=check)
        cpu0 = tree_cpu_seconds(pids)
        started = time.perf_counter()
        latencies, failed = await _closed_loop(
            poster, body, connections=connections, seconds=duration, check=check
        )
        elapsed = time.perf_counter() - started
        cpu = tree_cpu_seconds(pids) - cpu0
    finally:
        await poster.aclose()
    return _figures(latencies, failed, elapsed, cpu)


def _is_job(answer: Any) -> bool:
    return bool(answer.get("data") and answer["data"]["submitJob"]["__typename"] == "Job")


def _is_typename(answer: Any) -> bool:
    return bool(answer.get("data") == {"__typename": "Query"})


async def run_conveyor(
    target: str, *, connections: int, duration: float, warmup: float, api_workers: int
) -> Metrics:
    stack = ConveyorStack("perreq")
    try:
        await stack.setup()
        await stack.start_api(workers=api_workers)
        assert stack.api is not None
        if target == "submit":
            body: dict[str, Any] = {
                "query": SUBMIT_JOB,
                "variables": {"input": {"kind": "demo.noop", "payload": {}}},
            }
            check = _is_job
        else:
            body, check = {"query": TYPENAME}, _is_typename
        metrics = await _drive(
            f"{stack.base_url}/graphql",
            {"Authorization": f"Bearer {stack.key}"},
            body,
            [stack.api.pid],
            connections=connections,
            duration=duration,
            warmup=warmup,
            check=check,
        )
        if target == "submit":
            conn = await asyncpg.connect(stack.dsn)
            try:
                stored = await conn.fetchval("SELECT count(*) FROM jobs")
                decisions = await conn.fetchval("SELECT count(*) FROM policy_decisions")
                audited = await conn.fetchval(
                    "SELECT count(*) FROM audit_log WHERE action = 'job.submit'"
                )
            finally:
                await conn.close()
            # Every answered Job is stored with its decision and audit rows (warm-up included).
            metrics["stored_jobs"] = float(stored)
            metrics["stored_consistent"] = float(stored == decisions == audited)
        return metrics
    finally:
        await stack.stop()


async def run_starlette(*, connections: int, duration: float, warmup: float) -> Metrics:
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured phase
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.per_request:starlette_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=bench_env(),
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as http:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.post(url, json={})).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        return await _drive(
            url,
            {},
            {"query": TYPENAME},
            [proc.pid],
            connections=connections,
            duration=duration,
            warmup=warmup,
            check=_is_typename,
        )
    finally:
        stop_process_group(proc)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=TARGETS, required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--api-workers", type=int, default=1, help="`conveyor serve --workers`")
    args = parser.parse_args(argv)
    if args.target == "starlette":
        metrics = run_async(
            run_starlette(connections=args.connections, duration=args.duration, warmup=args.warmup)
        )
    else:
        metrics = run_async(
            run_conveyor(
                args.target,
                connections=args.connections,
                duration=args.duration,
                warmup=args.warmup,
                api_workers=args.api_workers,
            )
        )
    metrics["load_avg_1m"] = os.getloadavg()[0]
    emit_result(
        f"per_request_{args.target}",
        metrics,
        {
            "target": args.target,
            "connections": args.connections,
            "duration_s": args.duration,
            "api_workers": args.api_workers,
        },
    )


if __name__ == "__main__":
    main()
