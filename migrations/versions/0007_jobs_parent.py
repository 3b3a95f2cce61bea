"""jobs.parent_id: the job whose handler submitted this one (`ctx.submit`)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 18:00:00

Expand (ADR-0016): one nullable column, no default, so `ADD COLUMN` only updates the catalog
(an ACCESS EXCLUSIVE lock held for microseconds, under `lock_timeout`). The previous release
never reads or writes it; its INSERTs leave it null.

No foreign key: a parent is pruned by retention like any finished job, possibly before its
children, and a child must not block that nor vanish with it; `Job.parent` is then null. No
index either: children are found by the idempotency keys `ctx.submit` derives from the parent
(`uq_jobs_owner_idempotency_key`); a listing of a job's children (the workflows issue) adds a
partial index on `parent_id` in a revision of its own (CREATE INDEX CONCURRENTLY).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
#: ADR-0016: the previous release runs against this schema unchanged.
code_compatible_from: str | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("parent_id", UUID(as_uuid=True), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "parent_id")
