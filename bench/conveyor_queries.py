"""Query latency on a large table: Conveyor's GraphQL reads vs the same SQL straight to PostgreSQL.

Why: a dashboard lists jobs newest first, pages deep into history, filters by status and opens
one job with its events. With a million jobs these must stay fast, and deep pages must cost
what the first does (keyset pagination). The baseline runs the very SQL the API runs (captured
from ``conveyor.db.jobs`` through SQLAlchemy's ``before_cursor_execute`` hook) over one
plain asyncpg connection, so the difference is the API's overhead: HTTP, authentication,
GraphQL parse and execution, SQLAlchemy, pool pre-ping and transaction round trips, serialization.

Data: a dedicated database ``cvbench_queries_<jobs>`` migrated by ``python -m conveyor migrate``,
filled by ONE ``INSERT ... SELECT generate_series`` (kinds demo.sleep 40 %, demo.noop 30 %,
compute.primes 15 %, demo.flaky 15 %; created_at spread over ~1 month, about one job every
2.5 s; the oldest jobs SUCCEEDED 94 %, FAILED 4 %, CANCELLED 2 %; the newest 2,000 also
QUEUED, RUNNING, SCHEDULED, RETRYING), one job with 100 events and an attempt, then VACUUM
ANALYZE. The database is built once and reused (a database COMMENT marks it complete); the
harness drops it at the end (``--drop`` here, or ``--drop-only``).

Queries (``--requests`` timed requests each after ``--warmup``, one at a time, admin key):
``first_page`` ``jobs(first: 50)`` with the dashboard's row fields; ``page_1000`` the same after
the cursor of row 49,950 (the 1,000th page); ``status_failed`` ``filter: {status: [FAILED]}``;
``status_running_failed`` ``filter: {status: [RUNNING, FAILED]}`` (the README's example);
``job_events`` ``job(id)`` with ``events(first: 100)``; ``dashboard_jobs`` the dashboard's own
``Jobs`` document, which also asks for ``totalCount(atMost: 10000)``.

The ``sql`` target also records ``EXPLAIN (ANALYZE, BUFFERS)`` of every statement, executed as a
prepared statement after 6 runs (the point where PostgreSQL may switch to a generic plan, as
it does for the API's prepared statements).

Run: ``.venv/bin/python -m bench.conveyor_queries --target api --jobs 1000000``
"""

from __future__ import annotations

import argparse
import base64
import functools
import time
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from bench.common import (
    DEFAULT_POSTGRES_DSN,
    DEFAULT_REDIS_URL,
    Metrics,
    emit_result,
    log,
    percentile,
    run_async,
    tree_cpu_seconds,
)
from bench.conveyor import (
    ConveyorStack,
    GraphQLClient,
    drop_database,
    dsn_for,
    use_app_snapshot,
)

TARGETS = ("api", "sql")
MARK = "cvbench-queries v1"
NEWEST_ACTIVE = 2000
DEEP_PAGE = 1000
PAGE = 50

JOB_ROW = """
  id kind queue status priority progress progressMessage attempt maxAttempts
  createdAt runAt nextRunAt startedAt finishedAt
"""

Q_PAGE = f"""
query($first: Int, $after: String, $filter: JobFilter) {{
  jobs(first: $first, after: $after, filter: $filter) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {JOB_ROW} }} }}
  }}
}}
"""

#: The dashboard's `Jobs` document (frontend/src/lib/operations.ts), bounded count included.
DASHBOARD_COUNT_BOUND = 10_000
Q_DASHBOARD = f"""
query Jobs($filter: JobFilter, $first: Int, $after: String) {{
  jobs(filter: $filter, first: $first, after: $after) {{
    totalCount(atMost: {DASHBOARD_COUNT_BOUND})
    pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {JOB_ROW} }} }}
  }}
}}
"""

Q_JOB = """
query($id: ID!) {
  job(id: $id) {
    id kind status progress attempt createdAt finishedAt
    events(first: 100) { seq type status progress message at }
  }
}
"""

QUERIES = (
    "first_page",
    "page_1000",
    "status_failed",
    "status_running_failed",
    "job_events",
    "dashboard_jobs",
)

