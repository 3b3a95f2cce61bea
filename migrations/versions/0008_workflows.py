"""workflows: runs, steps, edges, step jobs, run events; jobs know their run and step

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 17:30:00

Expand only (ADR-0016): four new tables, three nullable columns on `jobs` (no default, no
index, no foreign key: instant, and the previous release never sets them). The constraint that a step
never starts twice is the primary key of the new `workflow_step_jobs` (ADR-0023), so the hot
`jobs` table gets no new index.

Downgrade drops the workflow tables and the columns (their runs are lost).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
#: ADR-0016: the previous release runs against this schema unchanged.
code_compatible_from: str | None = None

TZ = sa.DateTime(timezone=True)
RUN_STATUSES = "'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'"
STEP_STATUSES = "'BLOCKED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELLED'"


def _at(name: str, default: bool = False) -> sa.Column[object]:
    return sa.Column(
        name, TZ, server_default=sa.text("now()") if default else None, nullable=not default
    )


def upgrade() -> None:
    # `jobs` first: its ACCESS EXCLUSIVE lock is the strongest this revision takes, and taken
    # before anything else it cannot deadlock with a worker. Taken after the foreign key of
    # `workflow_step_jobs` (SHARE ROW EXCLUSIVE on jobs), it would be a lock upgrade, and a
    # transaction that read jobs and then updates one waits for us while we wait for it.
    op.add_column("jobs", sa.Column("run_id", sa.UUID(), nullable=True))
    op.add_column("jobs", sa.Column("step_id", sa.UUID(), nullable=True))
    op.add_column("jobs", sa.Column("map_index", sa.BigInteger(), nullable=True))
    op.create_table(
        "workflow_runs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("workflow", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("input", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("owner_id", sa.UUID(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("generation", sa.BigInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("open_steps", sa.BigInteger(), nullable=False),
        _at("created_at", True),
        _at("updated_at", True),
        _at("started_at"),
        _at("finished_at"),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint(f"status IN ({RUN_STATUSES})", name=op.f("ck_workflow_runs_status")),
        sa.CheckConstraint("open_steps >= 0", name=op.f("ck_workflow_runs_open_steps")),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["api_keys.id"],
            name=op.f("fk_workflow_runs_owner_id_api_keys"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_runs")),
    )
    op.create_index(
        "ix_workflow_runs_created",
        "workflow_runs",
        [sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.create_index(
        "ix_workflow_runs_owner_created",
        "workflow_runs",
        ["owner_id", sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.create_index(
        "uq_workflow_runs_owner_idempotency_key",
        "workflow_runs",
        ["owner_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )

    op.create_table(
        "workflow_steps",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("run_id", sa.UUID(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("is_map", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("pending_parents", sa.BigInteger(), nullable=False),
        sa.Column("allow_failures", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("expected", sa.BigInteger(), nullable=True),
        sa.Column("expanded", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("succeeded", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("failed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        _at("started_at"),
        _at("finished_at"),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint(f"status IN ({STEP_STATUSES})", name=op.f("ck_workflow_steps_status")),
        sa.CheckConstraint("pending_parents >= 0", name=op.f("ck_workflow_steps_pending_parents")),
        sa.CheckConstraint("allow_failures >= 0", name=op.f("ck_workflow_steps_allow_failures")),
        sa.CheckConstraint(
            "expected IS NULL OR (expanded <= expected AND succeeded + failed <= expected)",
            name=op.f("ck_workflow_steps_map_counts"),
        ),
        sa.CheckConstraint(
            "succeeded >= 0 AND failed >= 0 AND expanded >= 0",
            name=op.f("ck_workflow_steps_counts"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["workflow_runs.id"],
            name=op.f("fk_workflow_steps_run_id_workflow_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_steps")),
    )
    op.create_index(
        "uq_workflow_steps_run_id_key", "workflow_steps", ["run_id", "key"], unique=True
    )
    op.create_index(
        "ix_workflow_steps_expanding",
        "workflow_steps",
        ["run_id"],
        postgresql_where=sa.text("status = 'RUNNING' AND expanded < expected"),
    )

    op.create_table(
        "workflow_edges",
        sa.Column("parent_id", sa.UUID(), nullable=False),
        sa.Column("child_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["workflow_steps.id"],
            name=op.f("fk_workflow_edges_parent_id_workflow_steps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["workflow_steps.id"],
            name=op.f("fk_workflow_edges_child_id_workflow_steps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("parent_id", "child_id", name=op.f("pk_workflow_edges")),
    )
    op.create_index("ix_workflow_edges_child_id", "workflow_edges", ["child_id"])

    op.create_table(
        "workflow_step_jobs",
        sa.Column("step_id", sa.UUID(), nullable=False),
        sa.Column("map_index", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["workflow_steps.id"],
            name=op.f("fk_workflow_step_jobs_step_id_workflow_steps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_workflow_step_jobs_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("step_id", "map_index", name=op.f("pk_workflow_step_jobs")),
    )
    op.create_index("uq_workflow_step_jobs_job_id", "workflow_step_jobs", ["job_id"], unique=True)

    op.create_table(
        "workflow_events",
        sa.Column("run_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("step", sa.Text(), nullable=True),
        sa.Column("step_status", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        _at("at", True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["workflow_runs.id"],
            name=op.f("fk_workflow_events_run_id_workflow_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_workflow_events")),
    )


def downgrade() -> None:
    op.drop_column("jobs", "map_index")
    op.drop_column("jobs", "step_id")
    op.drop_column("jobs", "run_id")
    op.drop_table("workflow_events")
    op.drop_table("workflow_step_jobs")
    op.drop_table("workflow_edges")
    op.drop_table("workflow_steps")
    op.drop_table("workflow_runs")
