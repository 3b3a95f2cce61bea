"""Benchmark harness: run every (baseline, Conveyor) pair several times, record, report.

Why: a single run on a shared 2-core machine is noise. The harness runs each side of each
benchmark ``--runs`` times (default 3, interleaving baseline and Conveyor so drift hits both),
keeps every run's figures, and reports the median with the min-max spread. Results go to
``bench/results/latest.json`` (rewritten after every run, so an interrupted session keeps what
it measured), then ``bench.report`` renders ``bench/results/benchmarks.md`` and PNG plots.

Each side is a standalone command that prints one JSON result line (see ``bench.common``); the
harness records that exact command, so every figure in the report can be reproduced by hand.
Benchmarks never fail on time: slowness is recorded, not asserted. The exit status is 1 only if
a run crashed or printed no result.

Adding Conveyor: make ``conveyor_throughput_side`` / ``conveyor_fanout_side`` below return a
``Side`` whose command prints the same metric keys as the baseline.

Run: ``.venv/bin/python -m bench.run`` (full) or ``.venv/bin/python -m bench.run --quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    RESULTS_DIR,
    bench_env,
    log,
    machine_facts,
    parse_result_line,
    summarize,
)

PYTHON = sys.executable


@dataclass(frozen=True)
class Scale:
    """Sizes for one harness invocation."""

    name: str
    jobs: int
    subscribers: tuple[int, ...]
    events: int
    interval: float
    client_processes: int
    idle_window: float
    #: Offered loads (submissions per second) of the latency benchmark, and its duration.
    latency_rates: tuple[int, ...] = (50, 200)
    latency_duration: float = 20.0
    #: Jobs in the query benchmark's table, timed requests per query.
    query_jobs: int = 1_000_000
    query_requests: int = 200
    #: Fan-out sizes at or above this run once per side whatever --runs says (shared machine).
    big_fanout: int = 10_000
    #: Seconds of closed-loop load per per-request run (after a 3 s warm-up).
    per_request_duration: float = 15.0


FULL = Scale(
    "full",
    jobs=20_000,
    subscribers=(1_000, 10_000),
    events=10,
    interval=2.0,
    client_processes=4,
    idle_window=20.0,
)
QUICK = Scale(
    "quick",
    jobs=1_000,
    subscribers=(50, 200),
    events=3,
    interval=0.5,
    client_processes=2,
    idle_window=2.0,
    latency_rates=(50,),
    latency_duration=5.0,
    query_jobs=20_000,
    query_requests=50,
    per_request_duration=4.0,
)


@dataclass(frozen=True)
class Metric:
    """One figure shown in the report."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    digits: int = 0


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a command that prints one JSON result line."""

    label: str
    argv: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True)
class Benchmark:
    key: str
    title: str
    what: str
    metrics: tuple[Metric, ...]
    baseline: Side
    conveyor: Side | None  # None: reported as "not yet measured"
    conveyor_label: str = "Conveyor"
    group: str = ""  # benchmarks sharing a group are plotted together (e.g. fan-out sizes)
    params: dict[str, float] = field(default_factory=dict)
    max_runs: int | None = None  # caps --runs (e.g. the 10,000-subscriber fan-out)


THROUGHPUT_METRICS = (
    Metric("jobs_per_s", "Throughput over the measured interval", "jobs/s", True),
    Metric("e2e_s", "Measured interval", "s", False, 2),
    Metric("send_per_s", "Enqueue rate", "jobs/s", True),
    Metric("worker_cpu_ms_per_1k_jobs", "Worker CPU per 1,000 jobs", "ms", False),
    Metric("worker_cpu_pct", "Worker CPU while running", "% of a core", False),
    Metric("jobs_completed", "Jobs completed", "jobs", True),
    Metric("api_cpu_ms_per_1k_jobs", "API CPU per 1,000 jobs (Conveyor)", "ms", False),
    Metric("pg_cpu_ms_per_1k_jobs", "PostgreSQL CPU per 1,000 jobs (Conveyor)", "ms", False),
    Metric("worker_kernel_pct_of_cpu", "Worker CPU spent in the kernel (Conveyor)", "%", False),
    Metric("verified", "Every job SUCCEEDED with 1 attempt and 3 events (1 = yes)", "", True),
)

LATENCY_METRICS = (
    Metric("done_p50_ms", "Submit to SUCCEEDED observed, p50", "ms", False, 1),
    Metric("done_p99_ms", "Submit to SUCCEEDED observed, p99", "ms", False, 1),
    Metric("done_max_ms", "Submit to SUCCEEDED observed, max", "ms", False, 1),
    Metric("running_p50_ms", "Submit to RUNNING observed, p50", "ms", False, 1),
    Metric("running_p99_ms", "Submit to RUNNING observed, p99", "ms", False, 1),
    Metric("submit_p50_ms", "Submit call (mutation / kiq), p50", "ms", False, 1),
    Metric("submit_p99_ms", "Submit call (mutation / kiq), p99", "ms", False, 1),
    Metric("server_finished_p50_ms", "PostgreSQL created to finished, p50", "ms", False, 1),
    Metric("server_finished_p99_ms", "PostgreSQL created to finished, p99", "ms", False, 1),
    Metric("achieved_per_s", "Submissions answered per second (load + drain)", "jobs/s", True, 1),
    Metric("unobserved", "Jobs stored but never seen SUCCEEDED by the client", "jobs", False),
    Metric("completed", "Jobs observed SUCCEEDED", "jobs", True),
    Metric("missing", "Jobs not observed within the grace period", "jobs", False),
    Metric("api_cpu_pct", "API CPU", "% of a core", False),
    Metric("worker_cpu_pct", "Worker CPU", "% of a core", False),
)

PER_REQUEST_METRICS = (
    Metric("requests_per_s", "Requests answered per second", "req/s", True),
    Metric("p50_ms", "Request latency, p50", "ms", False, 1),
    Metric("p99_ms", "Request latency, p99", "ms", False, 1),
    Metric("max_ms", "Request latency, max", "ms", False, 1),
    Metric("server_cpu_ms_per_request", "Server CPU per request", "ms", False, 2),
    Metric("failed", "Answers that were not the expected data", "", False),
    Metric("stored_consistent", "Jobs = decisions = audit rows stored (1 = yes)", "", True),
)

QUERY_NAMES = (
    ("first_page", "`jobs(first: 50)`, first page"),
    ("page_1000", "`jobs(first: 50, after:)`, page 1,000"),
    ("status_failed", "`jobs(filter: {status: [FAILED]})`"),
    ("status_running_failed", "`jobs(filter: {status: [RUNNING, FAILED]})`"),
    ("job_events", "`job(id) { events(first: 100) }`"),
    ("dashboard_jobs", "Dashboard `Jobs` query (with `totalCount(atMost: 10000)`)"),
)

QUERY_METRICS = (
    *(
        Metric(f"{key}_{pct}_ms", f"{label}, {pct}", "ms", False, 2)
        for key, label in QUERY_NAMES
        for pct in ("p50", "p99")
    ),
    Metric("api_cpu_ms_per_request", "API CPU per request", "ms", False, 1),
)

FANOUT_METRICS = (
    Metric("latency_p50_ms", "Publish to receipt, p50", "ms", False, 1),
    Metric("latency_p99_ms", "Publish to receipt, p99", "ms", False, 1),
    Metric("latency_max_ms", "Publish to receipt, max", "ms", False, 1),
    Metric(
        "all_delivered_ms_median", "Event reaches every subscriber (median event)", "ms", False, 1
    ),
    Metric("rss_per_sub_kib", "Server RSS per idle subscriber", "KiB", False, 1),
    Metric("rss_connected_mib", "Server RSS with all subscribers", "MiB", False, 1),
    Metric("idle_cpu_pct", "Server CPU, subscribers idle", "% of a core", False, 1),
    Metric("publish_cpu_pct", "Server CPU while publishing", "% of a core", False, 1),
    Metric("server_cpu_ms_per_event", "Server CPU per event", "ms", False, 1),
    Metric("connect_s", "Time to open all subscriptions", "s", False, 1),
    Metric("connected", "Subscribers connected", "", True),
    Metric("messages_missing", "Messages missing", "", False),
    Metric("errors", "Client errors", "", False),
)


# ----------------------------------------------------------------------------------------------
# Extension points: return a Side here once Conveyor can be measured.
# ----------------------------------------------------------------------------------------------


def conveyor_throughput_side(scale: Scale, mode: str) -> Side | None:
    """Conveyor's side of the throughput benchmarks: ``bench.conveyor_throughput``.

    ``scale.jobs`` no-op jobs submitted through GraphQL (``submitJobs`` batches of 1,000), run
    by one ``python -m conveyor worker``, each checked SUCCEEDED with its attempt and events in
    PostgreSQL; ``mode`` as ``bench.raw_taskiq --mode``.
    """
    return throughput_side("Conveyor", scale, mode, module="bench.conveyor_throughput")


def conveyor_fanout_side(scale: Scale, subscribers: int) -> Side | None:
    """Conveyor's side of the fan-out benchmark: ``jobUpdates`` subscriptions on one API process
    (``bench.fanout.ConveyorTarget``), each event a real job finishing in a worker."""
    return fanout_side(
        "Conveyor", scale, subscribers, target="conveyor", target_options={"concurrency": "16"}
    )


# ----------------------------------------------------------------------------------------------


def throughput_side(label: str, scale: Scale, mode: str, module: str = "bench.raw_taskiq") -> Side:
    return Side(
        label=label,
        argv=(PYTHON, "-m", module, "--jobs", str(scale.jobs), "--mode", mode),
        timeout_s=120.0 + scale.jobs / 50.0,
    )


def latency_side(label: str, scale: Scale, rate: int, target: str) -> Side:
    argv = (
        PYTHON,
        "-m",
        "bench.latency",
        "--target",
        target,
        "--rate",
        str(rate),
        "--duration",
        f"{scale.latency_duration:g}",
    )
    return Side(label=label, argv=argv, timeout_s=240.0 + scale.latency_duration)


def per_request_side(label: str, scale: Scale, target: str, api_workers: int = 1) -> Side:
    argv = (
        PYTHON,
        "-m",
        "bench.per_request",
        "--target",
        target,
        "--duration",
        f"{scale.per_request_duration:g}",
        "--api-workers",
        str(api_workers),
    )
    return Side(label=label, argv=argv, timeout_s=180.0 + scale.per_request_duration)


def query_side(label: str, scale: Scale, target: str) -> Side:
    argv = (
        PYTHON,
        "-m",
        "bench.conveyor_queries",
        "--target",
        target,
        "--jobs",
        str(scale.query_jobs),
        "--requests",
        str(scale.query_requests),
    )
    # The first run of either side builds the dataset (one INSERT ... SELECT): budget for it.
    return Side(label=label, argv=argv, timeout_s=300.0 + scale.query_jobs / 500.0)


def fanout_side(
    label: str,
    scale: Scale,
    subscribers: int,
    target: str = "relay",
    target_options: dict[str, str] | None = None,
) -> Side:
    argv = [
        PYTHON,
        "-m",
        "bench.fanout",
        "--target",
        target,
        "--subscribers",
        str(subscribers),
        "--events",
        str(scale.events),
        "--interval",
        str(scale.interval),
        "--client-processes",
        str(scale.client_processes),
        "--idle-window",
        str(scale.idle_window),
    ]
    for key, value in (target_options or {}).items():
        argv += ["--target-option", f"{key}={value}"]
    budget = 240.0 + subscribers / 25.0 + scale.events * scale.interval + scale.idle_window
    return Side(label=label, argv=tuple(argv), timeout_s=budget)


def benchmarks(scale: Scale) -> list[Benchmark]:
    raw = (
        "Baseline: raw taskiq with taskiq-redis `RedisStreamBroker`, a no-op task, no database, "
        "one `taskiq worker` process (default max-async-tasks 100, xread_count 100)."
    )
    items = [
        Benchmark(
            key="throughput",
            title=f"Throughput: {scale.jobs:,} no-op jobs, producer and one worker together",
            what=(
                "Jobs per second from the first enqueue to the last acknowledgement while the "
                f"worker consumes during enqueueing (producer and worker share the cores). {raw}"
            ),
            metrics=THROUGHPUT_METRICS,
            baseline=throughput_side("Raw taskiq (RedisStreamBroker)", scale, "concurrent"),
            conveyor=conveyor_throughput_side(scale, "concurrent"),
            group="throughput",
            params={"jobs": float(scale.jobs)},
        ),
        Benchmark(
            key="throughput_drain",
            title=f"Drain: {scale.jobs:,} queued no-op jobs, one worker alone",
            what=(
                "All jobs are enqueued before the worker starts; jobs per second from the first "
                f"acknowledgement to the last (worker start-up excluded). {raw}"
            ),
            metrics=THROUGHPUT_METRICS,
            baseline=throughput_side("Raw taskiq (RedisStreamBroker)", scale, "drain"),
            conveyor=conveyor_throughput_side(scale, "drain"),
            group="throughput",
            params={"jobs": float(scale.jobs)},
        ),
    ]
    celery = (
        "Baseline: Celery 5 with a Redis broker, a no-op task (one INCR to count completions), "
        "one `celery worker` (prefork, one process per core), `task.delay()` per job."
    )
    for key, mode, title in (
        ("throughput_celery", "concurrent", "producer and one worker together"),
        ("throughput_drain_celery", "drain", "one worker alone"),
    ):
        items.append(
            Benchmark(
                key=key,
                title=f"Against Celery: {scale.jobs:,} no-op jobs, {title}",
                what=f"As above ({mode}), with Celery in the baseline's place. {celery}",
                metrics=THROUGHPUT_METRICS,
                baseline=throughput_side(
                    "Celery 5 (Redis broker)", scale, mode, "bench.celery_throughput"
                ),
                conveyor=conveyor_throughput_side(scale, mode),
                group="throughput_celery",
                params={"jobs": float(scale.jobs)},
            )
        )
    per_request = (
        "Closed loop: 16 keep-alive connections (the benchmarks' own HTTP client), each sending "
        "its next request when the answer arrives, for "
        f"{scale.per_request_duration:g} s after a 3 s warm-up; no worker runs."
    )
    items += [
        Benchmark(
            key="per_request_floor",
            title="Per request: the API process's floor, an authenticated `{ __typename }`",
            what=(
                f"{per_request} Baseline: a bare Starlette app on uvicorn (same server options) "
                "answering the same JSON to every POST. Conveyor: `{ __typename }` with an API "
                "key through the whole stack (auth, limits, GraphQL)."
            ),
            metrics=PER_REQUEST_METRICS,
            baseline=per_request_side("Bare Starlette", scale, "starlette"),
            conveyor=per_request_side("Conveyor `{ __typename }`", scale, "typename"),
            conveyor_label="Conveyor `{ __typename }`",
            group="per_request",
        ),
        Benchmark(
            key="per_request_submit",
            title="Per request: single `submitJob` mutations, one API process",
            what=(
                f"{per_request} Baseline: the same process's floor, `{{ __typename }}`. Conveyor: "
                "`submitJob` of `demo.noop` (stored with its decision and audit rows; counted "
                "at the end)."
            ),
            metrics=PER_REQUEST_METRICS,
            baseline=per_request_side("Conveyor `{ __typename }`", scale, "typename"),
            conveyor=per_request_side("Conveyor `submitJob`", scale, "submit"),
            conveyor_label="Conveyor `submitJob`",
            group="per_request",
        ),
        Benchmark(
            key="per_request_submit_2",
            title="Per request: single `submitJob` mutations, `conveyor serve --workers 2`",
            what=f"{per_request} As above with two API processes on the port.",
            metrics=PER_REQUEST_METRICS,
            baseline=per_request_side("`{ __typename }`, 2 processes", scale, "typename", 2),
            conveyor=per_request_side("`submitJob`, 2 processes", scale, "submit", 2),
            conveyor_label="Conveyor `submitJob`, 2 processes",
            group="per_request",
        ),
    ]
    for rate in scale.latency_rates:
        items.append(
            Benchmark(
                key=f"latency_{rate}",
                title=f"Latency: {rate} no-op jobs/s offered for {scale.latency_duration:g} s",
                what=(
                    f"Open-loop load: one submission every {1000 / rate:g} ms, each on its own "
                    "schedule. Conveyor: one `submitJob` mutation per job over HTTP, one worker; "
                    "the client observes RUNNING and SUCCEEDED through ONE `jobUpdates` "
                    "subscription filtered on kind `demo.noop` (not a `jobEvents` subscription "
                    "per job), latency from the start of the mutation to receipt of the update. "
                    "Baseline: raw taskiq `kiq()` then the task PUBLISHes on a Redis channel the "
                    'client listens to (no separate RUNNING signal). "PostgreSQL created to '
                    'finished" is from the job rows, without HTTP or WebSocket.'
                ),
                metrics=LATENCY_METRICS,
                baseline=latency_side("Raw taskiq round trip", scale, rate, "raw"),
                conveyor=latency_side("Conveyor", scale, rate, "conveyor"),
                group="latency",
                params={"rate": float(rate)},
            )
        )
    items.append(
        Benchmark(
            key="queries",
            title=f"Queries: {scale.query_jobs:,} jobs in the table",
            what=(
                f"{scale.query_requests} timed requests per query, one at a time, after 20 "
                "untimed, with an admin key (`bench/conveyor_queries.py` describes the dataset). "
                "Conveyor: GraphQL over HTTP to `python -m conveyor serve`. Baseline: the same SQL "
                "statements the API runs (captured from `conveyor.db.jobs`), straight through one "
                "asyncpg connection: the difference is the API's overhead."
            ),
            metrics=QUERY_METRICS,
            baseline=query_side("Same SQL via asyncpg", scale, "sql"),
            conveyor=query_side("Conveyor GraphQL API", scale, "api"),
            group="queries",
            params={"jobs": float(scale.query_jobs)},
        )
    )
    for n in scale.subscribers:
        items.append(
            Benchmark(
                key=f"fanout_{n}",
                title=f"Fan-out: one event stream to {n:,} WebSocket subscribers",
                what=(
                    f"{scale.events} events, one every {scale.interval:g} s, each delivered to "
                    f"every subscriber ({scale.client_processes} client processes on the same "
                    "machine). Baseline: a bare Redis pub/sub -> `websockets` relay "
                    "(`bench/relay.py`), no GraphQL."
                ),
                metrics=FANOUT_METRICS,
                baseline=fanout_side("Bare relay (Redis pub/sub -> websockets)", scale, n),
                conveyor=conveyor_fanout_side(scale, n),
                group="fanout",
                params={"subscribers": float(n)},
                max_runs=1 if n >= scale.big_fanout else None,
            )
        )
    return items


#: Inclusive-share patterns (regex over "function file") reported for each profiled process.
PROFILE_HIGHLIGHTS: dict[str, dict[str, str]] = {
    "worker": {
        "claims (claim_many, batched)": r"(^|\.)claim_many .*conveyor/services/",
        "outcomes (finish_many, batched)": r"(^|\.)finish_many .*conveyor/services/",
        "micro-batcher (Batcher._drain)": r"Batcher\._drain ",
        "pool pre-ping (BEGIN+ROLLBACK per checkout)": r"_async_ping ",
        "transaction begin/commit (engine.begin)": r"(^|\.)transaction .*conveyor/db/engine\.py",
        "pubsub.publish (Redis PUBLISH after commit)": (
            r"(^|\.)publish .*conveyor/pubsub/wire\.py"
        ),
        "message ack (XACK+XDEL)": r"(^|\.)(ack|_ack_many) .*conveyor/worker/broker\.py",
        "broker.listen (XREADGROUP)": r"(^|\.)listen .*conveyor/worker/broker\.py",
        "job runner (run_job and JobRunner, outside the batches)": (
            r"(^|\.)run_job .*conveyor/worker/"
        ),
        "maintenance loop": r"_maintenance_loop ",
        "SQLAlchemy (any frame)": r"site-packages/sqlalchemy/",
        "asyncpg (any frame)": r"site-packages/asyncpg/",
        "redis-py (any frame)": r"site-packages/redis/",
        "taskiq (any frame)": r"site-packages/taskiq/",
    },
    "api": {
        "HTTP GraphQL requests (submitJobs)": r"GraphQLEndpoint\.__call__ ",
        "submitJobs resolver": r"(^|\.)submit_jobs .*conveyor/api/resolvers\.py",
        "submit_many (validate, insert, publish, send)": (
            r"(^|\.)submit_many .*conveyor/services/submit\.py"
        ),
        "payload validation (validate)": r"(^|\.)validate .*conveyor/services/submit\.py",
        "insert (INSERT ... unnest, rows to domain objects)": (
            r"(^|\.)insert .*conveyor/db/jobs\.py"
        ),
        "pubsub.publish + dispatcher XADD after commit (outbox.announce)": (
            r"(^|\.)announce .*conveyor/services/outbox\.py"
        ),
        "events hub loop, no subscriber connected (pub/sub read + decode)": (
            r"Hub\._run .*conveyor/pubsub/hub\.py"
        ),
        "pubsub.decode": r"(^|\.)decode .*conveyor/pubsub/wire\.py",
        "pool pre-ping (BEGIN+ROLLBACK per checkout)": r"_async_ping ",
        "strawberry / graphql-core (any frame)": r"site-packages/(strawberry|graphql)/",
    },
    "api_fanout": {
        "shared feed: GraphQL execution once per change (Feeds)": r"Feeds\._(run|broadcast) ",
        "per-subscriber delivery (Member.get / push)": r"Member\.(get|push) ",
        "subscription set-up (Feeds.join)": r"Feeds\.join ",
        "per-subscriber generator (follow_updates, before shared feeds)": (
            r"(^|\.)follow_updates .*conveyor/services/live\.py"
        ),
        "websocket send (uvicorn / websockets)": (
            r"(^|\.)send .*site-packages/(uvicorn/protocols/websockets|websockets)/"
        ),
        "direct frame writes (conveyor.api.direct, ADR-0025)": (
            r"(^|\.)write .*conveyor/api/direct\.py"
        ),
        "websocket keepalive pings (uvicorn)": r"send_keepalive_ping ",
        "closing the connections at the end (websockets close_connection)": r"close_connection ",
        "the publisher's submitJob + dispatch marks": r"(submit_job|_mark_loop) ",
    },
}


def summarize_profiles(files: dict[str, str]) -> dict[str, Any]:
    """Top frames, packages and PROFILE_HIGHLIGHTS shares of recorded speedscope files."""
    from bench.profile_summary import inclusive_share
    from bench.profile_summary import summarize as summarize_profile

    out: dict[str, Any] = {}
    for name, path in files.items():
        file = Path(path)
        if not file.is_absolute():
            file = REPO_ROOT / file
        if not file.exists():
            continue
        summary = summarize_profile(file, top=15)
        summary["highlights"] = {
            label: round(inclusive_share(file, pattern), 1)
            for label, pattern in PROFILE_HIGHLIGHTS.get(name, {}).items()
        }
        summary["file"] = (
            str(file.relative_to(REPO_ROOT)) if file.is_relative_to(REPO_ROOT) else str(file)
        )
        out[name] = summary
    return out


def run_profile(scale: Scale, py_spy: str, out_dir: Path) -> dict[str, Any]:
    """One Conveyor throughput run with py-spy attached to the API and the worker."""
    profile_dir = out_dir / "profiles"
    argv = (
        PYTHON,
        "-m",
        "bench.conveyor_throughput",
        "--jobs",
        str(scale.jobs),
        "--profile-dir",
        str(profile_dir),
        "--py-spy",
        py_spy,
    )
    side = Side("Conveyor throughput under py-spy", argv, timeout_s=180.0 + scale.jobs / 25.0)
    outcome = run_side(side)
    record: dict[str, Any] = {
        "command": display_command(argv),
        "ok": outcome["ok"],
        "error": outcome.get("error"),
        "metrics": outcome.get("metrics", {}),
        "processes": {},
    }
    files = dict(outcome.get("config", {}).get("profiles") or {})
    # The API again, while it delivers events to the smallest fan-out size of this scale.
    n = scale.subscribers[0]
    fan_argv = (
        *fanout_side("Conveyor", scale, n, target="conveyor").argv,
        "--target-option",
        f"profile_dir={profile_dir}",
        "--target-option",
        f"py_spy={py_spy}",
    )
    fan = run_side(Side("Conveyor fan-out under py-spy", fan_argv, timeout_s=600.0))
    record["fanout_command"] = display_command(fan_argv)
    record["fanout_metrics"] = fan.get("metrics", {})
    fan_file = profile_dir / "api_fanout.speedscope.json"
    if fan["ok"] and fan_file.exists():
        files["api_fanout"] = str(fan_file)
    record["processes"] = summarize_profiles(files)
    return record


def prepare_app_snapshot(ref: str) -> tuple[dict[str, str], Path | None]:
    """Export ``conveyor/`` and ``migrations/`` of ``ref`` to a temporary directory that every
    Conveyor process of this session runs (``$CVBENCH_APP_DIR``). Others may be editing the
    working tree meanwhile: without a snapshot, runs of one session could measure different
    code. ``ref == "worktree"`` runs the working tree as it is at each moment."""
    from bench.conveyor import APP_DIR_ENV

    if ref == "worktree":
        os.environ.pop(APP_DIR_ENV, None)
        return {"ref": "worktree"}, None

    def git(*args: str) -> bytes:
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, check=True, timeout=60
        ).stdout

    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()
    snapshot = Path(tempfile.mkdtemp(prefix="cvbench-app-"))
    archive = git("archive", "--format=tar", commit, "conveyor", "migrations")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(snapshot, filter="data")
    os.environ[APP_DIR_ENV] = str(snapshot)
    subject = git("log", "-1", "--format=%s", commit).decode().strip()
    return {"ref": ref, "commit": commit[:12], "subject": subject}, snapshot


def find_py_spy(explicit: str | None) -> str | None:
    for candidate in (explicit, os.environ.get("PY_SPY"), shutil.which("py-spy")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def display_command(argv: tuple[str, ...]) -> str:
    """The command as a reader would type it from the repo root."""
    parts = list(argv)
    with contextlib.suppress(ValueError):
        parts[0] = str(Path(parts[0]).relative_to(REPO_ROOT))
    return shlex.join(parts)


def run_side(side: Side) -> dict[str, Any]:
    """Run one command once (bounded by its timeout); return its parsed result or an error."""
    log(f"running: {display_command(side.argv)}")
    load_before = os.getloadavg()[0]  # the machine is shared: record how busy it was
    started = time.monotonic()
    proc = subprocess.Popen(
        side.argv,
        cwd=REPO_ROOT,
        env=bench_env(),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, _ = proc.communicate(timeout=side.timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            stdout, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            stdout, _ = proc.communicate()
        return {
            "ok": False,
            "timed_out": True,
            "error": f"timed out after {side.timeout_s:.0f}s",
            "wall_s": time.monotonic() - started,
            "load_1m_before": load_before,
        }
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # nothing of this run may outlive it
    wall = time.monotonic() - started
    if proc.returncode != 0:
        return {
            "ok": False,
            "error": f"exit code {proc.returncode}",
            "wall_s": wall,
            "load_1m_before": load_before,
        }
    try:
        parsed = parse_result_line(stdout)
    except ValueError as exc:
        return {"ok": False, "error": str(exc), "wall_s": wall, "load_1m_before": load_before}
    return {
        "ok": True,
        "metrics": parsed["metrics"],
        "config": parsed.get("config", {}),
        "wall_s": wall,
        "load_1m_before": load_before,
    }


def _side_record(side: Side | None, label: str) -> dict[str, Any]:
    if side is None:
        return {"label": label, "status": "not yet measured", "command": None, "runs": []}
    return {
        "label": side.label,
        "status": "measured",
        "command": display_command(side.argv),
        "runs": [],
    }


def _summaries(record: dict[str, Any], metrics: tuple[Metric, ...]) -> None:
    good = [r["metrics"] for r in record["runs"] if r.get("ok")]
    record["summary"] = {
        m.key: summarize(run[m.key] for run in good if m.key in run) for m in metrics
    }


def write_results(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def run_all(
    items: list[Benchmark],
    runs: int,
    cooldown_s: float,
    results_path: Path,
    scale: Scale,
    command: str,
    app_code: dict[str, str] | None = None,
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "harness_command": command,
        "app_code": app_code or {},
        "scale": asdict(scale),
        "runs_per_side": runs,
        "machine": machine_facts(),
        "benchmarks": [],
    }
    for bench in items:
        entry: dict[str, Any] = {
            "key": bench.key,
            "title": bench.title,
            "what": bench.what,
            "group": bench.group,
            "params": bench.params,
            "metrics": [asdict(m) for m in bench.metrics],
            "sides": {
                "baseline": _side_record(bench.baseline, bench.baseline.label),
                "conveyor": _side_record(bench.conveyor, bench.conveyor_label),
            },
        }
        results["benchmarks"].append(entry)
        bench_runs = min(runs, bench.max_runs) if bench.max_runs else runs
        for index in range(bench_runs):
            for name, side in (("baseline", bench.baseline), ("conveyor", bench.conveyor)):
                if side is None:
                    continue
                log(f"{bench.key} / {name}: run {index + 1} of {bench_runs}")
                outcome = run_side(side)
                entry["sides"][name]["runs"].append(outcome)
                _summaries(entry["sides"][name], bench.metrics)
                write_results(results, results_path)
                if not outcome["ok"]:
                    log(f"{bench.key} / {name}: {outcome['error']}")
                time.sleep(cooldown_s)
        for name in ("baseline", "conveyor"):
            _summaries(entry["sides"][name], bench.metrics)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_results(results, results_path)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for smoke tests")
    parser.add_argument("--runs", type=int, default=None, help="runs per side (default 3, quick 1)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated benchmark keys or globs, e.g. throughput,fanout_*",
    )
    parser.add_argument("--jobs", type=int, help="override the throughput job count")
    parser.add_argument("--subscribers", help="override fan-out sizes, e.g. 1000,10000")
    parser.add_argument("--events", type=int, help="override events per fan-out run")
    parser.add_argument("--interval", type=float, help="override seconds between events")
    parser.add_argument("--client-processes", type=int, help="override fan-out client processes")
    parser.add_argument("--idle-window", type=float, help="override fan-out idle CPU window (s)")
    parser.add_argument("--cooldown", type=float, default=2.0, help="seconds between runs")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-report", action="store_true", help="skip markdown and plots")
    parser.add_argument(
        "--py-spy",
        default=None,
        help="py-spy executable for the profile step (default: $PY_SPY, then PATH)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile step")
    parser.add_argument(
        "--app-ref",
        default="HEAD",
        help="git ref whose conveyor/ and migrations/ Conveyor runs, exported once for the whole "
        "session ('worktree': the working tree as it is at each moment)",
    )
    parser.add_argument(
        "--keep-query-db", action="store_true", help="keep the query benchmark's database"
    )
    parser.add_argument(
        "--publish-dir",
        type=Path,
        default=None,
        help="also copy benchmarks.md and its PNGs there (e.g. docs/)",
    )
    args = parser.parse_args(argv)

    scale = QUICK if args.quick else FULL
    overrides: dict[str, Any] = {}
    if args.jobs is not None:
        overrides["jobs"] = args.jobs
    if args.subscribers:
        overrides["subscribers"] = tuple(int(x) for x in args.subscribers.split(","))
    if args.events is not None:
        overrides["events"] = args.events
    if args.interval is not None:
        overrides["interval"] = args.interval
    if args.client_processes is not None:
        overrides["client_processes"] = args.client_processes
    if args.idle_window is not None:
        overrides["idle_window"] = args.idle_window
    if overrides:
        scale = replace(scale, name=f"{scale.name} (overridden)", **overrides)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)

    items = benchmarks(scale)
    want_profile = not args.no_profile
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        items = [b for b in items if any(fnmatch.fnmatchcase(b.key, w) for w in wanted)]
        want_profile = want_profile and any(fnmatch.fnmatchcase("profile", w) for w in wanted)
        if not items and not want_profile:
            parser.error(f"--only {args.only!r} matches no benchmark")

    command = shlex.join(
        [
            display_command((PYTHON,)),
            "-m",
            "bench.run",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    results_path = args.output_dir / "latest.json"
    app_code, snapshot = prepare_app_snapshot(args.app_ref)
    log(f"Conveyor code measured: {app_code}")
    try:
        results = run_all(items, runs, args.cooldown, results_path, scale, command, app_code)
        if want_profile:
            py_spy = find_py_spy(args.py_spy)
            if py_spy is None:
                log("profile step skipped: no py-spy (--py-spy PATH, $PY_SPY or PATH)")
                results["profiles"] = {"skipped": "py-spy not found"}
            else:
                log("profile: one Conveyor throughput run under py-spy")
                results["profiles"] = run_profile(scale, py_spy, args.output_dir)
            write_results(results, results_path)
    finally:
        if any(b.key == "queries" for b in items) and not args.keep_query_db:
            from bench.conveyor import drop_database
            from bench.conveyor_queries import database_name

            with contextlib.suppress(Exception):
                asyncio.run(drop_database(database_name(scale.query_jobs)))
                log(f"dropped {database_name(scale.query_jobs)}")
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)
    log(f"results: {results_path}")
    if not args.no_report:
        from bench.report import write_report

        for path in write_report(results, args.output_dir):
            log(f"wrote {path}")
            if args.publish_dir is not None:
                args.publish_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, args.publish_dir / path.name)
                log(f"published {args.publish_dir / path.name}")
    crashed = [
        f"{b['key']}/{name}"
        for b in results["benchmarks"]
        for name, side in b["sides"].items()
        for run in side["runs"]
        if not run["ok"] and not run.get("timed_out")
    ]
    if crashed:
        log(f"runs that crashed (not slowness): {', '.join(crashed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
