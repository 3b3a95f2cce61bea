"""What a handler sees of the machinery running it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, NoReturn, Protocol, TypeVar

T = TypeVar("T")


class JobContext(Protocol):
    """Passed as the first argument of every handler; implemented by the worker."""

    @property
    def job_id(self) -> uuid.UUID: ...

    @property
    def attempt(self) -> int:
        """1 for the first attempt."""
        ...

    async def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress in [0, 1]. Cheap: writes are coalesced, the latest always lands."""
        ...

    async def log(self, message: str, level: str = "info") -> None:
        """Append a LOG event to the job's history (never coalesced)."""
        ...

    async def run_in_process(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run CPU-bound `fn(*args)` in the worker's process pool, keeping the event loop free."""
        ...

    async def snooze(self, seconds: float) -> NoReturn:
        """End this attempt now and run the job again after `seconds`, without using an
        attempt (for polling: "not ready yet, look again in a minute"). Raises: code after it
        does not run. A cancel requested meanwhile wins."""
        ...
