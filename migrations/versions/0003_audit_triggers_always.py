"""audit_log append-only in replica mode too; only the owner may change the logs

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00

Migration 0002's triggers fire in the default (`origin`) mode only: a session with
`session_replication_role = replica` (what logical-replication tools and `pg_restore
--disable-triggers` use) skipped them. `ENABLE ALWAYS` makes them fire in every mode; only the
table's owner (or a superuser) can still disable them, which is why the application must not
connect as the owner (README, Security; ADR-0014).

Deployments that hand privileges to the application role by default
(`ALTER DEFAULT PRIVILEGES ... GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES`, as
docker-compose.yml does) gave it UPDATE and DELETE on the logs too: they are revoked here from
every role but the owner, so the application role can only read and append them.

Downgrade puts the triggers back in `origin` mode; revoked privileges are not granted back.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERS = ("audit_log_no_update_delete", "audit_log_no_truncate")
LOGS = ("audit_log", "policy_decisions")


def upgrade() -> None:
    for trigger in TRIGGERS:
        op.execute(f"ALTER TABLE audit_log ENABLE ALWAYS TRIGGER {trigger}")
    for table in LOGS:
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC")
        op.execute(
            f"""
            DO $$
            DECLARE grantee regrole;
            BEGIN
                FOR grantee IN
                    SELECT DISTINCT a.grantee::regrole
                    FROM pg_class c, aclexplode(c.relacl) a
                    WHERE c.oid = '{table}'::regclass AND a.grantee <> 0
                      AND a.grantee <> c.relowner
                      AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
                LOOP
                    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM %s', grantee);
                END LOOP;
            END $$
            """
        )


def downgrade() -> None:
    for trigger in TRIGGERS:
        op.execute(f"ALTER TABLE audit_log ENABLE TRIGGER {trigger}")
