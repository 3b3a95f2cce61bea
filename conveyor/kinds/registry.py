"""The job-kind registry: `@job_kind(...)` turns a typed async handler into a job kind.

class Resize(BaseModel):
    url: str
    width: int = Field(gt=0)

@job_kind("images.resize", input=Resize, queue="default", max_attempts=5, timeout=120)
async def resize(ctx: JobContext, input: Resize) -> dict[str, int]:
    await ctx.progress(0.5, "downloaded")
    ...
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from conveyor.kinds.workflows import Map, Step, Workflow, WorkflowRegistry, validate

if TYPE_CHECKING:
    from conveyor.kinds.context import JobContext

#: `area.verb`: lowercase dotted words (ADR-0011).
KIND_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
#: Queue names: lowercase word, may contain dashes (ADR-0011).
QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")

Handler = Callable[["JobContext", Any], Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class JobKind:
    name: str
    input_model: type[BaseModel]
    handler: Handler
    queue: str
    max_attempts: int
    timeout_seconds: float
    backoff_base_seconds: float | None
    backoff_cap_seconds: float | None
    description: str

    def json_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema(by_alias=True)


class Registry:
    """Job kinds, and the workflows built from them (`kinds.workflows`)."""

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}
        self.workflows = WorkflowRegistry()

    def add(self, kind: JobKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> JobKind | None:
        return self._kinds.get(name)

    def all(self) -> list[JobKind]:
        return sorted(self._kinds.values(), key=lambda k: k.name)

    def queues(self) -> list[str]:
        return sorted({k.queue for k in self._kinds.values()})


#: The process-wide registry the decorator fills at import time (like taskiq's task registry).
registry = Registry()


def job_kind(
    name: str,
    *,
    input: type[BaseModel],
    queue: str = "default",
    max_attempts: int = 3,
    timeout: float = 300.0,
    backoff_base: float | None = None,
    backoff_cap: float | None = None,
    description: str | None = None,
    into: Registry | None = None,
) -> Callable[[Handler], Handler]:
    if not KIND_NAME.match(name):
        raise ValueError(
            f"job kind name {name!r} must be dotted lowercase words, e.g. 'reports.generate'"
        )
    if not QUEUE_NAME.match(queue):
        raise ValueError(f"queue name {queue!r} must match {QUEUE_NAME.pattern}")
    if max_attempts < 1 or timeout <= 0:
        raise ValueError("max_attempts must be >= 1 and timeout > 0")

    def register(handler: Handler) -> Handler:
        doc = description if description is not None else (handler.__doc__ or "").strip()
        (into or registry).add(
            JobKind(
                name=name,
                input_model=input,
                handler=handler,
                queue=queue,
                max_attempts=max_attempts,
                timeout_seconds=timeout,
                backoff_base_seconds=backoff_base,
                backoff_cap_seconds=backoff_cap,
                description=doc.splitlines()[0] if doc else "",
            )
        )
        return handler

    return register


def workflow(
    name: str,
    *,
    input: type[BaseModel],
    steps: Sequence[Step | Map],
    description: str = "",
    into: Registry | None = None,
) -> Workflow:
    """Define, validate and register a workflow (`kinds.workflows`); its kinds must be
    registered first. A definition that cannot run raises `InvalidWorkflow` here, at import."""
    target = into or registry
    parents = validate(name, input, steps, target)
    wf = Workflow(name, input, tuple(steps), description, parents)
    target.workflows.add(wf)
    return wf
