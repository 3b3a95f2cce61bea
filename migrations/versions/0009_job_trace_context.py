"""jobs.trace_context: the W3C trace context a job was submitted under

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 18:00:00

Expand (ADR-0016): one nullable column, no default, so PostgreSQL adds it without rewriting
`jobs` (an ACCESS EXCLUSIVE lock held for an instant, under `lock_timeout`). It holds
`{"traceparent": ..., "tracestate": ...}` when OpenTelemetry tracing is on (ADR-0024): the
worker's claim and every attempt, retries days later included, join the submit's trace. Old
code neither reads nor writes it; jobs it submits have none (their attempts start new traces).

Downgrade drops the column and, with it, the trace of jobs still waiting.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
#: ADR-0016: None when code that ran against the previous revision still runs against this
#: one (expand, backfill). A contract step names the revision whose code stopped using what
#: it removes: older code then refuses to start against the database.
code_compatible_from: str | None = None


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("trace_context", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("jobs", "trace_context")
