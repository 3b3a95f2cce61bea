"""Commands that run until stopped: serve (the API), worker, dev (both, migrated)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from conveyor.cli.admin import ROOT, create_key, run_migrations
from conveyor.cli.checks import fail, out, postgres_server_problem, preflight, redis_problem
from conveyor.settings import Settings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)


def serve(settings: Settings, args: argparse.Namespace) -> int:
    return _serve(settings, args.host, args.port)


def worker(settings: Settings, args: argparse.Namespace) -> int:
    queues = [q for q in (args.queues or "").split(",") if q] or settings.queues
    concurrency = args.concurrency or settings.worker_concurrency  # both are >= 1
    return _worker(settings, queues, concurrency)


def dev(settings: Settings, args: argparse.Namespace) -> int:
    return _dev(settings, args.host, args.port)


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from conveyor.main import create_app

    if problem := asyncio.run(preflight(settings)):
        return fail(problem)
    if settings.env == "dev" and not _loopback(host):
        log.warning(
            "ENV=dev on %s: introspection, the explorer and /metrics are open%s. "
            "Set ENV=production (and SECRET_KEY) to expose Conveyor.",
            host,
            ", and tokens are signed with the development key" if settings.dev_secret else "",
        )
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        ws_ping_interval=settings.ws_ping_interval_seconds,
        ws_ping_timeout=settings.ws_ping_timeout_seconds,
        ws=settings.ws_implementation,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        timeout_graceful_shutdown=10,
    )
    # As `uvicorn.run`: a server that never started (port taken, lifespan failed) is a failure.
    return 0 if _run_server(config) else 3


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


def _run_server(config: uvicorn.Config) -> bool:
    """Run uvicorn until a signal stops it; True if it had started.

    `uvicorn.Server.capture_signals` re-raises a SIGTERM/SIGINT once the server has shut down
    gracefully, so the process dies of the signal (exit -15) although it stopped cleanly. This
    server's `capture_signals` is uvicorn's without that re-raise: a clean stop exits 0. A
    second SIGINT still forces the exit (`handle_exit`)."""
    import uvicorn
    from uvicorn.server import HANDLED_SIGNALS

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C before the handlers are in place
        server.run()
    return server.started


def _worker(settings: Settings, queues: list[str], concurrency: int) -> int:
    from conveyor import kinds
    from conveyor.worker.main import Worker

    if problem := asyncio.run(preflight(settings)):
        return fail(problem)
    registry = kinds.load()
    # uvloop, as uvicorn uses for the API: the worker's hot path is event-loop bookkeeping
    # (tasks, socket reads, callbacks), which uvloop does in C.
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(Worker(settings, registry, queues=queues, concurrency=concurrency).run())
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not on this platform: the standard loop
        return None
    return uvloop.new_event_loop


def _dev(settings: Settings, host: str, port: int) -> int:
    """Migrate, build the dashboard if missing, then run the API and a worker together."""
    if problem := asyncio.run(postgres_server_problem(settings)):
        return fail(problem)
    if code := asyncio.run(run_migrations(settings, None)):
        return code
    if problem := asyncio.run(redis_problem(settings)):
        return fail(problem)
    if (
        not (ROOT / "frontend" / "dist" / "index.html").exists()
        and (ROOT / "frontend" / "package.json").exists()
    ):
        out("building the dashboard (first run)...")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT / "frontend", check=False)
        subprocess.run(["npm", "run", "build"], cwd=ROOT / "frontend", check=False)
    asyncio.run(create_key(settings, "dev-admin", True))
    exe = [sys.executable, "-m", "conveyor"]
    procs = [
        subprocess.Popen([*exe, "serve", "--host", host, "--port", str(port)]),
        subprocess.Popen([*exe, "worker"]),
    ]
    base = f"http://{host}:{port}"
    out(f"Conveyor is running: dashboard {base}/  API {base}/graphql  explorer {base}/graphiql")
    out("Sign in with the admin key printed above. Ctrl-C stops everything.")
    try:
        while all(p.poll() is None for p in procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                procs[0].wait(timeout=1)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0
