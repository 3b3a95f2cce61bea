"""Conveyor: background jobs behind a GraphQL API.

The names user code imports (ADR-0018), resolved on first use so that `import conveyor` (the
CLI does it) stays cheap. Everything else is internal and may move.
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
        PolicyDenied,
        ServiceUnavailable,
        Unauthenticated,
        UnknownJobKind,
        UserError,
    )
    from conveyor.domain.models import Job
    from conveyor.domain.states import JobStatus, Priority
    from conveyor.producer import Producer, SubmitRequest

#: Public name -> the module that defines it.
_EXPORTS = {
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
    "JobStatus",
    "NotFound",
    "PolicyDenied",
    "Priority",
    "Producer",
    "ServiceUnavailable",
    "SubmitRequest",
    "Unauthenticated",
    "UnknownJobKind",
    "UserError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
