"""Commands that run until stopped: serve (the API) and worker (`cli/dev.py` runs both)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from conveyor.cli.checks import fail, load_kinds, preflight
from conveyor.settings import Settings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

_WS_NOTICE = "The `websockets` implementation is deprecated"
_WS_NOTICE_FILTER = f"ignore:{_WS_NOTICE}"


def serve(settings: Settings, args: argparse.Namespace) -> int:
    return _serve(settings, args.host, args.port, args.workers or settings.api_workers)


def worker(settings: Settings, args: argparse.Namespace) -> int:
    queues = [q.strip() for q in (args.queues or "").split(",") if q.strip()] or settings.queues
    concurrency = args.concurrency or settings.worker_concurrency  # both are >= 1
    return _worker(settings, queues, concurrency)


def _serve(settings: Settings, host: str, port: int, workers: int = 1) -> int:
    import uvicorn

    from conveyor.main import create_app

    registry = load_kinds(settings)
    if isinstance(registry, int):
        return registry
    if problem := asyncio.run(preflight(settings)):
        return fail(problem)
    if not len(registry):
        log.warning(
            "no job kinds loaded (JOB_MODULES / --jobs): every submitJob answers UnknownJobKind"
        )
    # uvicorn announces the deprecation of its legacy `websockets` protocol on import. It is
    # the default WS_IMPLEMENTATION on purpose (ADR-0015: the sans-I/O one waits for a stalled
    # client's buffer to drain on close), so the notice says nothing an operator can act on.
    warnings.filterwarnings("ignore", message=_WS_NOTICE, category=UserWarning)
    if settings.env == "dev" and not _loopback(host):
        log.warning(
            "ENV=dev on %s: introspection, the explorer and /metrics are open%s. "
            "Set ENV=production (and SECRET_KEY) to expose Conveyor.",
            host,
            ", and tokens are signed with the development key" if settings.dev_secret else "",
        )
    options = {
        "host": host,
        "port": port,
        "log_config": None,
        "ws_ping_interval": settings.ws_ping_interval_seconds,
        "ws_ping_timeout": settings.ws_ping_timeout_seconds,
        "ws": uvicorn_ws(settings.ws_implementation),
        "ws_per_message_deflate": settings.ws_per_message_deflate,
        "timeout_graceful_shutdown": 10,
    }
    if workers > 1:
        return _serve_processes(settings, workers, options)
    config = uvicorn.Config(create_app(settings, registry), **options)  # type: ignore[arg-type]
    # As `uvicorn.run`: a server that never started (port taken, lifespan failed) is a failure.
    return 0 if _run_server(config) else 3


def _serve_processes(settings: Settings, workers: int, options: dict[str, object]) -> int:
    """`workers` API processes on one listening socket (uvicorn's supervisor: it binds the
    socket, starts each process, restarts one that dies, and stops them all on SIGTERM or
    SIGINT). Each process is a whole API, as one `conveyor serve` is: its own pools, events
    hub, connection caps and rate limits (per process, README: sizing); revocations reach
    every process through Redis. The processes are new interpreters (spawned): they read the
    same environment, with `--jobs` passed on as JOB_MODULES."""
    import os

    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    os.environ["JOB_MODULES"] = ",".join(settings.jobs)
    # uvicorn imports its WebSocket protocol in each process before the app exists; its
    # deprecation notice of the default protocol (see `_serve`) is silenced there this way.
    os.environ["PYTHONWARNINGS"] = ",".join(
        w for w in (os.environ.get("PYTHONWARNINGS"), _WS_NOTICE_FILTER) if w
    )
    config = uvicorn.Config(
        "conveyor.main:process_app",
        factory=True,
        workers=workers,
        **options,  # type: ignore[arg-type]
    )
    log.info("API: %d processes on %s:%s", workers, config.host, config.port)
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn logged why (e.g. the port is taken)
        return 3
    supervisor = Multiprocess(config, sockets=[sock])
    supervisor.run()
    # A process that could not start (lifespan failed) stops them all: a failure, as for one.
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return 3 if failed else 0


def uvicorn_ws(implementation: str) -> str | type:
    """uvicorn's `ws` option for `WS_IMPLEMENTATION`: for the legacy `websockets` protocol,
    Conveyor's subclass, whose connections shared feeds write to directly
    (`conveyor.api.direct`). Imported only here: the import announces the legacy protocol's
    deprecation (silence it first)."""
    if implementation != "websockets":
        return implementation
    from conveyor.api.ws_protocol import DirectWebSocketProtocol

    return DirectWebSocketProtocol


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
    from conveyor.worker.main import Worker

    registry = load_kinds(settings)
    if isinstance(registry, int):
        return registry
    if not len(registry):
        return fail(
            "no job kinds to run: point JOB_MODULES or --jobs at your job modules "
            f"(e.g. --jobs acme.jobs; unset, only ENV=dev loads the demo kinds; ENV={settings.env})"
        )
    if problem := asyncio.run(preflight(settings)):
        return fail(problem)
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
