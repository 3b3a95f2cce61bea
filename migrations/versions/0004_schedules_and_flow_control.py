"""schedules, run-time concurrency limits and throttles, paused queues

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 12:00:00

Expand only (ADR-0016): new tables, and three nullable columns on `jobs` (no rewrite, no
scan). The previous release never reads or writes any of them, so it keeps running: its
workers claim without looking at limits or pauses, which is what it did before.

- `schedules` and `schedule_fires`: one row per (schedule, fire time); its primary key is the
  constraint that makes a fire time produce one job however many schedulers run (ADR-0022).
- `leases`: the scheduler lease (one row, renewed by its holder).
- `concurrency_limits`, `throttles`, `parked_jobs`: run-time limits. A job a limit holds
  stays QUEUED with a `parked_jobs` row (its Redis message acknowledged) until a slot frees.
- `paused_queues`: a queue listed here starts nothing new.
- `jobs.schedule_id`, `jobs.fire_at` (the fire time a scheduled job was made for) and
  `jobs.concurrency_key` (the key its kind computes from the input).

The tenant limits already in policies (`maxRunningJobs`) are copied into
`concurrency_limits`, where claims read them from now on (ADR-0014, amended by ADR-0022).

Downgrade drops the new tables and columns: schedules, limits, pauses and parked marks are
lost (parked jobs stay QUEUED and are sent again by the resend sweep).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
#: ADR-0016: expand only; the previous release runs against this schema unchanged.
code_compatible_from: str | None = None

TZ = sa.DateTime(timezone=True)


def _at(name: str) -> sa.Column[object]:
    return sa.Column(name, TZ, server_default=sa.text("now()"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column(
            "input",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("cron", sa.Text(), nullable=True),
        sa.Column("every_seconds", sa.Float(), nullable=True),
        sa.Column("timezone", sa.Text(), server_default=sa.text("'UTC'"), nullable=False),
        _at("anchor_at"),
        sa.Column("jitter_seconds", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("misfire", sa.Text(), server_default=sa.text("'RUN_ONCE'"), nullable=False),
        sa.Column(
            "misfire_grace_seconds", sa.Float(), server_default=sa.text("60"), nullable=False
        ),
        sa.Column("max_catchup", sa.BigInteger(), server_default=sa.text("100"), nullable=False),
        sa.Column(
            "options",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("source", sa.Text(), server_default=sa.text("'API'"), nullable=False),
        sa.Column("definition_hash", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.UUID(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("paused_at", TZ, nullable=True),
        sa.Column("paused_by", sa.Text(), nullable=True),
        sa.Column("next_fire_at", TZ, nullable=True),
        sa.Column("last_fire_at", TZ, nullable=True),
        sa.Column("skipped_fires", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.CheckConstraint(
            "(cron IS NULL) <> (every_seconds IS NULL)", name=op.f("ck_schedules_timing")
        ),
        sa.CheckConstraint(
            "misfire IN ('SKIP', 'RUN_ONCE', 'RUN_ALL')", name=op.f("ck_schedules_misfire")
        ),
        sa.CheckConstraint("source IN ('API', 'CODE')", name=op.f("ck_schedules_source")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_schedules_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["api_keys.id"],
            name=op.f("fk_schedules_owner_id_api_keys"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_schedules_tenant_id_name")),
    )
    op.create_index(
        "ix_schedules_due",
        "schedules",
        ["next_fire_at"],
        postgresql_where=sa.text("paused_at IS NULL"),
    )
    op.create_table(
        "schedule_fires",
        sa.Column("schedule_id", sa.UUID(), nullable=False),
        sa.Column("fire_at", TZ, nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=True),
        sa.Column("manual", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_fires_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("schedule_id", "fire_at", name=op.f("pk_schedule_fires")),
    )
    op.create_index("ix_schedule_fires_created", "schedule_fires", ["created_at"])
    op.create_table(
        "leases",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("term", sa.BigInteger(), server_default=sa.text("1"), nullable=False),
        _at("acquired_at"),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "concurrency_limits",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("max_running", sa.BigInteger(), nullable=True),
        sa.Column("rate_count", sa.BigInteger(), nullable=True),
        sa.Column("rate_period_seconds", sa.Float(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=True),
        _at("updated_at"),
        sa.CheckConstraint(
            "max_running IS NULL OR max_running > 0", name=op.f("ck_concurrency_limits_max")
        ),
        sa.CheckConstraint(
            "(rate_count IS NULL) = (rate_period_seconds IS NULL) "
            "AND (rate_count IS NULL OR (rate_count > 0 AND rate_period_seconds > 0))",
            name=op.f("ck_concurrency_limits_rate"),
        ),
        sa.CheckConstraint(
            "source IN ('code', 'api', 'policy')", name=op.f("ck_concurrency_limits_source")
        ),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_concurrency_limits")),
    )
    op.create_table(
        "throttles",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("tat", TZ, nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_throttles")),
    )
    op.create_table(
        "parked_jobs",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("priority", sa.BigInteger(), nullable=False),
        sa.Column("queued_at", TZ, nullable=False),
        sa.Column("wake_at", TZ, nullable=True),
        _at("parked_at"),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_parked_jobs_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_parked_jobs")),
    )
    op.create_index(
        "ix_parked_jobs_scope", "parked_jobs", ["scope", "priority", "queued_at", "job_id"]
    )
    op.create_index(
        "ix_parked_jobs_wake",
        "parked_jobs",
        ["wake_at"],
        postgresql_where=sa.text("wake_at IS NOT NULL"),
    )
    op.create_table(
        "paused_queues",
        sa.Column("queue", sa.Text(), nullable=False),
        sa.Column("paused_by", sa.Text(), nullable=True),
        _at("paused_at"),
        sa.PrimaryKeyConstraint("queue", name=op.f("pk_paused_queues")),
    )
    op.add_column("jobs", sa.Column("schedule_id", sa.UUID(), nullable=True))
    op.add_column("jobs", sa.Column("fire_at", TZ, nullable=True))
    op.add_column("jobs", sa.Column("concurrency_key", sa.Text(), nullable=True))
    # The tenants' maxRunningJobs, now enforced when jobs start (the latest policy version).
    op.execute(
        """
        INSERT INTO concurrency_limits (scope, max_running, source, updated_by)
        SELECT 'tenant:' || p.tenant_id, CAST(p.document ->> 'maxRunningJobs' AS bigint),
               'policy', 'migration 0006'
        FROM policies p
        WHERE p.version = (SELECT max(version) FROM policies q WHERE q.tenant_id = p.tenant_id)
          AND jsonb_typeof(p.document -> 'maxRunningJobs') = 'number'
        """
    )


def downgrade() -> None:
    op.drop_column("jobs", "concurrency_key")
    op.drop_column("jobs", "fire_at")
    op.drop_column("jobs", "schedule_id")
    op.drop_table("paused_queues")
    op.drop_index("ix_parked_jobs_wake", table_name="parked_jobs")
    op.drop_index("ix_parked_jobs_scope", table_name="parked_jobs")
    op.drop_table("parked_jobs")
    op.drop_table("throttles")
    op.drop_table("concurrency_limits")
    op.drop_table("leases")
    op.drop_index("ix_schedule_fires_created", table_name="schedule_fires")
    op.drop_table("schedule_fires")
    op.drop_index("ix_schedules_due", table_name="schedules")
    op.drop_table("schedules")
