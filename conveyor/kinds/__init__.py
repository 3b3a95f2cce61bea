"""Job kinds: the registry, the handler context, and the kinds Conveyor ships."""

from conveyor.domain.errors import PermanentError
from conveyor.kinds.context import JobContext
from conveyor.kinds.registry import JobKind, Registry, job_kind, registry, workflow
from conveyor.kinds.workflows import Map, Step, StepInputs, Workflow

__all__ = [
    "JobContext",
    "JobKind",
    "Map",
    "PermanentError",
    "Registry",
    "Step",
    "StepInputs",
    "Workflow",
    "job_kind",
    "load",
    "registry",
    "workflow",
]


def load() -> Registry:
    """Import the shipped kinds (registering them) and return the registry."""
    from conveyor.kinds import compute, demo  # noqa: F401 - imported for their registrations

    return registry
