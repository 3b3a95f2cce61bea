"""The worker's process pool for CPU-bound handlers (`ctx.run_in_process`), whose processes die
with the worker.

A pool process waits for work on a pipe from its worker. When the worker dies without shutting
the pool down (SIGKILL, OOM kill), nothing tells the pool process to exit: it was left behind,
with the resource tracker multiprocessing started beside it, on every such death. Here each pool
process asks Linux to SIGKILL it when the worker dies (`PR_SET_PDEATHSIG`) and, where that is
not available, watches its parent once a second.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """Pool process initializer: end this process when `parent` (the worker) is gone."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:  # the worker died before the prctl took effect
                    os._exit(1)
                return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="conveyor-parent-watch", daemon=True).start()


def process_pool(processes: int) -> ProcessPoolExecutor:
    """`processes` spawned interpreters (not forked: a fork would copy the worker's event loop,
    sockets and locks), each dying with this process."""
    return ProcessPoolExecutor(
        processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_die_with,
        initargs=(os.getpid(),),
    )
