"""Monthly reports: a kind on a queue of its own, with a typed result."""

import asyncio

from pydantic import BaseModel, Field

from conveyor import JobContext, PermanentError, job_kind


class GenerateReport(BaseModel):
    account_id: int = Field(gt=0, description="The account to report on")
    months: int = Field(default=3, ge=1, le=120, description="How many months back")


class ReportSummary(BaseModel):
    account_id: int
    months: int
    rows: int


@job_kind("reports.generate", input=GenerateReport, queue="reports", max_attempts=5, timeout=600)
async def generate(ctx: JobContext, input: GenerateReport) -> ReportSummary:
    """Build the monthly report of one account."""
    if input.account_id == 13:
        raise PermanentError("account 13 is closed")  # fail now, no retry
    rows = 0
    for month in range(input.months):
        await asyncio.sleep(0.01)  # your work: async I/O
        rows += 100
        await ctx.progress((month + 1) / input.months, f"month {month + 1} of {input.months}")
    return ReportSummary(account_id=input.account_id, months=input.months, rows=rows)
