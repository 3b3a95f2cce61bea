"""Running a real Conveyor deployment for a benchmark: database, API key, API, workers.

Why: Conveyor's figures must come from the processes users run (``python -m conveyor serve`` and
``python -m conveyor worker``), configured only through their environment, not from in-process
shortcuts. ``ConveyorStack`` creates a private PostgreSQL database (``cvbench_*``) and a private
Redis key prefix (``cvbench-*``) per run, migrates it with ``python -m conveyor migrate``,
creates an admin key with ``python -m conveyor create-api-key``, starts the API and workers in
their own process groups and, on ``stop()``, stops them (bounded), drops the database and
deletes the Redis keys.

Also here: a small GraphQL-over-HTTP client (``GraphQLClient``), PostgreSQL CPU accounting for
the backends of one database (``PgCpu``), and free-port selection. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import psutil  # type: ignore[import-untyped]
from redis.asyncio import Redis

from bench.common import (
    DEFAULT_POSTGRES_DSN,
    DEFAULT_REDIS_URL,
    bench_env,
    log,
    require_loopback,
    stop_async_process_group,
)

DB_PREFIX = "cvbench_"
REDIS_KEY_PREFIX = "cvbench-"
#: A directory holding a snapshot of ``conveyor/`` and ``migrations/`` to run instead of the working
#: tree (``bench.run --app-ref`` exports a commit there, so every run of a session measures the
#: same code while others keep editing ``conveyor/``).
APP_DIR_ENV = "CVBENCH_APP_DIR"


def app_dir() -> str | None:
    """The snapshot to run (``$CVBENCH_APP_DIR``), or None for the working tree."""
    value = os.environ.get(APP_DIR_ENV)
    return value if value and Path(value, "conveyor").is_dir() else None


def use_app_snapshot() -> None:
    """Make ``import conveyor`` in this process load the snapshot, if one is set."""
    snapshot = app_dir()
    if snapshot and snapshot not in sys.path:
        sys.path.insert(0, snapshot)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dsn_for(database: str, base: str = DEFAULT_POSTGRES_DSN) -> str:
    """``base`` (a libpq URL) pointing at another database."""
    require_loopback(base)
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def drop_database(name: str, base_dsn: str = DEFAULT_POSTGRES_DSN) -> None:
    """Drop one benchmark database (and its connections). Refuses names not ours."""
    if not name.startswith(DB_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a {DB_PREFIX}* database")
    conn = await asyncpg.connect(dsn_for("postgres", base_dsn), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_redis_keys(redis_url: str, prefix: str) -> int:
    """Delete every key starting with ``prefix`` (a ``cvbench-`` prefix only)."""
    if not prefix.startswith(REDIS_KEY_PREFIX):
        raise ValueError(f"refusing to delete keys of {prefix!r}")
    redis = Redis.from_url(require_loopback(redis_url))
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await redis.delete(*keys[start : start + 1000])
        return len(keys)
    finally:
        await redis.aclose()


class GraphQLError(RuntimeError):
    pass


class GraphQLClient:
    """POST /graphql with a bearer key over one keep-alive connection pool."""

    def __init__(self, base_url: str, key: str, *, connections: int = 16) -> None:
        require_loopback(base_url)
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            trust_env=False,
        )

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}
        )
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise GraphQLError(f"HTTP {response.status_code}: {str(body)[:500]}")
        data: dict[str, Any] = body["data"]
        return data

    async def aclose(self) -> None:
        await self.http.aclose()


SUBMIT_JOBS = """
mutation($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) { __typename ... on Job { id } ... on UserError { code message } }
}
"""

SUBMIT_JOB = """
mutation($input: SubmitJobInput!) {
  submitJob(input: $input) { __typename ... on Job { id } ... on UserError { code message } }
}
"""


async def submit_batch(client: GraphQLClient, inputs: list[dict[str, Any]]) -> list[str]:
    """``submitJobs``; return the job ids, raising if any item came back as an error."""
    data = await client.execute(SUBMIT_JOBS, {"inputs": inputs})
    ids = []
    for item in data["submitJobs"]:
        if item["__typename"] != "Job":
            raise GraphQLError(f"submitJobs item failed: {item}")
        ids.append(item["id"])
    return ids


async def submit_one(client: GraphQLClient, kind: str, payload: dict[str, Any]) -> str:
    data = await client.execute(SUBMIT_JOB, {"input": {"kind": kind, "payload": payload}})
    item = data["submitJob"]
    if item["__typename"] != "Job":
        raise GraphQLError(f"submitJob failed: {item}")
    return str(item["id"])


class PgCpu:
    """User+system CPU of the PostgreSQL backends serving one database.

    Backends show the database in their process title (``postgres: ... user db host``), so
    they can be told apart from other databases' on a shared server. Background processes
    (WAL writer, checkpointer) are shared and not counted.
    """

    def __init__(self, database: str, exclude: tuple[int, ...] = ()) -> None:
        self.needle = f" {database} "
        self.exclude = set(exclude)  # e.g. the benchmark's own polling connection
        self._start: dict[int, float] = {}

    def _sample(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for proc in psutil.process_iter(["name", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                title = " ".join(proc.info.get("cmdline") or []) + " "
                if (
                    self.needle in title
                    and title.startswith("postgres")
                    and proc.pid not in self.exclude
                ):
                    times = proc.cpu_times()
                    out[proc.pid] = times.user + times.system
        return out

    def start(self) -> None:
        self._start = self._sample()

    def seconds(self) -> float:
        """CPU seconds since ``start`` (backends that exited meanwhile are not counted)."""
        now = self._sample()
        return sum(cpu - self._start.get(pid, 0.0) for pid, cpu in now.items())


class ConveyorStack:
    """One private Conveyor deployment: its database, Redis prefix, API and workers."""

    def __init__(
        self,
        name: str,
        *,
        redis_url: str = DEFAULT_REDIS_URL,
        postgres_dsn: str = DEFAULT_POSTGRES_DSN,
        database: str | None = None,
        keep_database: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        run_id = uuid.uuid4().hex[:8]
        self.redis_url = require_loopback(redis_url)
        self.postgres_dsn = require_loopback(postgres_dsn)
        self.database = database or f"{DB_PREFIX}{name}_{run_id}"
        if not self.database.startswith(DB_PREFIX):
            raise ValueError(f"database names must start with {DB_PREFIX}")
        self.prefix = f"{REDIS_KEY_PREFIX}{name}-{run_id}"
        self.keep_database = keep_database
        self.dsn = dsn_for(self.database, postgres_dsn)
        parts = urlsplit(self.dsn)
        self.database_url = urlunsplit(parts._replace(scheme="postgresql+asyncpg"))
        self.env = bench_env(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            REDIS_PREFIX=self.prefix,
            LOG_LEVEL="WARNING",
            LOG_FORMAT="text",
            SHUTDOWN_GRACE_SECONDS="3",
            **(extra_env or {}),
        )
        self.cwd: str | None = None
        if snapshot := app_dir():
            # `python -m conveyor` then imports the snapshot, not the working tree.
            self.env["PYTHONPATH"] = os.pathsep.join([snapshot, self.env["PYTHONPATH"]])
            self.cwd = snapshot
        self.key = ""
        self.port = 0
        self.api: asyncio.subprocess.Process | None = None
        self.workers: list[asyncio.subprocess.Process] = []
        self._logs = tempfile.TemporaryDirectory(prefix="cvbench-logs-")
        self._log_files: list[Any] = []

    # -- commands -------------------------------------------------------------------------------

    async def _command(self, *args: str, timeout: float = 120.0) -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "conveyor",
            *args,
            env=self.env,
            cwd=self.cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
        except TimeoutError:
            await stop_async_process_group(proc)
            command = f"conveyor {' '.join(args)}"
            raise RuntimeError(f"`{command}` timed out after {timeout:.0f}s") from None
        if proc.returncode != 0:
            raise RuntimeError(
                f"`conveyor {' '.join(args)}` exited {proc.returncode}: {err.decode()[-2000:]}"
            )
        return out.decode()

    async def migrate(self) -> None:
        await self._command("migrate")

    async def create_key(self, name: str = "bench", admin: bool = True) -> str:
        args = ["create-api-key", "--name", name] + (["--admin"] if admin else [])
        out = await self._command(*args)
        return out.strip().splitlines()[-1].strip()

    async def setup(self) -> None:
        """Create and migrate the database, and an admin key."""
        await self.migrate()
        self.key = await self.create_key()

    # -- processes ------------------------------------------------------------------------------

    def _log(self, name: str) -> Any:
        handle = Path(self._logs.name, f"{name}.log").open("wb")  # noqa: SIM115 - closed in stop()
        self._log_files.append(handle)
        return handle

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = Path(self._logs.name, f"{name}.log")
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    async def start_api(
        self, port: int | None = None, ready_timeout: float = 60.0, workers: int = 1
    ) -> int:
        self.port = port or free_port()
        self.api = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "conveyor",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            env=self.env,
            cwd=self.cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._log("api"),
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_timeout
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.api.returncode is not None:
                    raise RuntimeError(f"API exited early: {self.log_tail('api')}")
                with contextlib.suppress(httpx.HTTPError):
                    response = await http.get(f"{self.base_url}/readyz")
                    if response.status_code == 200:
                        return self.port
                await asyncio.sleep(0.1)
        raise RuntimeError(f"API not ready within {ready_timeout:.0f}s: {self.log_tail('api')}")

    async def start_worker(self, concurrency: int = 16, queues: str = "default,cpu") -> int:
        index = len(self.workers)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "conveyor",
            "worker",
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
            env=self.env,
            cwd=self.cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._log(f"worker-{index}"),
            start_new_session=True,
        )
        self.workers.append(proc)
        return proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def client(self, connections: int = 16) -> GraphQLClient:
        return GraphQLClient(self.base_url, self.key, connections=connections)

    async def stop_workers(self) -> None:
        for proc in self.workers:
            await stop_async_process_group(proc, timeout=15)
        self.workers = []

    async def stop(self) -> None:
        """Stop everything, drop the database (unless kept), delete the Redis keys. Bounded."""
        with contextlib.suppress(Exception):
            await self.stop_workers()
        if self.api is not None:
            with contextlib.suppress(Exception):
                await stop_async_process_group(self.api, timeout=15)
            self.api = None
        for handle in self._log_files:
            handle.close()
        for name in ("api", "worker-0"):
            tail = self.log_tail(name, 5)
            if tail.strip():
                log(f"{name} log tail: {tail}")
        if not self.keep_database:
            try:
                await drop_database(self.database, self.postgres_dsn)
            except Exception as exc:  # reported, not fatal: the name says what to drop by hand
                log(f"could not drop {self.database}: {exc!r}")
        try:
            await delete_redis_keys(self.redis_url, self.prefix)
        except Exception as exc:
            log(f"could not delete Redis keys {self.prefix}*: {exc!r}")
        self._logs.cleanup()


async def wait_count(
    conn: asyncpg.Connection,
    sql: str,
    target: int,
    *,
    poll_s: float,
    deadline: float,
    alive: list[asyncio.subprocess.Process] | None = None,
    stall_s: float = 20.0,
) -> tuple[int, float]:
    """Poll ``sql`` (a count) until it reaches ``target``; return (count, perf_counter at the
    last increase or at the target).

    Bounded by ``deadline`` (monotonic); stops early when a watched process exited, or when the
    count has not moved for ``stall_s`` seconds (jobs that will never finish must not hold the
    run until its deadline; the shortfall is reported, not waited for).
    """
    last_count, last_change = -1, time.monotonic()
    last_change_perf = time.perf_counter()
    while True:
        count = int(await conn.fetchval(sql))
        now = time.perf_counter()
        if count != last_count:
            last_count, last_change, last_change_perf = count, time.monotonic(), now
        if count >= target:
            return count, now
        if time.monotonic() > deadline:
            log(f"stopped waiting: {count}/{target} at the deadline")
            return count, last_change_perf
        if time.monotonic() - last_change > stall_s and count > 0:
            log(f"stopped waiting: {count}/{target}, no progress for {stall_s:.0f}s")
            return count, last_change_perf
        if alive and any(p.returncode is not None for p in alive):
            log(f"stopped waiting: a process exited ({count}/{target})")
            return count, now
        await asyncio.sleep(poll_s)
