"""Throughput baseline: no-op tasks through Celery 5 with a Redis broker, one worker.

Why: Celery is what most Python users would reach for instead of Conveyor. ``raw_taskiq.py``
says what the bare transport Conveyor is built on can do; this says what the incumbent does on
the same machine with the same kind of job, so Conveyor's figure can also be read as "x times
Celery". Same command line, modes and metric keys as ``raw_taskiq.py``.

How: one real ``celery -A bench.celery_throughput worker`` process (its own session, stopped
with its pool children afterwards) with Celery's defaults: the prefork pool, one child per CPU
(``billiard.cpu_count()``, passed explicitly so the recorded figure is the one used), prefetch
multiplier 4, early acknowledgement, JSON serializer, gossip/mingle/heartbeat on, log level
WARNING. Tasks are sent with ``noop.delay()`` from ``--senders`` threads (default 1: one thread
already sends faster than the worker consumes, see ``--senders``), each drawing a producer from
Celery's own pool. Settings that differ from Celery's defaults, and why:

- ``broker_transport_options={"global_keyprefix": <run id>:}``: every key of the run (the queue
  list, ``unacked``/``unacked_index``, ``_kombu.binding.*``) lives under a private prefix that
  is deleted afterwards (``scan_iter`` on the run id), so nothing else in the Redis db is touched.
- No result backend and ``task_ignore_result=True``: nothing is read back, as in raw taskiq,
  so Celery does not store a result per task (the default would with a backend configured).
- ``worker_hijack_root_logger=False``: the worker leaves logging alone (as ``celery_dag.py``).
- ``broker_connection_retry_on_startup=True``: the value Celery uses anyway; set explicitly to
  silence its pending-deprecation warning.

Completion without a result backend: the task body runs one ``INCR`` on ``<prefix>done`` over a
module-level redis-py client created lazily in each pool process, and the producer polls that
counter every ``--poll-ms``. That is one Redis command per task that raw taskiq's no-op (read
from ``XINFO GROUPS``) does not do; Conveyor's worker does far more per job. ``mode=concurrent``:
the worker is up (one warm-up task counted) and consumes while the producer sends; the clock
runs from the first send to the last completion. ``mode=drain``: every task is enqueued before
the worker starts; the clock runs from the first completion to the last (start-up excluded).

Run: ``.venv/bin/python -m bench.celery_throughput --jobs 20000 --mode concurrent``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from typing import Any

import billiard  # type: ignore[import-untyped]  # Celery's multiprocessing fork, no stubs
import celery
from celery import Celery
from redis import Redis

from bench.common import (
    DEFAULT_REDIS_URL,
    Metrics,
    bench_env,
    emit_result,
    log,
    new_run_id,
    require_loopback,
    stop_process_group,
    throughput_metrics,
    tree_cpu_seconds,
)

#: Explicit, because the producer runs this file as ``__main__`` and the worker imports it.
TASK_NAME = "bench.celery_throughput.noop"
ENV_REDIS_URL = "BENCH_REDIS_URL"
ENV_PREFIX = "BENCH_CELERY_PREFIX"
ENV_PREFETCH = "BENCH_CELERY_PREFETCH"
COUNTER_SUFFIX = "done"
MODES = ("concurrent", "drain")
POOL = "prefork"

_counter: Redis | None = None
_counter_key = ""


def noop() -> None:
    """The job: count one completion (one INCR), nothing else."""
    global _counter, _counter_key
    if _counter is None:  # lazily, so each prefork child opens its own connection
        _counter = Redis.from_url(require_loopback(os.environ[ENV_REDIS_URL]))
        _counter_key = os.environ[ENV_PREFIX] + COUNTER_SUFFIX
    _counter.incr(_counter_key)


def build_app(redis_url: str, prefix: str, prefetch_multiplier: int = 4) -> Celery:
    """The Celery app with the no-op task registered; settings beyond the defaults: see above."""
    app = Celery("bench_celery_throughput", broker=require_loopback(redis_url))
    app.conf.update(
        broker_transport_options={"global_keyprefix": prefix},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        worker_prefetch_multiplier=prefetch_multiplier,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    app.task(name=TASK_NAME, shared=False)(noop)
    return app


#: What ``celery -A bench.celery_throughput worker`` loads; configured by the producer's env.
app = build_app(
    os.environ.get(ENV_REDIS_URL, DEFAULT_REDIS_URL),
    os.environ.get(ENV_PREFIX, "bench:celery:unset:"),
    int(os.environ.get(ENV_PREFETCH, "4")),
)


def _start_worker(env: dict[str, str], run_id: str, concurrency: int) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.celery_throughput",
        "worker",
        "--pool",
        POOL,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "WARNING",
        "--hostname",
        f"{run_id.replace(':', '-')}@%h",
    ]
    # The worker prints its banner on stdout, which must carry only our JSON line.
    return subprocess.Popen(argv, env=env, stdout=sys.stderr, start_new_session=True)


def _done(redis: Redis, key: str) -> int:
    return int(redis.get(key) or 0)


def _wait_done(
    redis: Redis,
    key: str,
    target: int,
    proc: subprocess.Popen[bytes],
    poll_ms: float,
    deadline: float,
) -> tuple[int, float]:
    """Poll until ``target`` tasks have run; return (completed, perf_counter at exit)."""
    while True:
        done = _done(redis, key)
        if done >= target:
            return done, time.perf_counter()
        if time.monotonic() > deadline or proc.poll() is not None:
            log(f"stopped waiting: {done}/{target} completed, worker rc={proc.poll()}")
            return done, time.perf_counter()
        time.sleep(poll_ms / 1000.0)


def _warm_up(redis: Redis, key: str, task: Any, proc: subprocess.Popen[bytes]) -> None:
    """Send one task and wait (bounded) until it has run: the worker is up and consuming."""
    task.delay()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited early with code {proc.returncode}")
        if _done(redis, key) >= 1:
            return
        time.sleep(0.02)
    raise TimeoutError("celery worker did not run the warm-up task within 60 s")


def _send_all(task: Any, jobs: int, senders: int) -> tuple[float, float, float]:
    """``delay()`` every job from ``senders`` threads; return (start, end, producer CPU s)."""
    senders = max(1, min(senders, jobs))
    shares = [jobs // senders + (i < jobs % senders) for i in range(senders)]
    errors: list[BaseException] = []

    def sender(count: int) -> None:
        try:
            for _ in range(count):
                task.delay()
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(n,), daemon=True) for n in shares[1:]]
    cpu0 = time.process_time()
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    sender(shares[0])  # the main thread is one of the senders
    for thread in threads:
        thread.join()
    end = time.perf_counter()
    if errors:
        raise errors[0]
    return start, end, time.process_time() - cpu0


def run_celery(
    jobs: int = 20_000,
    senders: int = 1,
    concurrency: int | None = None,
    prefetch_multiplier: int = 4,
    redis_url: str = DEFAULT_REDIS_URL,
    poll_ms: float = 10.0,
    timeout_s: float | None = None,
    mode: str = "concurrent",
) -> tuple[Metrics, dict[str, Any]]:
    """Run the baseline once; return (metrics, config). Never raises on slowness.

    The clocks are those of ``raw_taskiq.run_raw_taskiq``: concurrent from the first send to
    the last completion; drain from the first completion to the last (``jobs - 1`` completions).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    require_loopback(redis_url)
    concurrency = concurrency or billiard.cpu_count()  # Celery's own default
    run_id = new_run_id("celery")
    prefix = f"{run_id}:"
    counter_key = prefix + COUNTER_SUFFIX
    timeout_s = timeout_s if timeout_s is not None else 60.0 + jobs / 200.0
    env = bench_env(
        **{
            ENV_REDIS_URL: redis_url,
            ENV_PREFIX: prefix,
            ENV_PREFETCH: str(prefetch_multiplier),
        }
    )
    producer_app = build_app(redis_url, prefix, prefetch_multiplier)
    task = producer_app.tasks[TASK_NAME]
    redis = Redis.from_url(redis_url)
    worker: subprocess.Popen[bytes] | None = None
    config: dict[str, Any] = {
        "jobs": jobs,
        "mode": mode,
        "senders": senders,
        "worker_processes": 1,
        "pool": POOL,
        "concurrency": concurrency,
        "prefetch_multiplier": prefetch_multiplier,
        "acks_late": False,
        "serializer": "json",
        "result_backend": None,
        "completion": "INCR per task",
        "celery": celery.__version__,
        "poll_ms": poll_ms,
    }
    try:
        if mode == "concurrent":
            worker = _start_worker(env, run_id, concurrency)
            _warm_up(redis, counter_key, task, worker)
            cpu_worker0 = tree_cpu_seconds([worker.pid])
            send_start, send_end, producer_cpu = _send_all(task, jobs, senders)
            done, finished = _wait_done(
                redis, counter_key, jobs + 1, worker, poll_ms, time.monotonic() + timeout_s
            )
            done -= 1  # the warm-up task
            first_done = 0
            clock_start = send_start
        else:
            send_start, send_end, producer_cpu = _send_all(task, jobs, senders)
            worker = _start_worker(env, run_id, concurrency)
            deadline = time.monotonic() + timeout_s
            _, clock_start = _wait_done(redis, counter_key, 1, worker, 1.0, deadline)
            cpu_worker0 = tree_cpu_seconds([worker.pid])  # start-up excluded
            first_done = _done(redis, counter_key)
            done, finished = _wait_done(redis, counter_key, jobs, worker, poll_ms, deadline)
            done -= first_done  # completions inside the clock window
        cpu_worker = tree_cpu_seconds([worker.pid]) - cpu_worker0

        metrics = throughput_metrics(
            jobs=jobs,
            mode=mode,
            completed=done,
            before_clock=first_done,
            clock_start=clock_start,
            done=finished,
            send_start=send_start,
            send_end=send_end,
            worker_cpu=cpu_worker,
            producer_cpu=producer_cpu,
        )
        return metrics, config
    finally:
        if worker is not None:
            stop_process_group(worker)
        producer_app.close()
        keys = list(redis.scan_iter(match=f"*{run_id}*", count=1000))
        if keys:
            redis.delete(*keys)
        redis.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument(
        "--senders",
        type=int,
        default=1,
        help="threads calling delay(); one already outpaces the worker",
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="prefork children (default: CPU count)"
    )
    parser.add_argument("--prefetch-multiplier", type=int, default=4)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--poll-ms", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=None, help="max seconds to drain")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="concurrent",
        help="concurrent: worker running, clock from first send to last completion; drain: all "
        "jobs enqueued before the worker starts, clock from first to last completion",
    )
    args = parser.parse_args(argv)
    metrics, config = run_celery(
        jobs=args.jobs,
        senders=args.senders,
        concurrency=args.concurrency,
        prefetch_multiplier=args.prefetch_multiplier,
        redis_url=args.redis_url,
        poll_ms=args.poll_ms,
        timeout_s=args.timeout,
        mode=args.mode,
    )
    emit_result("celery", metrics, config)


if __name__ == "__main__":
    main()
