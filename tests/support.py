"""Shared test plumbing: real PostgreSQL databases cloned from a migrated template, a Redis key
prefix per test, real `conveyor` processes, and small GraphQL clients (HTTP and WebSocket)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect

from conveyor.db.engine import create_engine
from conveyor.kinds.registry import Registry
from conveyor.services import auth
from conveyor.settings import Settings
from tests import inproc

ROOT = Path(__file__).resolve().parents[1]
PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:8]
#: A real (random) server secret for every test process and `conveyor` child process.
SECRET_KEY = os.environ.get("TEST_SECRET_KEY") or uuid.uuid4().hex + uuid.uuid4().hex


@asynccontextmanager
async def started(app: Starlette) -> AsyncIterator[ASGIApp]:
    """Run `app`'s lifespan; yield the app with the lifespan's state in every request's scope
    (what an ASGI server does, and httpx's in-process transport does not)."""
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, "state": dict(state or {})}, receive, send)

        yield with_state


def pg_url(database: str, driver: str = "postgresql+asyncpg") -> str:
    return f"{driver}://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


async def admin_conn() -> asyncpg.Connection:
    return await asyncpg.connect(pg_url("postgres", "postgresql"))


async def drop_database(name: str) -> None:
    conn = await admin_conn()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def clone_database(template: str, name: str) -> None:
    conn = await admin_conn()
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()


