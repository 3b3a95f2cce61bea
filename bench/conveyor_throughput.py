"""Throughput, Conveyor's side: no-op jobs through the GraphQL API, PostgreSQL and one worker.

Why: ``bench.raw_taskiq`` measures the bare transport; this measures what Conveyor adds on the
same machine: every job is validated and stored with its first event by the API
(``submitJobs`` batches over HTTP), sent to Redis Streams, claimed by a worker under a leased
attempt, run, and recorded ``SUCCEEDED`` with its attempt and events in PostgreSQL.

How: a private deployment (``bench.conveyor.ConveyorStack``: database ``cvbench_*``, Redis prefix
``cvbench-*``, ``python -m conveyor serve`` and one ``python -m conveyor worker``). Completion is
read from PostgreSQL, the source of truth: ``SELECT count(*) FROM jobs WHERE status =
'SUCCEEDED'`` every ``--poll-ms``. At the end every job is checked: SUCCEEDED, one SUCCEEDED
attempt and three events (SUBMITTED, STARTED, SUCCEEDED) each.

Modes (as ``bench.raw_taskiq``): ``concurrent`` starts the worker, waits for one warm-up job,
then submits while the worker runs; the clock runs from the first submit to the last SUCCEEDED.
``drain`` submits everything before the worker starts; the clock runs from the first SUCCEEDED
to the last (worker start-up excluded).

``--profile-dir`` attaches ``py-spy record`` (``--py-spy``, or ``py-spy`` on PATH) to the API and
the worker for the measured phase and writes speedscope files there.

Run: ``.venv/bin/python -m bench.conveyor_throughput --jobs 20000``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import asyncpg
import psutil  # type: ignore[import-untyped]

from bench.common import (
    DEFAULT_REDIS_URL,
    Metrics,
    emit_result,
    log,
    run_async,
    throughput_metrics,
    tree_cpu_seconds,
)
from bench.conveyor import ConveyorStack, GraphQLClient, PgCpu, submit_batch, wait_count

MODES = ("concurrent", "drain")
NOOP = {"kind": "demo.noop", "payload": {}}
#: Run-time concurrency limits (ADR-0022): none; a per-kind limit of 100 on demo.noop (not
#: reached: the worker runs 100 at once); a per-key limit of 1 (demo.keyed's, declared in code)
#: over 1,000 keys.
LIMITS = ("none", "kind", "key")
SET_LIMIT = """mutation($i: SetConcurrencyLimitInput!) { setConcurrencyLimit(input: $i) {
  __typename } }"""
KEYS = 1000
SUCCEEDED_SQL = "SELECT count(*) FROM jobs WHERE status = 'SUCCEEDED'"


def _user_sys(pid: int) -> tuple[float, float]:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0, 0.0
    return times.user, times.system


def _kernel_pct(before: tuple[float, float], after: tuple[float, float]) -> float:
    """Share (%) of a process's CPU spent in the kernel between two samples."""
    user, system = after[0] - before[0], after[1] - before[1]
    return 100.0 * system / (user + system) if user + system > 0 else 0.0


class Profilers:
    """``py-spy record`` attached to running processes, stopped with SIGINT (bounded)."""

    def __init__(self, py_spy: str, out_dir: Path, rate: int = 100) -> None:
        self.py_spy = py_spy
        self.out_dir = out_dir
        self.rate = rate
        self.procs: list[tuple[str, asyncio.subprocess.Process, Path]] = []

    async def attach(self, name: str, pid: int) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        out = self.out_dir / f"{name}.speedscope.json"
        proc = await asyncio.create_subprocess_exec(
            self.py_spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(self.rate),
            "--gil",  # only samples holding the GIL: Python CPU, not syscalls or waiting
            "--format",
            "speedscope",
            "--output",
            str(out),
            "--duration",
            "900",  # upper bound; stopped with SIGINT when the measured phase ends
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        self.procs.append((name, proc, out))

    async def stop(self) -> dict[str, str]:
        written: dict[str, str] = {}
        for name, proc, out in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)
            try:
                _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
            except TimeoutError:
                proc.kill()
                _, err = await proc.communicate()
            if out.exists():
                written[name] = str(out)
            else:
                log(f"py-spy wrote nothing for {name}: {err.decode()[-500:]}")
        return written


