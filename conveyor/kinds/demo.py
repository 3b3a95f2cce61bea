"""Demo kinds used by the quickstart, the tests and the benchmarks."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from conveyor.domain.errors import PermanentError
from conveyor.kinds.context import JobContext
from conveyor.kinds.registry import job_kind, workflow
from conveyor.kinds.workflows import Map, Step, StepInputs

# Plain models: `@job_kind` gives them the convention (camelCase on the wire, unknown fields
# refused), as it does to users' kinds.


class SleepInput(BaseModel):
    steps: int = Field(default=10, ge=1, le=10_000, description="How many steps to sleep")
    step_seconds: float = Field(default=0.5, ge=0, le=60, description="Seconds per step")


class SleepResult(BaseModel):
    """What demo.sleep did (a typed result: `Job.demoSleepResult`, ADR-0020)."""

    steps: int = Field(description="Steps slept")


@job_kind("demo.sleep", input=SleepInput, queue="default", timeout=3600)
async def sleep(ctx: JobContext, input: SleepInput) -> SleepResult:
    """Sleep for `steps` x `stepSeconds`, reporting progress after every step."""
    for step in range(1, input.steps + 1):
        await asyncio.sleep(input.step_seconds)
        await ctx.progress(step / input.steps, f"step {step}/{input.steps}")
    return SleepResult(steps=input.steps)


class FlakyInput(BaseModel):
    fail_times: int = Field(default=1, ge=0, le=1000, description="Attempts that fail first")
    permanent: bool = Field(
        default=False, description="Fail with PermanentError: no further attempts"
    )


class FlakyError(RuntimeError):
    """The deliberate failure of demo.flaky."""


@job_kind("demo.flaky", input=FlakyInput, queue="default", backoff_base=0.2, backoff_cap=2.0)
async def flaky(ctx: JobContext, input: FlakyInput) -> dict[str, int]:
    """Fail the first `failTimes` attempts, then succeed (or fail for good: `permanent`)."""
    if ctx.attempt <= input.fail_times:
        if input.permanent:
            raise PermanentError(f"attempt {ctx.attempt} fails on purpose, permanently")
        raise FlakyError(f"attempt {ctx.attempt} fails on purpose ({input.fail_times} to fail)")
    return {"attempt": ctx.attempt}


class NoopInput(BaseModel):
    pass


@job_kind("demo.noop", input=NoopInput, queue="default")
async def noop(ctx: JobContext, input: NoopInput) -> None:
    """Do nothing: measures the machinery itself."""


class KeyedInput(BaseModel):
    account: str = Field(
        min_length=1, max_length=100, description="Jobs of one account run one at a time"
    )
    steps: int = Field(default=1, ge=0, le=10_000, description="How many steps to sleep")
    step_seconds: float = Field(default=0.1, ge=0, le=60, description="Seconds per step")


@job_kind(
    "demo.keyed",
    input=KeyedInput,
    queue="default",
    timeout=3600,
    concurrency_key="account",
    key_concurrency=1,
)
async def keyed(ctx: JobContext, input: KeyedInput) -> dict[str, str]:
    """Sleep `steps` x `stepSeconds`, at most one running job per `account` (a per-key limit)."""
    for step in range(1, input.steps + 1):
        await asyncio.sleep(input.step_seconds)
        await ctx.progress(step / input.steps, f"step {step}/{input.steps}")
    return {"account": input.account}


class SplitInput(BaseModel):
    items: int = Field(default=10, ge=0, le=100_000, description="How many items to return")


@job_kind("demo.split", input=SplitInput, queue="default")
async def split(ctx: JobContext, input: SplitInput) -> dict[str, list[int]]:
    """Return `items` items (0, 1, 2, ...): the fan-out of `demo.pipeline`."""
    return {"items": list(range(input.items))}


class JoinInput(BaseModel):
    count: int = Field(ge=0, description="How many items the map ran")
    failed: int = Field(default=0, ge=0, description="How many of them failed")


@job_kind("demo.join", input=JoinInput, queue="default")
async def join(ctx: JobContext, input: JoinInput) -> dict[str, int]:
    """Collect a map's outcome: the fan-in of `demo.pipeline`."""
    return {"count": input.count, "succeeded": input.count - input.failed}


class PipelineInput(BaseModel):
    items: int = Field(default=10, ge=0, le=10_000, description="Items the map fans out to")
    step_seconds: float = Field(
        default=0.5, ge=0, le=60, description="Seconds each item's job sleeps"
    )


def _join_input(c: StepInputs) -> dict[str, int]:
    results = c.results["work"]
    return {"count": len(results), "failed": sum(r is None for r in results)}


pipeline = workflow(
    "demo.pipeline",
    input=PipelineInput,
    description="split -> one demo.sleep per item -> join: items + 2 jobs",
    steps=[
        Step("split", "demo.split", input=lambda c: {"items": c.input.items}),
        Map(
            "work",
            "demo.sleep",
            over="split",
            items=lambda r: r["items"],
            input=lambda c, item: {"steps": 1, "stepSeconds": c.input.step_seconds},
        ),
        Step("join", "demo.join", after=["work"], input=_join_input),
    ],
)


class FlakyPipelineInput(BaseModel):
    items: int = Field(default=5, ge=0, le=10_000, description="Items the map fans out to")
    fail_items: list[int] = Field(
        default_factory=list,
        description="Items whose first attempt fails permanently (a retry of the run passes)",
    )


flaky_pipeline = workflow(
    "demo.flaky_pipeline",
    input=FlakyPipelineInput,
    description="demo.pipeline with items that fail once: shows retryWorkflowRun",
    steps=[
        Step("split", "demo.split", input=lambda c: {"items": c.input.items}),
        Map(
            "work",
            "demo.flaky",
            over="split",
            items=lambda r: r["items"],
            input=lambda c, item: {
                "failTimes": 1 if item in c.input.fail_items else 0,
                "permanent": True,
            },
        ),
        Step("join", "demo.join", after=["work"], input=_join_input),
    ],
)
