"""Conveyor: background jobs behind a GraphQL API.

What user code imports (ADR-0018, ADR-0019)::

    from conveyor import JobContext, PermanentError, job_kind

Everything else is internal and may move. The names are imported on first use, so `import
conveyor` (which the `conveyor` command does first) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.domain.errors import PermanentError
    from conveyor.kinds.context import JobContext
    from conveyor.kinds.registry import job_kind

__all__ = ["JobContext", "PermanentError", "job_kind"]


def __getattr__(name: str) -> Any:
    if name == "job_kind":
        from conveyor.kinds.registry import job_kind

        return job_kind
    if name == "JobContext":
        from conveyor.kinds.context import JobContext

        return JobContext
    if name == "PermanentError":
        from conveyor.domain.errors import PermanentError

        return PermanentError
    raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