async def run_conveyor_throughput(
    jobs: int = 20_000,
    mode: str = "concurrent",
    batch: int = 1000,
    senders: int = 2,
    concurrency: int = 100,
    poll_ms: float = 50.0,
    redis_url: str = DEFAULT_REDIS_URL,
    timeout_s: float | None = None,
    profile_dir: Path | None = None,
    py_spy: str | None = None,
    limit: str = "none",
) -> tuple[Metrics, dict[str, Any]]:
    """Run once; return (metrics, config). Never raises on slowness."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if limit not in LIMITS:
        raise ValueError(f"limit must be one of {LIMITS}")
    timeout_s = timeout_s if timeout_s is not None else 60.0 + jobs / 50.0
    stack = ConveyorStack("tp", redis_url=redis_url)
    config: dict[str, Any] = {
        "jobs": jobs,
        "mode": mode,
        "batch": batch,
        "senders": senders,
        "worker_processes": 1,
        "worker_concurrency": concurrency,
        "poll_ms": poll_ms,
        "submit": "GraphQL submitJobs over HTTP",
        "database": stack.database,
        "limit": limit,
    }
    profilers: Profilers | None = None
    if profile_dir is not None:
        exe = py_spy or shutil.which("py-spy")
        if not exe:
            raise SystemExit("--profile-dir needs py-spy (--py-spy PATH or on PATH)")
        profilers = Profilers(exe, profile_dir)
    client: GraphQLClient | None = None
    pg: asyncpg.Connection | None = None
    try:
        await stack.setup()
        await stack.start_api()
        assert stack.api is not None
        client = stack.client(connections=max(2, senders))
        pg = await asyncpg.connect(stack.dsn, timeout=10)
        pg_cpu = PgCpu(stack.database, exclude=(pg.get_server_pid(),))
        if limit == "kind":
            await client.execute(SET_LIMIT, {"i": {"kind": "demo.noop", "maxRunning": 100}})
        if limit == "key":
            inputs = [
                {"kind": "demo.keyed", "payload": {"account": f"acct-{i % KEYS}", "steps": 0}}
                for i in range(jobs)
            ]
        else:
            inputs = [NOOP] * jobs
        batches = [inputs[i : i + batch] for i in range(0, jobs, batch)]

        async def send_all() -> tuple[float, float]:
            assert client is not None
            queue = list(reversed(batches))

            async def sender() -> None:
                while queue:
                    await submit_batch(client, queue.pop())

            start = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(max(1, senders))))
            return start, time.perf_counter()

        deadline = time.monotonic() + timeout_s
        if mode == "concurrent":
            worker_pid = await stack.start_worker(concurrency)
            await submit_batch(client, [NOOP])  # warm-up: the worker is up and past one job
            warm, _ = await wait_count(
                pg,
                SUCCEEDED_SQL,
                1,
                poll_s=0.02,
                deadline=time.monotonic() + 60,
                alive=stack.workers,
            )
            if warm < 1:
                raise RuntimeError(f"warm-up job did not succeed: {stack.log_tail('worker-0')}")
            if profilers:
                await profilers.attach("api", stack.api.pid)
                await profilers.attach("worker", worker_pid)
            cpu_w0 = tree_cpu_seconds([worker_pid])
            cpu_a0 = tree_cpu_seconds([stack.api.pid])
            split_w0, split_a0 = _user_sys(worker_pid), _user_sys(stack.api.pid)
            pg_cpu.start()
            send_start, send_end = await send_all()
            cpu_a_send = tree_cpu_seconds([stack.api.pid]) - cpu_a0
            done_count, done = await wait_count(
                pg,
                SUCCEEDED_SQL,
                jobs + 1,
                poll_s=poll_ms / 1000,
                deadline=deadline,
                alive=stack.workers,
            )
            completed = done_count - 1
            in_window = completed
            clock_start = send_start
        else:
            cpu_a0 = tree_cpu_seconds([stack.api.pid])
            split_a0 = _user_sys(stack.api.pid)
            send_start, send_end = await send_all()
            cpu_a_send = tree_cpu_seconds([stack.api.pid]) - cpu_a0
            worker_pid = await stack.start_worker(concurrency)
            first, clock_start = await wait_count(
                pg, SUCCEEDED_SQL, 1, poll_s=0.002, deadline=deadline, alive=stack.workers
            )
            if profilers:
                await profilers.attach("api", stack.api.pid)
                await profilers.attach("worker", worker_pid)
            cpu_w0 = tree_cpu_seconds([worker_pid])
            split_w0 = _user_sys(worker_pid)
            pg_cpu.start()
            done_count, done = await wait_count(
                pg,
                SUCCEEDED_SQL,
                jobs,
                poll_s=poll_ms / 1000,
                deadline=deadline,
                alive=stack.workers,
            )
            completed = done_count
            in_window = done_count - first
        cpu_worker = tree_cpu_seconds([worker_pid]) - cpu_w0
        cpu_api = tree_cpu_seconds([stack.api.pid]) - cpu_a0
        cpu_pg = pg_cpu.seconds()
        worker_kernel = _kernel_pct(split_w0, _user_sys(worker_pid))
        api_kernel = _kernel_pct(split_a0, _user_sys(stack.api.pid))
        if profilers:
            config["profiles"] = await profilers.stop()
            profilers = None

        verify = await verify_jobs(pg)
        config["verify"] = verify
        expected = jobs + (1 if mode == "concurrent" else 0)
        verified = (
            verify["jobs"] == expected
            and verify["succeeded"] == expected
            and verify["attempts_succeeded"] == expected
            and verify["attempts"] == expected
            and verify["events"] == 3 * expected
            and all(
                verify["events_by_type"].get(t) == expected
                for t in ("SUBMITTED", "STARTED", "SUCCEEDED")
            )
        )
        per_1k = 1000.0 / max(in_window, 1)
        metrics = throughput_metrics(
            jobs=jobs,
            mode=mode,
            completed=in_window,
            before_clock=completed - in_window,
            clock_start=clock_start,
            done=done,
            send_start=send_start,
            send_end=send_end,
            worker_cpu=cpu_worker,
        )
        metrics |= {
            "api_cpu_s": cpu_api,
            "api_cpu_ms_per_1k_jobs": cpu_api * 1000.0 * 1000.0 / max(jobs, 1),
            "api_submit_cpu_ms_per_1k_jobs": cpu_a_send * 1000.0 * 1000.0 / max(jobs, 1),
            "pg_cpu_s": cpu_pg,
            "pg_cpu_ms_per_1k_jobs": cpu_pg * 1000.0 * per_1k,
            "worker_kernel_pct_of_cpu": worker_kernel,
            "api_kernel_pct_of_cpu": api_kernel,
            "verified": 1.0 if verified else 0.0,
        }
        if not verified:
            log(f"verification failed: {verify}")
        return metrics, config
    finally:
        if profilers:
            with contextlib.suppress(Exception):
                await profilers.stop()
        if client is not None:
            await client.aclose()
        if pg is not None:
            await pg.close()
        await stack.stop()


async def verify_jobs(pg: asyncpg.Connection) -> dict[str, Any]:
    """Counts that prove every job ran once and has its full history in PostgreSQL."""
    row = await pg.fetchrow(
        "SELECT count(*) AS jobs, count(*) FILTER (WHERE status = 'SUCCEEDED') AS succeeded, "
        "count(*) FILTER (WHERE attempt = 1) AS one_attempt FROM jobs"
    )
    attempts = await pg.fetchrow(
        "SELECT count(*) AS attempts, count(*) FILTER (WHERE status = 'SUCCEEDED') AS ok "
        "FROM job_attempts"
    )
    by_type = {
        r["type"]: int(r["n"])
        for r in await pg.fetch("SELECT type, count(*) AS n FROM job_events GROUP BY type")
    }
    return {
        "jobs": int(row["jobs"]),
        "succeeded": int(row["succeeded"]),
        "jobs_with_one_attempt": int(row["one_attempt"]),
        "attempts": int(attempts["attempts"]),
        "attempts_succeeded": int(attempts["ok"]),
        "events": sum(by_type.values()),
        "events_by_type": by_type,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--mode", choices=MODES, default="concurrent")
    parser.add_argument("--batch", type=int, default=1000, help="jobs per submitJobs call")
    parser.add_argument("--senders", type=int, default=2, help="concurrent submitJobs calls")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=100,
        help="worker --concurrency (100: the raw baseline's max_async_tasks, same jobs in flight)",
    )
    parser.add_argument("--poll-ms", type=float, default=50.0)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--timeout", type=float, default=None, help="max seconds to finish")
    parser.add_argument("--profile-dir", type=Path, default=None, help="py-spy output directory")
    parser.add_argument("--py-spy", default=None, help="py-spy executable")
    parser.add_argument(
        "--limit",
        choices=LIMITS,
        default="none",
        help="kind: a per-kind limit of 100 (not reached); key: demo.keyed, 1,000 keys, 1 each",
    )
    args = parser.parse_args(argv)
    metrics, config = run_async(
        run_conveyor_throughput(
            jobs=args.jobs,
            mode=args.mode,
            batch=args.batch,
            senders=args.senders,
            concurrency=args.concurrency,
            poll_ms=args.poll_ms,
            redis_url=args.redis_url,
            timeout_s=args.timeout,
            profile_dir=args.profile_dir,
            py_spy=args.py_spy,
            limit=args.limit,
        )
    )
    emit_result("conveyor_throughput", metrics, config)


if __name__ == "__main__":
    main()
