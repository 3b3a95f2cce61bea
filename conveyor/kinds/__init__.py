"""Job kinds: the registry, the handler context, and the kinds Conveyor ships."""

from conveyor.domain.errors import PermanentError
from conveyor.kinds.context import JobContext
from conveyor.kinds.registry import JobKind, Registry, job_kind, registry, schedule

__all__ = [
    "JobContext",
    "JobKind",
    "PermanentError",
    "Registry",
    "job_kind",
    "load",
    "registry",
    "schedule",
]


def load() -> Registry:
    """Import the shipped kinds (registering them) and return the registry."""
    from conveyor.kinds import compute, demo  # noqa: F401 - imported for their registrations

    return registry
