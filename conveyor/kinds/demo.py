"""Demo kinds used by the quickstart, the tests and the benchmarks."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from conveyor.domain.errors import PermanentError
from conveyor.kinds.context import JobContext
from conveyor.kinds.registry import job_kind

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
