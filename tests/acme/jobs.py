"""Kinds of a fictional team: enums, nested models, lists, literals, dates, a wide integer,
a free-form dict, a typed result, and a model that keeps snake_case on the wire."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from conveyor.kinds import JobContext, Registry, job_kind

#: The team's kinds (their own registry, so the tests never touch the process-wide one).
REGISTRY = Registry()


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ReportFormat(enum.StrEnum):
    """How the report is written."""

    CSV = "csv"
    PDF = "pdf"


class Recipient(_Wire):
    email: str = Field(min_length=3, description="Where the report goes")
    display_name: str | None = None


class GenerateReport(_Wire):
    """Build the monthly report of one account."""

    account_id: int = Field(gt=0, description="The account to report on")
    months: int = Field(default=12, ge=1, le=120)
    format: ReportFormat = ReportFormat.CSV
    recipients: list[Recipient] = Field(default_factory=list)
    since: datetime | None = None
    mode: Literal["fast", "thorough"] = "fast"
    row_limit: int = Field(default=1000, ge=0, le=2**40, description="Past 32 bits: a Long")
    labels: dict[str, str] = Field(default_factory=dict)


class Section(_Wire):
    title: str
    rows: int


class Report(_Wire):
    rows: int
    format: ReportFormat
    generated_at: datetime
    sections: list[Section]
    note: str | None = None


@job_kind("reports.generate", input=GenerateReport, into=REGISTRY)
async def generate(ctx: JobContext, input: GenerateReport) -> Report:
    """Build the monthly report of one account."""
    return Report(
        rows=input.months * 10,
        format=input.format,
        generated_at=datetime.fromisoformat("2026-12-01T00:00:00+00:00"),
        sections=[Section(title="summary", rows=input.months)],
    )


class Refund(BaseModel):
    """A model that keeps its snake_case names on the wire (opted out of camelCase)."""

    model_config = ConfigDict(alias_generator=None)

    order_id: str
    amount_cents: int = Field(gt=0)


@job_kind("billing.refund", input=Refund, into=REGISTRY)
async def refund(ctx: JobContext, input: Refund) -> dict[str, Any]:
    return {"refunded": input.amount_cents}