async def delete_redis_prefix(prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Env:
    """One isolated Conveyor environment: its own database and Redis prefix."""

    database: str
    prefix: str

    @property
    def database_url(self) -> str:
        return pg_url(self.database)

    def environ(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": self.prefix,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "SECRET_KEY": SECRET_KEY,
        }
        env.update(extra)
        return env

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(pg_url(self.database, "postgresql"))
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    def cli(self, *args: str, **extra_env: str) -> str:
        """Run `conveyor ARGS` against this environment; its stdout."""
        out = subprocess.run(
            [sys.executable, "-m", "conveyor", *args],
            env=self.environ(**extra_env),
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def settings(self, **extra_env: str) -> Settings:
        """The settings a `conveyor` process started with `environ(**extra_env)` reads."""
        return inproc.settings_from_env(self.environ(**extra_env))

    def create_key(self, name: str, admin: bool = False, **extra_env: str) -> str:
        """A new API key, made in-process as `conveyor create-api-key` makes it (the CLI's
        own tests run the command)."""
        settings = self.settings(**extra_env)

        async def make() -> str:
            engine = create_engine(settings.database_url, pool_size=1)
            try:
                _, key = await auth.create_api_key(
                    engine,
                    name=name,
                    admin=admin,
                    secret_key=settings.secret_key.get_secret_value(),
                )
            finally:
                await engine.dispose()
            return key

        return str(inproc.run_sync(make))


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def terminate(self, timeout: float = 60) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None


Component = Proc | inproc.InProcess


@dataclass
class Stack:
    """Conveyor's API and workers for one Env: in this process (`tests.inproc`, the default),
    or real `conveyor serve` / `conveyor worker` processes (`process=True`) for tests that
    kill them or watch how a process starts and exits. Processes run this checkout's code, or
    another tree of it (`code`: an older release's, run with this checkout's Python)."""

    env: Env
    logdir: Path
    procs: list[Component] = field(default_factory=list)
    code: Path = ROOT

    @property
    def package(self) -> str:
        """The import name of this stack's code (`app` before ADR-0018 renamed it)."""
        return "conveyor" if (self.code / "conveyor" / "__main__.py").exists() else "app"

    def environ(self, **extra_env: str) -> dict[str, str]:
        env = self.env.environ(**extra_env)
        if self.code != ROOT:  # its `app` before the one this checkout installed
            env["PYTHONPATH"] = str(self.code)
        return env

    def cli(self, *args: str, **extra_env: str) -> str:
        """Run `conveyor ARGS` of this stack's code; its stdout."""
        out = subprocess.run(
            [sys.executable, "-m", self.package, *args],
            env=self.environ(**extra_env),
            cwd=self.code,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def start(self, name: str, *args: str, **extra_env: str) -> Proc:
        log = self.logdir / f"{name}.log"
        with log.open("ab") as handle:  # the child keeps its own descriptor
            popen = subprocess.Popen(
                [sys.executable, "-m", self.package, *args],
                env=self.environ(**extra_env),
                cwd=self.code,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def serve(
        self, name: str = "api", *, process: bool = False, **extra_env: str
    ) -> tuple[Component, str]:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        if not process and self.code == ROOT:
            component = inproc.serve(name, self.env.settings(**extra_env), port)
            self.procs.append(component)
            return component, base
        proc = self.start(name, "serve", "--port", str(port), **extra_env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{proc.output()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return proc, base
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not start:\n{proc.output()}")

    def worker(
        self,
        name: str = "worker",
        *args: str,
        process: bool = False,
        registry: Registry | None = None,
        **extra_env: str,
    ) -> Component:
        """A worker; `registry`: the kinds an in-process worker runs (default: the demo's)."""
        if not process and self.code == ROOT:
            options = dict(zip(args[::2], args[1::2], strict=True))
            unknown = set(options) - {"--concurrency", "--queues"}
            assert not unknown, f"in-process workers take --concurrency and --queues, not {unknown}"
            component = inproc.worker(
                name,
                self.env.settings(**extra_env),
                queues=options["--queues"].split(",") if "--queues" in options else None,
                concurrency=int(options["--concurrency"]) if "--concurrency" in options else None,
                registry=registry,
            )
            self.procs.append(component)
            return component
        proc = self.start(name, "worker", *args, **extra_env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{proc.output()}")
            if "worker started" in proc.output():
                return proc
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not start:\n{proc.output()}")

    def stop_all(self) -> None:
        for proc in self.procs:
            if isinstance(proc, Proc):
                proc.kill()
            else:
                proc.abort()


class GraphQLClient:
    """GraphQL over HTTP, as any client would send it."""

    def __init__(
        self, base: str, key: str | None, transport: httpx.AsyncBaseTransport | None = None
    ):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.AsyncClient(
            base_url=base, headers=headers, timeout=30, transport=transport
        )

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}})

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.raw(query, variables)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self.http.aclose()


class WSClient:
    """graphql-transport-ws over a real WebSocket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = 0

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        self._ids += 1
        op_id = str(self._ids)
        await self.ws.send(
            json.dumps(
                {
                    "id": op_id,
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=60))
            if msg.get("type") == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            if msg.get("id") != op_id:
                continue
            if msg["type"] == "next":
                yield msg["payload"]
            elif msg["type"] == "error":
                yield {"errors": msg["payload"]}
                return
            elif msg["type"] == "complete":
                return


@asynccontextmanager
async def ws_connect(base: str, key: str | None) -> AsyncIterator[WSClient]:
    url = base.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        payload = {"authorization": f"Bearer {key}"} if key else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert ack["type"] == "connection_ack", ack
        yield WSClient(ws)


SUBMIT = """
mutation($input: SubmitJobInput!) {
  submitJob(input: $input) {
    __typename
    ... on Job { id status kind queue attempt maxAttempts deduplicated }
    ... on UserError { message code }
    ... on InvalidInput { fieldErrors { path message } }
    ... on UnknownJobKind { kind }
    ... on Conflict { existingJobId }
  }
}
"""

JOB = """
query($id: ID!) {
  job(id: $id) {
    id status kind progress progressMessage result attempt maxAttempts
    error { type message }
    attempts { number status workerId startedAt finishedAt error { type message } }
    events(first: 1000) { seq type status progress message data at }
  }
}
"""

JOB_EVENTS = """
subscription($id: ID!, $after: Int) {
  jobEvents(jobId: $id, after: $after) { seq type status progress message at }
}
"""


async def submit(
    client: GraphQLClient, kind: str, payload: dict[str, Any], **opts: Any
) -> dict[str, Any]:
    data = await client(SUBMIT, {"input": {"kind": kind, "payload": payload, **opts}})
    return data["submitJob"]  # type: ignore[no-any-return]


async def wait_for_status(
    client: GraphQLClient, job_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = (await client(JOB, {"id": job_id}))["job"]
        if job["status"] in statuses:
            return job  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s: {job}")
        await asyncio.sleep(0.1)
