"""What a handler sees of the machinery running it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NoReturn, Protocol, TypeVar

from pydantic import BaseModel

from conveyor.domain.models import Job
from conveyor.domain.states import Priority

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

    async def submit(
        self,
        kind: str,
        input: Mapping[str, Any] | BaseModel | None = None,
        *,
        key: str | None = None,
        run_at: datetime | None = None,
        priority: Priority = Priority.NORMAL,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
    ) -> Job:
        """Submit a follow-up job as this job's owner, recorded as its child (`parent_id`),
        through the API's checks (validation, policy decision, audit).

        Idempotent per (this job, `key`): an attempt that runs again (a retry, a recovered
        crash) and submits with the same key gets the same job back (`deduplicated`), so a
        retried parent creates no duplicates. Without `key`, it is derived from the kind and
        the input. Raises InvalidInput, UnknownJobKind, PolicyDenied, Conflict (the key was
        used with another kind or input), Unauthenticated (the owner's key is revoked or
        expired)."""
        ...

    async def snooze(self, seconds: float) -> NoReturn:
        """End this attempt now and run the job again after `seconds`, without using an
        attempt (for polling: "not ready yet, look again in a minute"). Raises: code after it
        does not run. A cancel requested meanwhile wins."""
        ...
