"""tenants, roles, admission policy, policy decisions, append-only audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:00:00

Existing keys move to the `default` tenant: admin keys become role `admin`, the others
`submitter` (what they could do before: submit and manage their own jobs). Their SHA-256
secret hashes stay valid (`hash_scheme = 'sha256'`) and are re-hashed with HMAC on first use.

Downgrade keeps keys and jobs but loses tenants, policies, decisions and the audit log, and
turns every role but `admin` into a plain key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_TENANT = "00000000-0000-0000-0000-000000000001"
TZ = sa.DateTime(timezone=True)


def _now() -> sa.Column[object]:
    return sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        _now(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )
    op.execute(f"INSERT INTO tenants (id, name) VALUES ('{DEFAULT_TENANT}', 'default')")

    op.add_column("api_keys", sa.Column("tenant_id", sa.UUID(), nullable=True))
    op.add_column("api_keys", sa.Column("role", sa.String(length=16), nullable=True))
    op.add_column(
        "api_keys",
        sa.Column("is_superuser", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column(
        "api_keys",
        sa.Column(
            "hash_scheme", sa.String(length=16), server_default=sa.text("'hmac'"), nullable=False
        ),
    )
    op.add_column("api_keys", sa.Column("created_by", sa.UUID(), nullable=True))
    op.execute(
        f"UPDATE api_keys SET tenant_id = '{DEFAULT_TENANT}', hash_scheme = 'sha256', "
        "role = CASE WHEN is_admin THEN 'admin' ELSE 'submitter' END"
    )
    op.alter_column("api_keys", "tenant_id", nullable=False)
    op.alter_column("api_keys", "role", nullable=False)
    op.create_foreign_key(
        op.f("fk_api_keys_tenant_id_tenants"),
        "api_keys",
        "tenants",
        ["tenant_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_check_constraint(
        op.f("ck_api_keys_role"),
        "api_keys",
        "role IN ('admin', 'operator', 'submitter', 'viewer')",
    )
    op.create_check_constraint(
        op.f("ck_api_keys_hash_scheme"), "api_keys", "hash_scheme IN ('hmac', 'sha256')"
    )
    op.create_index(op.f("ix_api_keys_tenant_id"), "api_keys", ["tenant_id"])
    op.drop_column("api_keys", "is_admin")

    op.create_table(
        "policies",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        _now(),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_policies_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "version", name=op.f("pk_policies")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_policies_version")),
    )

    op.create_table(
        "policy_decisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("principal_id", sa.UUID(), nullable=False),
        sa.Column("principal_name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("job_kind", sa.String(length=200), nullable=True),
        sa.Column("job_id", sa.UUID(), nullable=True),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "decision IN ('allow', 'deny')", name=op.f("ck_policy_decisions_decision")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_decisions")),
    )
    op.create_index(
        "ix_policy_decisions_tenant", "policy_decisions", ["tenant_id", sa.text("id DESC")]
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("client_addr", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_tenant", "audit_log", ["tenant_id", sa.text("id DESC")])
    # Append-only in the database itself: whatever role the application connects as, rows can
    # be added but never changed or removed. Privileges are revoked too, for a deployment where
    # the application's role is not the table owner (see ADR-0014).
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    )
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC")


def downgrade() -> None:
    op.drop_table("audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_table("policy_decisions")
    op.drop_table("policies")
    op.add_column(
        "api_keys",
        sa.Column("is_admin", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    # Keys still hashed with SHA-256 keep working; HMAC-hashed ones cannot be converted back
    # (the secret is not stored) and are revoked rather than left unusable and active.
    op.execute(
        "UPDATE api_keys SET is_admin = (role = 'admin'), "
        "revoked_at = CASE WHEN hash_scheme = 'hmac' THEN coalesce(revoked_at, now()) "
        "ELSE revoked_at END"
    )
    op.drop_index(op.f("ix_api_keys_tenant_id"), table_name="api_keys")
    op.drop_constraint(op.f("ck_api_keys_hash_scheme"), "api_keys", type_="check")
    op.drop_constraint(op.f("ck_api_keys_role"), "api_keys", type_="check")
    op.drop_constraint(op.f("fk_api_keys_tenant_id_tenants"), "api_keys", type_="foreignkey")
    for column in ("created_by", "hash_scheme", "is_superuser", "role", "tenant_id"):
        op.drop_column("api_keys", column)
    op.drop_table("tenants")
