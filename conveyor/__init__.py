"""Conveyor: background jobs behind a GraphQL API.

What user code imports (ADR-0018, ADR-0019)::

    from conveyor import JobContext, PermanentError, job_kind, schedule   # job modules
    from conveyor import Map, Step, workflow                              # workflows
    from conveyor import Producer, Client                                  # producers, clients

Everything else is internal and may move. The names are resolved on first use, so `import
conveyor` (which the `conveyor` command does first) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.client import Client
    from conveyor.domain.errors import (
        Conflict,
        Forbidden,
        InvalidInput,
        InvalidState,
        NotFound,
        PermanentError,
        PolicyDenied,
        ServiceUnavailable,
        Unauthenticated,
        UnknownJobKind,
        UserError,
    )
    from conveyor.domain.models import Job
    from conveyor.domain.states import JobStatus, Priority
    from conveyor.kinds.context import JobContext
    from conveyor.kinds.registry import job_kind, schedule, workflow
    from conveyor.kinds.workflows import Map, Step
    from conveyor.producer import Producer, SubmitRequest

#: Public name -> the module that defines it.
_EXPORTS = {
    "job_kind": "conveyor.kinds.registry",
    "schedule": "conveyor.kinds.registry",
    "workflow": "conveyor.kinds.registry",
    "Step": "conveyor.kinds.workflows",
    "Map": "conveyor.kinds.workflows",
    "JobContext": "conveyor.kinds.context",
    "PermanentError": "conveyor.domain.errors",
    "Client": "conveyor.client",
    "Producer": "conveyor.producer",
    "SubmitRequest": "conveyor.producer",
    "Job": "conveyor.domain.models",
    "JobStatus": "conveyor.domain.states",
    "Priority": "conveyor.domain.states",
    "UserError": "conveyor.domain.errors",
    "InvalidInput": "conveyor.domain.errors",
    "UnknownJobKind": "conveyor.domain.errors",
    "Conflict": "conveyor.domain.errors",
    "PolicyDenied": "conveyor.domain.errors",
    "NotFound": "conveyor.domain.errors",
    "InvalidState": "conveyor.domain.errors",
    "Unauthenticated": "conveyor.domain.errors",
    "Forbidden": "conveyor.domain.errors",
    "ServiceUnavailable": "conveyor.domain.errors",
}

__all__ = [
    "Client",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "InvalidState",
    "Job",
    "JobContext",
    "JobStatus",
    "Map",
    "NotFound",
    "PermanentError",
    "PolicyDenied",
    "Priority",
    "Producer",
    "ServiceUnavailable",
    "Step",
    "SubmitRequest",
    "Unauthenticated",
    "UnknownJobKind",
    "UserError",
    "job_kind",
    "schedule",
    "workflow",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
