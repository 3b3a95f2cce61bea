"""Conveyor's API and worker run inside the test process, each on its own thread and event loop.

What a test talks to is unchanged: a real uvicorn server on a real port (HTTP and WebSocket), a
real worker reading real Redis streams and writing real PostgreSQL. What is saved is the
interpreter start-up, the imports and the CLI's preflight checks of a `conveyor` process: a
component starts in ~0.1 s instead of 3-4 s. Tests that must kill a process (SIGKILL, exit
codes, signal handling) start real processes instead (`Stack.serve(process=True)`).

A component's log lines (JSON, as `LOG_FORMAT=json` writes them) are collected from the records
logged on its thread, so `output()` reads like a process's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import threading
import traceback
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from conveyor import kinds, logs
from conveyor.settings import Settings

_ROUTER: _LogRouter | None = None


class _LogRouter(logging.Handler):
    """One root handler for the test process: each record goes to the component whose thread
    logged it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.sinks: dict[str, list[str]] = {}
        self.levels: dict[str, int] = {}
        self.formatter_ = logs.JsonFormatter()
        self.addFilter(logs.JobContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        sink = self.sinks.get(record.threadName or "")
        if sink is not None and record.levelno >= self.levels.get(record.threadName or "", 0):
            sink.append(self.formatter_.format(record))


def _router() -> _LogRouter:
    global _ROUTER
    if _ROUTER is None:
        _ROUTER = _LogRouter()
        root = logging.getLogger()
        root.addHandler(_ROUTER)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        for noisy in ("taskiq", "taskiq_redis", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # uvicorn's legacy `websockets` protocol (the default, ADR-0015) warns once, on import.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import uvicorn.protocols.websockets.websockets_impl  # noqa: F401
    return _ROUTER


def settings_from_env(values: dict[str, str]) -> Settings:
    """Settings from environment-style names (`LEASE_SECONDS="3"`), as a process would read
    them, ignoring variables that are not settings."""
    fields = {name.upper(): name for name in Settings.model_fields}
    given = {fields[k]: v for k, v in values.items() if k in fields}
    return Settings(_env_file=None, **given)  # type: ignore[call-arg]


class InProcess:
    """An API or a worker on its own thread and event loop."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self._thread_name = f"conveyor-{name}-{id(self):x}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stop: Callable[[bool], None] | None = None
        self._thread: threading.Thread | None = None
        self.returncode: int | None = None

    def start(
        self,
        main: Callable[[InProcess], Awaitable[None]],
        settings: Settings,
        timeout: float = 30,
    ) -> None:
        router = _router()
        router.sinks[self._thread_name] = self.lines
        router.levels[self._thread_name] = logging.getLevelName(settings.log_level.upper())

        async def body() -> None:
            self._loop = asyncio.get_running_loop()
            await main(self)

        def run() -> None:
            # asyncio.run: tasks still pending at the end are cancelled and awaited, async
            # generators and the default executor shut down, as in a process that exits.
            try:
                asyncio.run(body())
                self.returncode = 0
            except BaseException as exc:
                self._failure = exc
                self.returncode = 1
            finally:
                self._ready.set()

        self._thread = threading.Thread(target=run, name=self._thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self.name} did not start:\n{self.output()}")
        if self._failure is not None or self.returncode is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.output()}") from self._failure
        # The component froze the heap at start-up (`gc_freeze`): right for a process that
        # lives long, a leak in a test process that starts hundreds.
        gc.unfreeze()

    def ready(self, stop: Callable[[bool], None]) -> None:
        """Called on the component's loop once it serves; `stop(force)` ends it, gracefully
        or (force) at once, its clients and connections closed either way."""
        self._stop = stop
        self._ready.set()

    def output(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")

    def terminate(self, timeout: float = 60) -> int:
        """Stop as SIGTERM does (the same code path), and wait."""
        return self._end(False, timeout)

    def abort(self, timeout: float = 30) -> int:
        """Stop now, without the grace periods (test teardown)."""
        return self._end(True, timeout)

    def _end(self, force: bool, timeout: float) -> int:
        if self._thread is None or not self._thread.is_alive():
            return self.returncode or 0
        if self._stop is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop, force)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(
                f"{self.name} did not stop within {timeout}s:\n{self.output()}\n{self._stacks()}"
            )
        return 0 if self._failure is None else 1

    def _stacks(self) -> str:
        """Where the component's thread and tasks are (for a component that will not stop)."""
        lines = []
        frame = sys._current_frames().get(self._thread.ident or -1) if self._thread else None
        if frame is not None:
            lines.append("thread:\n" + "".join(traceback.format_stack(frame)))
        if self._loop is not None:
            for task in list(asyncio.all_tasks(self._loop)):
                frames = task.get_stack()
                where = "".join(traceback.format_stack(frames[-1])) if frames else "(no frame)\n"
                lines.append(f"task {task.get_name()}:\n{where}")
        return "\n".join(lines)

    def kill(self) -> None:
        raise RuntimeError(
            f"{self.name} runs in the test process: start it with process=True to kill it"
        )

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def serve(name: str, settings: Settings, port: int) -> InProcess:
    import uvicorn

    from conveyor.cli.servers import uvicorn_ws
    from conveyor.main import create_app

    component = InProcess(name)

    async def main(c: InProcess) -> None:
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_config=None,
            ws_ping_interval=settings.ws_ping_interval_seconds,
            ws_ping_timeout=settings.ws_ping_timeout_seconds,
            ws=uvicorn_ws(settings.ws_implementation),
            ws_per_message_deflate=settings.ws_per_message_deflate,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.01)
        if task.done():
            await task
            raise RuntimeError("the server did not start")

        def stop(force: bool) -> None:
            # Never uvicorn's force_exit: it skips the lifespan's shutdown, which closes the
            # clients. Requests in flight get `timeout_graceful_shutdown`.
            server.should_exit = True

        c.ready(stop)
        await task

    component.start(main, settings)
    return component


def worker(
    name: str,
    settings: Settings,
    *,
    queues: list[str] | None = None,
    concurrency: int | None = None,
    registry: kinds.Registry | None = None,
) -> InProcess:
    from conveyor.worker.main import Worker

    component = InProcess(name)

    async def main(c: InProcess) -> None:
        w = Worker(
            settings,
            registry or kinds.load(settings.jobs),
            queues=queues or settings.queues,
            concurrency=concurrency or settings.worker_concurrency,
            handle_signals=False,
        )
        task = asyncio.create_task(w.run())
        started = asyncio.create_task(w.started.wait())
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            started.cancel()
            await task
            raise RuntimeError("the worker stopped at start-up")

        def stop(force: bool) -> None:
            if force:
                task.cancel()  # Worker.run closes its clients on the way out
            else:
                w.stopping.set()

        c.ready(stop)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    component.start(main, settings)
    return component


def run_sync(make: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine to completion from sync or async test code alike (on a fresh thread:
    a running loop in the caller's thread does not matter)."""
    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(make()))  # type: ignore[arg-type]
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="conveyor-run-sync")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
