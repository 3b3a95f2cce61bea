"""`conveyor dev` (what `make run` runs): migrate, then the API and a worker as child processes,
and a banner once both answer.

- The banner comes after `/healthz` answers and the worker has registered: what it says is true.
- Ctrl-C (or SIGTERM, SIGHUP) at any moment stops everything quietly: the children run in their
  own process group, so the terminal's SIGINT reaches this process only, which asks them to stop
  (SIGTERM: running jobs get their grace) and kills them on a second Ctrl-C.
- One admin key across runs, kept in `.conveyor/dev-admin-key` (mode 0600) in the working
  directory, replaced only when it no longer works or is about to expire.
- The children say nothing this process said already (`--quiet-start`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.cli.admin import ROOT, run_migrations
from conveyor.cli.checks import fail, load_kinds, out, postgres_server_problem, redis_problem
from conveyor.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

#: Where the development admin key is kept, relative to the working directory.
KEY_FILE = Path(".conveyor") / "dev-admin-key"
#: A new development key lasts this long; one with less than a day left is replaced.
KEY_DAYS = 30
#: How long the API and the worker may take to start before `dev` gives up.
START_TIMEOUT_SECONDS = 120.0
#: Exit status after Ctrl-C before everything ran, as a shell reports a SIGINT death.
INTERRUPTED = 130


def dev(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_interruptible(settings, args.host, args.port, args.jobs))


async def _interruptible(settings: Settings, host: str, port: int, jobs: str | None) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, task.cancel)
    dev_run = _Dev(settings, host, port, jobs)
    try:
        return await dev_run.main()
    except asyncio.CancelledError:
        return 0 if dev_run.was_running else INTERRUPTED


class _Dev:
    def __init__(self, settings: Settings, host: str, port: int, jobs: str | None) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.jobs = jobs
        self.children: list[asyncio.subprocess.Process] = []
        #: The banner was printed: a stop from now on is the normal way to end.
        self.was_running = False

    async def main(self) -> int:
        s = self.settings
        registry = load_kinds(s)
        if isinstance(registry, int):
            return registry
        if problem := await postgres_server_problem(s):
            return fail(problem)
        if code := await run_migrations(s, None):
            return code
        if problem := await redis_problem(s):
            return fail(problem)
        await _build_dashboard()
        key, expires = await dev_key(s, Path.cwd() / KEY_FILE)
        try:
            await self._start()
            if not await self._ready():
                return fail(self._why_not_ready)
            base = f"http://{_reachable(self.host)}:{self.port}"
            out(
                f"Conveyor is running: dashboard {base}/  API {base}/graphql  "
                f"explorer {base}/graphiql"
            )
            out(f"Job kinds: {', '.join(registry.names()) or 'none'}")
            out(
                f"Admin key (kept in {KEY_FILE}, valid until {expires:%Y-%m-%d}): {key}\n"
                "Sign in to the dashboard with it. Ctrl-C stops everything."
            )
            self.was_running = True
            return await self._supervise()
        finally:
            await self._stop()

    async def _start(self) -> None:
        exe = [sys.executable, "-m", "conveyor"]
        extra = ["--quiet-start", *(["--jobs", self.jobs] if self.jobs is not None else [])]
        for args in (
            ["serve", "--host", self.host, "--port", str(self.port), *extra],
            ["worker", *extra],
        ):
            # Their own process group: the terminal's Ctrl-C reaches this process alone, which
            # stops them in order (a SIGINT during their imports would print tracebacks).
            self.children.append(await asyncio.create_subprocess_exec(*exe, *args, process_group=0))

    async def _ready(self) -> bool:
        """Wait until the API answers /healthz and the worker has registered."""
        from conveyor.db.engine import create_engine

        api, worker = self.children
        worker_id = f"{socket.gethostname()}-{worker.pid}"
        url = f"http://{_reachable(self.host)}:{self.port}/healthz"
        engine = create_engine(self.settings.database_url, pool_size=1)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + START_TIMEOUT_SECONDS
        api_up = worker_up = False
        try:
            while not (api_up and worker_up):
                for name, child in (("the API", api), ("the worker", worker)):
                    if child.returncode is not None:
                        self._why_not_ready = (
                            f"{name} exited at start-up (status {child.returncode})"
                        )
                        return False
                if loop.time() > give_up:
                    self._why_not_ready = (
                        f"the API and the worker did not start within {START_TIMEOUT_SECONDS:g} s"
                    )
                    return False
                api_up = api_up or await asyncio.to_thread(_answers, url)
                worker_up = worker_up or await _registered(engine, worker_id)
                if not (api_up and worker_up):
                    await asyncio.sleep(0.2)
        finally:
            await engine.dispose()
        return True

    async def _supervise(self) -> int:
        """Until a child exits on its own (then stop the other, and say so)."""
        waits = {asyncio.ensure_future(c.wait()): c for c in self.children}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in pending:
            wait.cancel()
        ended = waits[next(iter(done))]
        name = "the API" if ended is self.children[0] else "the worker"
        return fail(f"{name} stopped (status {ended.returncode}); stopping the rest")

    async def _stop(self) -> None:
        """SIGTERM to every child still running, then wait (running jobs get their grace);
        a second Ctrl-C kills them."""
        running = [c for c in self.children if c.returncode is None]
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        try:
            await asyncio.gather(*(c.wait() for c in running))
        except asyncio.CancelledError:
            for child in running:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
            await asyncio.shield(asyncio.gather(*(c.wait() for c in running)))
            raise


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


async def _registered(engine: AsyncEngine, worker_id: str) -> bool:
    from sqlalchemy import text

    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                text("SELECT 1 FROM workers WHERE id = :id AND stopped_at IS NULL"),
                {"id": worker_id},
            )
            return found.first() is not None
    except Exception:  # PostgreSQL busy or restarting: look again
        return False


def _reachable(host: str) -> str:
    """Where to reach a server listening on `host` from this machine."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


