"""Job kinds: the registry, the handler context, and the kinds Conveyor ships."""

from app.domain.errors import PermanentError
from app.kinds.context import JobContext
from app.kinds.registry import JobKind, Registry, job_kind, registry

__all__ = ["JobContext", "JobKind", "PermanentError", "Registry", "job_kind", "load", "registry"]


def load() -> Registry:
    """Import the shipped kinds (registering them) and return the registry."""
    from app.kinds import compute, demo  # noqa: F401 - imported for their registrations

    return registry
