"""Job kinds: the decorator and registry, the handler context, loading the job modules, and
the kinds Conveyor ships (`demo`, `compute`)."""

from conveyor.domain.errors import JobKindError, PermanentError
from conveyor.kinds.context import JobContext
from conveyor.kinds.loading import DEMO_MODULES, load, parse
from conveyor.kinds.registry import (
    JobKind,
    Registry,
    apply_convention,
    job_kind,
    schedule,
    workflow,
)
from conveyor.kinds.workflows import Map, Step, StepInputs, Workflow

__all__ = [
    "DEMO_MODULES",
    "JobContext",
    "JobKind",
    "JobKindError",
    "Map",
    "PermanentError",
    "Registry",
    "Step",
    "StepInputs",
    "Workflow",
    "apply_convention",
    "job_kind",
    "load",
    "parse",
    "schedule",
    "workflow",
]