async def _build_dashboard() -> None:
    """In a checkout, build the dashboard when it was never built (`make run` builds it
    first; a bare `conveyor dev` may not have). An installed Conveyor carries it built."""
    from conveyor.main import FRONTEND

    frontend = ROOT / "frontend"
    if (FRONTEND / "index.html").exists() or not (frontend / "package.json").exists():
        return
    out("building the dashboard (first run)...")
    for command in (["npm", "ci", "--no-audit", "--no-fund"], ["npm", "run", "build"]):
        proc = await asyncio.create_subprocess_exec(*command, cwd=frontend, process_group=0)
        try:
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def _read(path: Path) -> str:
    return path.read_text().strip()


async def dev_key(settings: Settings, path: Path) -> tuple[str, datetime]:
    """The development admin key and its expiry: the one kept at `path` while it still works
    (this database, this SECRET_KEY, not revoked, a day or more left), else a new one, kept
    there (mode 0600) for the next run."""
    from conveyor.db.engine import create_engine
    from conveyor.domain.errors import Unauthenticated
    from conveyor.services import auth

    secret_key = settings.secret_key.get_secret_value()
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        with contextlib.suppress(OSError):
            kept = await asyncio.to_thread(_read, path)
            checker = auth.Authenticator(engine, cache_seconds=0, secret_key=secret_key)
            with contextlib.suppress(Unauthenticated):
                principal = await checker.authenticate_credential(kept)
                expires = principal.expires_at
                if principal.is_admin and (
                    expires is None or expires > datetime.now(UTC) + timedelta(days=1)
                ):
                    return kept, expires or datetime.max.replace(tzinfo=UTC)
        expires = datetime.now(UTC) + timedelta(days=KEY_DAYS)
        _, key = await auth.create_api_key(
            engine, name="dev-admin", admin=True, secret_key=secret_key, expires_at=expires
        )
    finally:
        await engine.dispose()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a file that existed keeps its mode through O_CREAT
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
    except OSError as exc:
        out(f"(could not keep the key in {path}: {exc}; a new one is made next time)")
    return key, expires
