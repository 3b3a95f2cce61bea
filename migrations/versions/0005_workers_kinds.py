"""workers.kinds: the job kinds each worker knows (ADR-0019)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00

Expand. A nullable column on `workers` (a few rows, a heartbeat UPDATE every few seconds each):
no rewrite, and the ALTER waits for its lock at most `lock_timeout`. Workers record the kinds
their job modules define; the resend sweep sends a job only while a live worker knows its kind
(and serves its queue). NULL is what the previous release's workers leave: such a worker is
taken to know every kind, as it claimed every job before this revision.

Downgrade drops the column (what it held is rewritten by every worker at start-up).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
#: ADR-0016: the previous release's code runs against this schema (it never reads the column).
code_compatible_from: str | None = None


def upgrade() -> None:
    op.add_column("workers", sa.Column("kinds", postgresql.ARRAY(sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("workers", "kinds")
