"""Helpers shared by the benchmark scripts.

Why a module of its own: every benchmark must agree on the same conventions (loopback-only
targets, a private Redis db and key prefix per run, one JSON result line on stdout, bounded
process shutdown, the same percentile definition), otherwise baseline and Conveyor figures are
not comparable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psutil  # type: ignore[import-untyped]  # no stubs in the bench group

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"

#: Redis db 12 is reserved for benchmarks so that a run never touches application data.
DEFAULT_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
DEFAULT_POSTGRES_DSN = os.environ.get(
    "BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

Metrics = dict[str, float]
_T = TypeVar("_T")


def log(message: str) -> None:
    """Diagnostics go to stderr so that stdout carries only the JSON result line."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run on uvloop when installed: the taskiq worker CLI and uvicorn both use it by default."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def require_loopback(url: str) -> str:
    """Refuse any target that is not this machine: benchmarks only ever talk to 127.0.0.1/::1."""
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK_HOSTS:
        raise SystemExit(f"refusing non-loopback target {url!r}")
    return url


def new_run_id(kind: str) -> str:
    """A unique key prefix for one run, so concurrent or aborted runs never collide."""
    return f"bench:{kind}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def emit_result(benchmark: str, metrics: Metrics, config: dict[str, Any]) -> None:
    """Print the single JSON result line that ``bench.run`` parses (NaN becomes null)."""
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
    line = {"benchmark": benchmark, "metrics": clean, "config": config}
    print(json.dumps(line, sort_keys=True, allow_nan=False), flush=True)


def parse_result_line(stdout: str) -> dict[str, Any]:
    """Return the last JSON object line of a benchmark's stdout."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            parsed = json.loads(line)
            if isinstance(parsed, dict) and "metrics" in parsed:
                return parsed
    raise ValueError("no JSON result line on stdout")


def throughput_metrics(
    *,
    jobs: int,
    mode: str,
    completed: int,
    before_clock: int,
    clock_start: float,
    done: float,
    send_start: float,
    send_end: float,
    worker_cpu: float,
    producer_cpu: float | None = None,
) -> Metrics:
    """The throughput baselines' figures (`raw_taskiq`, `celery_throughput`): `completed` jobs
    inside the clock window [clock_start, done], `before_clock` completed before it. Conveyor's
    side adds its API and PostgreSQL figures (its producer is the API: no `producer_cpu`)."""
    send_s = send_end - send_start
    e2e_s = done - clock_start
    metrics: Metrics = {
        "jobs_completed": float(completed + before_clock),
        "jobs_per_s": completed / e2e_s if e2e_s > 0 else 0.0,
        "e2e_s": e2e_s,
        "send_s": send_s,
        "send_per_s": jobs / send_s if send_s > 0 else 0.0,
        "drain_after_send_s": done - send_end if mode == "concurrent" else e2e_s,
        "worker_cpu_s": worker_cpu,
        "worker_cpu_pct": 100.0 * worker_cpu / e2e_s if e2e_s > 0 else 0.0,
        "worker_cpu_ms_per_1k_jobs": worker_cpu * 1e6 / max(completed, 1),
    }
    if producer_cpu is not None:
        metrics["producer_cpu_s"] = producer_cpu
    return metrics


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summarize(values: Iterable[float | None]) -> dict[str, float]:
    """Median and spread (min-max) of repeated runs; null/NaN values are skipped."""
    clean = sorted(v for v in values if v is not None and not math.isnan(v))
    if not clean:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    mid = len(clean) // 2
    median = clean[mid] if len(clean) % 2 else (clean[mid - 1] + clean[mid]) / 2
    return {"median": median, "min": clean[0], "max": clean[-1], "n": len(clean)}


def raise_nofile_limit(wanted: int | None = None) -> int:
    """Raise RLIMIT_NOFILE's soft limit towards the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if wanted is None else min(wanted, hard)
    if hard == resource.RLIM_INFINITY and wanted is None:
        target = 1 << 20
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    """User+system CPU seconds consumed so far by the processes and all their children."""
    total = 0.0
    for pid in pids:
        for proc in _tree(pid):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def tree_rss_bytes(pids: Iterable[int]) -> int:
    """Resident set size of the processes and all their children."""
    total = 0
    for pid in pids:
        for proc in _tree(pid):
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
    return total


def stop_process_group(proc: subprocess.Popen[Any], timeout: float = 10.0) -> int | None:
    """SIGTERM a child started with ``start_new_session=True``; SIGKILL its group on timeout.

    Only the process group we created is signalled, by its id.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"pid {proc.pid} ignored SIGTERM for {timeout:.0f}s, killing its group")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
    # Reap stragglers of the group (e.g. worker children) that outlived their parent.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


async def stop_async_process_group(
    proc: asyncio.subprocess.Process, timeout: float = 10.0
) -> int | None:
    """``stop_process_group`` for an asyncio child started with ``start_new_session=True``."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=timeout)
        except TimeoutError:
            log(f"pid {proc.pid} ignored SIGTERM for {timeout:.0f}s, killing its group")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), timeout=timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


def bench_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: the repo on PYTHONPATH, unbuffered output."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _redis_version(url: str) -> str:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=2)
        try:
            return str(client.info("server").get("redis_version", "unknown"))
        finally:
            client.close()
    except Exception as exc:  # a missing fact is reported, not fatal
        return f"unavailable ({type(exc).__name__})"


def _postgres_version(dsn: str) -> str:
    try:
        import asyncpg
    except ImportError:
        return "unavailable (asyncpg not installed)"

    async def query() -> str:
        conn = await asyncpg.connect(dsn, timeout=3)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return asyncio.run(query())
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _app_worktree() -> str:
    """Whether the Conveyor code that ran is the commit's: benchmarks run the working tree."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "conveyor", "migrations"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    changed = [line[3:] for line in out.stdout.splitlines() if line.strip()]
    if not changed:
        return "clean"
    return f"{len(changed)} uncommitted change(s) under conveyor/: {', '.join(changed)}"


def machine_facts(
    redis_url: str = DEFAULT_REDIS_URL, postgres_dsn: str = DEFAULT_POSTGRES_DSN
) -> dict[str, Any]:
    """Facts a reader needs to judge the figures: hardware, OS and service/library versions."""
    mem = psutil.virtual_memory().total
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count() or 0,
        "physical_cores": psutil.cpu_count(logical=False) or 0,
        "memory_gib": round(mem / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "redis": _redis_version(redis_url),
        "postgresql": _postgres_version(postgres_dsn),
        "packages": {
            name: _package_version(name)
            for name in (
                "taskiq",
                "taskiq-redis",
                "redis",
                "websockets",
                "uvloop",
                "strawberry-graphql",
                "uvicorn",
            )
        },
        "git_commit": _git_commit(),
        "app_worktree": _app_worktree(),
    }
