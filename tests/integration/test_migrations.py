"""Every migration goes down as cleanly as it goes up, on a fresh database."""

from __future__ import annotations

from app.db import migrate
from app.db.engine import ensure_database
from tests import support

TABLES = """SELECT array_agg(tablename::text ORDER BY tablename) AS names
            FROM pg_tables WHERE schemaname = 'public'"""


async def test_upgrade_to_head_downgrade_to_base_and_upgrade_again() -> None:
    name = f"cvtest_{support.RUN_ID}_updown"
    url = support.pg_url(name)
    await ensure_database(url)
    env = support.Env(database=name, prefix="unused")
    try:
        await migrate.upgrade(url)
        head = (await env.sql(TABLES))[0]["names"]
        assert {"jobs", "job_attempts", "job_events", "api_keys", "audit_log"} <= set(head)

        await migrate.downgrade(url, "base")
        assert (await env.sql(TABLES))[0]["names"] == ["alembic_version"]
        assert (await env.sql("SELECT count(*) AS n FROM alembic_version"))[0]["n"] == 0
        functions = await env.sql(
            "SELECT count(*) AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public'"
        )
        assert functions[0]["n"] == 0  # triggers' functions went with their tables

        await migrate.upgrade(url)
        assert (await env.sql(TABLES))[0]["names"] == head
    finally:
        await support.drop_database(name)
