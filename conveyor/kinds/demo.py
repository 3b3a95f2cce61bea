"""Demo kinds used by the quickstart, the tests and the benchmarks."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from conveyor.domain.errors import PermanentError
from conveyor.kinds.context import JobContext
from conveyor.kinds.registry import job_kind


class _Input(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SleepInput(_Input):
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


class FlakyInput(_Input):
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


class NoopInput(_Input):
    pass


@job_kind("demo.noop", input=NoopInput, queue="default")
async def noop(ctx: JobContext, input: NoopInput) -> None:
    """Do nothing: measures the machinery itself."""