_BUILD_SQL = """
INSERT INTO jobs (id, kind, queue, priority, status, payload, result, error, progress,
                  attempt, max_attempts, timeout_seconds, backoff_base_seconds,
                  backoff_cap_seconds, owner_id, last_seq, created_at, updated_at, next_run_at,
                  started_at, finished_at, dispatched_at)
SELECT gen_random_uuid(), k.kind, k.queue, 1, s.status, k.payload,
       CASE WHEN s.status = 'SUCCEEDED' THEN k.result END,
       CASE WHEN s.status IN ('FAILED', 'RETRYING')
            THEN '{"type": "FlakyError", "message": "attempt fails on purpose"}'::jsonb END,
       CASE WHEN s.status = 'SUCCEEDED' THEN 1 WHEN s.status = 'RUNNING' THEN 0.5 ELSE 0 END,
       CASE WHEN s.status IN ('QUEUED', 'SCHEDULED') THEN 0
            WHEN s.status = 'FAILED' THEN 3 ELSE 1 END,
       3, 600, 1, 300, $1,
       CASE WHEN s.status IN ('QUEUED', 'SCHEDULED') THEN 1
            WHEN s.status = 'RUNNING' THEN 2 ELSE 3 END,
       t.created, t.created + interval '2 seconds',
       CASE WHEN s.status IN ('SCHEDULED', 'RETRYING') THEN now() + interval '1 day' END,
       CASE WHEN s.status NOT IN ('QUEUED', 'SCHEDULED') THEN t.created + interval '50 ms' END,
       CASE WHEN s.status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
            THEN t.created + interval '1 second' END,
       CASE WHEN s.status = 'QUEUED' THEN t.created END
FROM generate_series(1, $2::int) AS g(i)
CROSS JOIN LATERAL (
    SELECT now() - ($2::int - g.i) * interval '2.5 seconds' - random() * interval '1 second'
               AS created,
           random() AS r, random() AS r2
) AS t
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN g.i > $2::int - $3::int THEN
            CASE WHEN t.r < 0.50 THEN 'QUEUED' WHEN t.r < 0.58 THEN 'RUNNING'
                 WHEN t.r < 0.63 THEN 'SCHEDULED' WHEN t.r < 0.66 THEN 'RETRYING'
                 ELSE 'SUCCEEDED' END
        ELSE
            CASE WHEN t.r < 0.94 THEN 'SUCCEEDED' WHEN t.r < 0.98 THEN 'FAILED'
                 ELSE 'CANCELLED' END
    END AS status
) AS s
CROSS JOIN LATERAL (
    SELECT CASE WHEN t.r2 < 0.40 THEN 'demo.sleep' WHEN t.r2 < 0.70 THEN 'demo.noop'
                WHEN t.r2 < 0.85 THEN 'compute.primes' ELSE 'demo.flaky' END AS kind,
           CASE WHEN t.r2 >= 0.70 AND t.r2 < 0.85 THEN 'cpu' ELSE 'default' END AS queue,
           CASE WHEN t.r2 < 0.40 THEN '{"steps": 10, "stepSeconds": 0.5}'::jsonb
                WHEN t.r2 < 0.70 THEN '{}'::jsonb
                WHEN t.r2 < 0.85 THEN '{"limit": 100000}'::jsonb
                ELSE '{"failTimes": 1}'::jsonb END AS payload,
           CASE WHEN t.r2 < 0.40 THEN '{"steps": 10}'::jsonb
                WHEN t.r2 < 0.70 THEN 'null'::jsonb
                WHEN t.r2 < 0.85 THEN '{"limit": 100000, "primes": 9592}'::jsonb
                ELSE '{"attempt": 2}'::jsonb END AS result
) AS k
"""


def database_name(jobs: int) -> str:
    return f"cvbench_queries_{jobs}"


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    """The API's cursor format: base64url, no padding, of ``<created_at ISO>|<uuid>``."""
    raw = f"{created_at.isoformat()}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def _comment(dsn: str, database: str) -> str | None:
    try:
        conn = await asyncpg.connect(dsn_for("postgres", dsn), timeout=10)
    except OSError as exc:
        raise SystemExit(f"PostgreSQL unreachable: {exc}") from exc
    try:
        value = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            database,
        )
        return str(value) if value is not None else None
    finally:
        await conn.close()


