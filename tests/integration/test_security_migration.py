"""Migrations 0002 (on a database holding pre-tenant keys and jobs) and 0003: upgrade,
downgrade, upgrade."""

from __future__ import annotations

import hashlib
import uuid

import asyncpg

from conveyor.db import migrate
from conveyor.db.engine import create_engine, ensure_database
from conveyor.domain.models import DEFAULT_TENANT_ID
from conveyor.services.auth import Authenticator
from tests import support
from tests.integration import security_support as sec


async def test_0002_moves_keys_to_the_default_tenant_and_downgrades_cleanly() -> None:
    name = f"cvtest_{support.RUN_ID}_mig"
    url = support.pg_url(name)
    await ensure_database(url)
    try:
        await migrate.upgrade(url, "0001")
        conn = await asyncpg.connect(support.pg_url(name, "postgresql"))
        admin_id, user_id = uuid.uuid4(), uuid.uuid4()
        try:
            for key_id, key_name, lookup, admin in (
                (admin_id, "root", "aaaa", True),
                (user_id, "alice", "bbbb", False),
            ):
                await conn.execute(
                    "INSERT INTO api_keys (id, name, lookup, secret_hash, is_admin) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    key_id,
                    key_name,
                    lookup,
                    hashlib.sha256(f"secret-{key_name}".encode()).digest(),
                    admin,
                )
            await conn.execute(
                "INSERT INTO jobs (id, kind, queue, status, payload, max_attempts, "
                "timeout_seconds, backoff_base_seconds, backoff_cap_seconds, owner_id) "
                "VALUES ($1, 'demo.noop', 'default', 'QUEUED', '{}', 3, 60, 1, 300, $2)",
                uuid.uuid4(),
                user_id,
            )

            await migrate.upgrade(url)
            rows = await conn.fetch(
                "SELECT name, tenant_id, role, hash_scheme FROM api_keys ORDER BY name"
            )
            assert [tuple(r) for r in rows] == [
                ("alice", DEFAULT_TENANT_ID, "submitter", "sha256"),
                ("root", DEFAULT_TENANT_ID, "admin", "sha256"),
            ]
            # The old keys still work, and move to the keyed hash on first use.
            engine = create_engine(url, pool_size=1)
            try:
                auth = Authenticator(engine, cache_seconds=0, secret_key=support.SECRET_KEY)
                alice = await auth.authenticate("Bearer cvk_bbbb_secret-alice")
                assert (alice.role, alice.tenant_id) == ("submitter", DEFAULT_TENANT_ID)
                root = await auth.authenticate("Bearer cvk_aaaa_secret-root")
                assert root.is_admin
            finally:
                await engine.dispose()
            schemes = await conn.fetch("SELECT DISTINCT hash_scheme FROM api_keys")
            assert [r["hash_scheme"] for r in schemes] == ["hmac"]
            await conn.execute("INSERT INTO audit_log (actor_name, action) VALUES ('t', 'x')")

            await migrate.downgrade(url, "0001")
            tables = {
                r["tablename"]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            }
            assert not tables & {"tenants", "policies", "policy_decisions", "audit_log"}
            keys = await conn.fetch("SELECT name, is_admin, revoked_at FROM api_keys ORDER BY name")
            # Re-hashed keys cannot go back to plain SHA-256: they are revoked, not left broken.
            assert [(r["name"], r["is_admin"], r["revoked_at"] is not None) for r in keys] == [
                ("alice", False, True),
                ("root", True, True),
            ]
            assert (await conn.fetchval("SELECT count(*) FROM jobs")) == 1

            await migrate.upgrade(url)
            assert (await conn.fetchval("SELECT count(*) FROM tenants")) == 1
        finally:
            await conn.close()
    finally:
        await support.drop_database(name)


async def test_0003_keeps_the_logs_append_only_for_replicas_and_the_application_role() -> None:
    name = f"cvtest_{support.RUN_ID}_mig3"
    url = support.pg_url(name)
    await ensure_database(url)
    try:
        # docker-compose.yml's order: the application role and its default privileges exist
        # before the first migration creates any table.
        async with sec.app_role(name) as role:
            sec.grant_app_privileges(name, role)
            await migrate.upgrade(url, "0002")
            conn = await asyncpg.connect(support.pg_url(name, "postgresql"))
            try:

                async def modes() -> set[str]:
                    rows = await conn.fetch(
                        "SELECT tgenabled FROM pg_trigger "
                        "WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal"
                    )
                    return {r["tgenabled"].decode() for r in rows}

                async def may(table: str, privilege: str) -> bool:
                    return bool(
                        await conn.fetchval(
                            "SELECT has_table_privilege($1, $2, $3)", role, table, privilege
                        )
                    )

                assert await modes() == {"O"}  # origin: skipped in replica mode
                assert await may("audit_log", "UPDATE")  # the default privileges gave it
                await migrate.upgrade(url)
                assert await modes() == {"A"}  # always
                for table in ("audit_log", "policy_decisions"):
                    assert await may(table, "INSERT")
                    assert await may(table, "SELECT")
                    assert not await may(table, "UPDATE")
                    assert not await may(table, "DELETE")
                    assert not await may(table, "TRUNCATE")
                assert await may("jobs", "UPDATE")
                await migrate.downgrade(url, "0002")
                assert await modes() == {"O"}
                await migrate.upgrade(url)
                assert await modes() == {"A"}
            finally:
                await conn.close()
    finally:
        await support.drop_database(name)