async def ensure_dataset(jobs: int, postgres_dsn: str, redis_url: str) -> tuple[str, uuid.UUID]:
    """Build the dataset once (bounded by the statement itself); return (database, events job)."""
    database = database_name(jobs)
    comment = await _comment(postgres_dsn, database)
    if comment and comment.startswith(f"{MARK} jobs={jobs} "):
        return database, uuid.UUID(comment.rsplit("events_job=", 1)[1])
    if comment is not None or await _exists(postgres_dsn, database):
        log(f"{database} exists but is incomplete: rebuilding")
        await drop_database(database, postgres_dsn)
    stack = ConveyorStack(
        "queries",
        database=database,
        keep_database=True,
        redis_url=redis_url,
        postgres_dsn=postgres_dsn,
    )
    started = time.monotonic()
    await stack.migrate()
    await stack.create_key("bench-owner", admin=False)
    conn = await asyncpg.connect(stack.dsn, timeout=10, command_timeout=1800)
    try:
        owner = await conn.fetchval("SELECT id FROM api_keys WHERE name = 'bench-owner'")
        log(f"loading {jobs:,} jobs into {database} (one INSERT ... SELECT generate_series)")
        await conn.execute(_BUILD_SQL, owner, jobs, min(NEWEST_ACTIVE, jobs))
        job_id = await conn.fetchval(
            "SELECT id FROM jobs WHERE status = 'SUCCEEDED' AND kind = 'demo.sleep' "
            "ORDER BY created_at DESC LIMIT 1"
        )
        async with conn.transaction():
            await conn.execute(
                "UPDATE jobs SET last_seq = 100, progress_message = 'step 10/10' WHERE id = $1",
                job_id,
            )
            await conn.execute(
                """
                INSERT INTO job_events (job_id, seq, type, status, progress, message, data, at)
                SELECT $1, n,
                       CASE WHEN n = 1 THEN 'SUBMITTED' WHEN n = 2 THEN 'STARTED'
                            WHEN n = 100 THEN 'SUCCEEDED' ELSE 'PROGRESS' END,
                       CASE WHEN n = 1 THEN 'QUEUED' WHEN n = 100 THEN 'SUCCEEDED'
                            ELSE 'RUNNING' END,
                       CASE WHEN n BETWEEN 3 AND 99 THEN (n - 2) / 97.0 END,
                       CASE WHEN n BETWEEN 3 AND 99 THEN 'step ' || (n - 2) || '/97' END,
                       CASE WHEN n = 2 THEN '{"attempt": 1, "workerId": "bench"}'::jsonb END,
                       j.created_at + n * interval '10 ms'
                FROM generate_series(1, 100) AS n, jobs j WHERE j.id = $1
                """,
                job_id,
            )
            await conn.execute(
                "INSERT INTO job_attempts (job_id, number, status, worker_id, started_at, "
                "finished_at) SELECT id, 1, 'SUCCEEDED', 'bench', started_at, finished_at "
                "FROM jobs WHERE id = $1",
                job_id,
            )
        log("VACUUM ANALYZE")
        await conn.execute("VACUUM ANALYZE jobs")
        await conn.execute("VACUUM ANALYZE job_events")
        await conn.execute("VACUUM ANALYZE job_attempts")
        await conn.execute(
            f"COMMENT ON DATABASE \"{database}\" IS '{MARK} jobs={jobs} events_job={job_id}'"
        )
    finally:
        await conn.close()
    log(f"built {database} in {time.monotonic() - started:.0f}s")
    return database, job_id


async def _exists(dsn: str, database: str) -> bool:
    conn = await asyncpg.connect(dsn_for("postgres", dsn), timeout=10)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database))
    finally:
        await conn.close()


def deep_offset(jobs: int) -> int:
    """Rows before page 1,000 (or the middle of a smaller dataset, e.g. with --quick)."""
    return min(PAGE * (DEEP_PAGE - 1), jobs // 2)


async def deep_cursor(dsn: str, jobs: int) -> tuple[datetime, uuid.UUID]:
    """(created_at, id) of the last row of page ``DEEP_PAGE - 1``: ``after`` it is page 1,000."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        row = await conn.fetchrow(
            "SELECT created_at, id FROM jobs ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
            deep_offset(jobs) - 1,
        )
        return row["created_at"], row["id"]
    finally:
        await conn.close()


def _timed_stats(samples: list[float], name: str) -> Metrics:
    ordered = sorted(samples)
    return {
        f"{name}_p50_ms": percentile(ordered, 50),
        f"{name}_p99_ms": percentile(ordered, 99),
        f"{name}_max_ms": ordered[-1] if ordered else float("nan"),
    }


# ---------------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------------


async def run_api(
    jobs: int,
    database: str,
    events_job: uuid.UUID,
    requests: int,
    warmup: int,
    postgres_dsn: str,
    redis_url: str,
) -> tuple[Metrics, dict[str, Any]]:
    stack = ConveyorStack(
        "queries",
        database=database,
        keep_database=True,
        redis_url=redis_url,
        postgres_dsn=postgres_dsn,
    )
    at, after_id = await deep_cursor(stack.dsn, jobs)
    cursor = encode_cursor(at, after_id)
    documents: dict[str, tuple[str, dict[str, Any]]] = {
        "first_page": (Q_PAGE, {"first": PAGE}),
        "page_1000": (Q_PAGE, {"first": PAGE, "after": cursor}),
        "status_failed": (Q_PAGE, {"first": PAGE, "filter": {"status": ["FAILED"]}}),
        "status_running_failed": (
            Q_PAGE,
            {"first": PAGE, "filter": {"status": ["RUNNING", "FAILED"]}},
        ),
        "job_events": (Q_JOB, {"id": str(events_job)}),
        "dashboard_jobs": (Q_DASHBOARD, {"first": PAGE}),
    }
    metrics: Metrics = {}
    config: dict[str, Any] = {
        "target": "api",
        "database": database,
        "deep_cursor": cursor,
        "deep_offset": deep_offset(jobs),
    }
    client: GraphQLClient | None = None
    try:
        await stack.setup()  # migrate is a no-op on the built database; a fresh admin key
        await stack.start_api()
        assert stack.api is not None
        client = stack.client(connections=1)
        checks: dict[str, Any] = {}
        cpu0 = tree_cpu_seconds([stack.api.pid])
        total_requests = 0
        for name in QUERIES:
            query, variables = documents[name]
            for _ in range(warmup):
                data = await client.execute(query, variables)
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                data = await client.execute(query, variables)
                samples.append((time.perf_counter() - started) * 1000.0)
            total_requests += warmup + requests
            metrics.update(_timed_stats(samples, name))
            if "jobs" in data:
                edges = data["jobs"]["edges"]
                first_id = edges[0]["node"]["id"] if edges else None
                checks[name] = {"rows": len(edges), "first_id": first_id}
            else:
                checks[name] = {"events": len(data["job"]["events"])}
        metrics["api_cpu_ms_per_request"] = (
            1000.0 * (tree_cpu_seconds([stack.api.pid]) - cpu0) / max(total_requests, 1)
        )
        config["checks"] = checks
        return metrics, config
    finally:
        if client is not None:
            await client.aclose()
        await stack.stop()


# ---------------------------------------------------------------------------------------------
# SQL baseline
# ---------------------------------------------------------------------------------------------


async def capture_statements(
    database_url: str, events_job: uuid.UUID, after: tuple[datetime, uuid.UUID]
) -> dict[str, list[tuple[str, tuple[Any, ...]]]]:
    """The exact statements (and parameters) ``conveyor.db.jobs`` sends for each query."""
    use_app_snapshot()  # the statements of the code under test, not of the working tree
    from sqlalchemy import event, text

    from conveyor.db import jobs as jobs_repo
    from conveyor.db.engine import create_engine
    from conveyor.domain.states import JobStatus

    engine = create_engine(database_url, pool_size=1)
    captured: list[tuple[str, tuple[Any, ...]]] = []

    def grab(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: Any
    ) -> None:
        captured.append((statement, tuple(parameters or ())))

    event.listen(engine.sync_engine, "before_cursor_execute", grab)
    out: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
    try:
        async with engine.connect() as conn:
            # The API scopes an admin's listing to the keys of its tenant: so does the baseline.
            tenant = (
                await conn.execute(text("SELECT tenant_id FROM api_keys ORDER BY created_at"))
            ).scalar()
            flt = functools.partial(jobs_repo.JobFilter, tenant_id=tenant)
            captured.clear()
            calls: dict[str, Any] = {
                "first_page": [lambda: jobs_repo.page(conn, flt=flt(), first=PAGE, after=None)],
                "page_1000": [lambda: jobs_repo.page(conn, flt=flt(), first=PAGE, after=after)],
                "status_failed": [
                    lambda: jobs_repo.page(
                        conn, flt=flt(statuses=(JobStatus.FAILED,)), first=PAGE, after=None
                    )
                ],
                "status_running_failed": [
                    lambda: jobs_repo.page(
                        conn,
                        flt=flt(statuses=(JobStatus.RUNNING, JobStatus.FAILED)),
                        first=PAGE,
                        after=None,
                    )
                ],
                "job_events": [
                    lambda: jobs_repo.get(conn, job_id=events_job, owner_id=None),
                    lambda: jobs_repo.events(conn, job_id=events_job, after=0, limit=100),
                ],
                "dashboard_jobs": [
                    lambda: jobs_repo.count(conn, flt=flt(), at_most=DASHBOARD_COUNT_BOUND),
                    lambda: jobs_repo.page(conn, flt=flt(), first=PAGE, after=None),
                ],
            }
            for name in QUERIES:
                out[name] = []
                for call in calls[name]:
                    captured.clear()
                    await call()
                    out[name].append(captured[-1])
    finally:
        await engine.dispose()
    return out


def _literal(value: Any) -> str:
    """A SQL literal for EXECUTE's arguments (benchmark values only: no user input)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "'{" + ",".join(f'"{v}"' for v in value) + "}'"
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


async def explain(conn: asyncpg.Connection, statement: str, params: tuple[Any, ...]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of ``statement`` as a prepared statement's 7th execution."""
    name = f"cvbench_{uuid.uuid4().hex[:8]}"
    await conn.execute(f"PREPARE {name} AS {statement}")
    try:
        args = f"({', '.join(_literal(p) for p in params)})" if params else ""
        for _ in range(6):
            await conn.execute(f"EXECUTE {name}{args}")
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE {name}{args}")
        return "\n".join(r[0] for r in rows)
    finally:
        await conn.execute(f"DEALLOCATE {name}")


async def run_sql(
    jobs: int,
    database: str,
    events_job: uuid.UUID,
    requests: int,
    warmup: int,
    postgres_dsn: str,
) -> tuple[Metrics, dict[str, Any]]:
    dsn = dsn_for(database, postgres_dsn)
    after = await deep_cursor(dsn, jobs)
    database_url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    statements = await capture_statements(database_url, events_job, after)
    from conveyor.db import engine as app_engine  # the snapshot's (capture_statements loaded it)

    # The API's own session settings (no JIT, no parallel plans): the same SQL, planned alike.
    settings = getattr(app_engine, "SERVER_SETTINGS", {"jit": "off"})
    conn = await asyncpg.connect(dsn, timeout=10, server_settings=dict(settings))
    metrics: Metrics = {}
    plans: dict[str, list[str]] = {}
    try:
        for name in QUERIES:
            stmts = statements[name]
            for _ in range(warmup):
                for sql, params in stmts:
                    await conn.fetch(sql, *params)
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                for sql, params in stmts:
                    await conn.fetch(sql, *params)
                samples.append((time.perf_counter() - started) * 1000.0)
            metrics.update(_timed_stats(samples, name))
            plans[name] = [await explain(conn, sql, params) for sql, params in stmts]
    finally:
        await conn.close()
    flags = {
        name: {
            "seq_scan": any("Seq Scan" in p for p in texts),
            "sort": any(" Sort " in f" {p} " or "Sort Key" in p for p in texts),
            "index_scans": sorted(
                {
                    line.split(" on ")[0].strip(" ->").split(" using ")[0].strip()
                    + " "
                    + line.split(" using ")[1].split(" ")[0]
                    for p in texts
                    for line in p.splitlines()
                    if " using " in line and "Index" in line
                }
            ),
        }
        for name, texts in plans.items()
    }
    config: dict[str, Any] = {
        "target": "sql",
        "database": database,
        "statements": {n: [s for s, _ in v] for n, v in statements.items()},
        "explain": plans,
        "plan_flags": flags,
    }
    return metrics, config


async def main_async(args: argparse.Namespace) -> tuple[Metrics, dict[str, Any]]:
    database, events_job = await ensure_dataset(args.jobs, args.postgres_dsn, args.redis_url)
    try:
        if args.target == "api":
            metrics, config = await run_api(
                args.jobs,
                database,
                events_job,
                args.requests,
                args.warmup,
                args.postgres_dsn,
                args.redis_url,
            )
        else:
            metrics, config = await run_sql(
                args.jobs, database, events_job, args.requests, args.warmup, args.postgres_dsn
            )
    finally:
        if args.drop:
            await drop_database(database, args.postgres_dsn)
    config.update({"jobs": args.jobs, "requests": args.requests, "warmup": args.warmup})
    return metrics, config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=TARGETS, default="api")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per query")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per query")
    parser.add_argument("--postgres-dsn", default=DEFAULT_POSTGRES_DSN)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--drop", action="store_true", help="drop the dataset afterwards")
    parser.add_argument("--drop-only", action="store_true", help="drop the dataset and exit")
    args = parser.parse_args(argv)
    if args.drop_only:
        run_async(drop_database(database_name(args.jobs), args.postgres_dsn))
        return
    metrics, config = run_async(main_async(args))
    emit_result(f"queries_{args.target}", metrics, config)


if __name__ == "__main__":
    main()
