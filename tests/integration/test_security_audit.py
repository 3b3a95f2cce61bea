"""The audit log: every change recorded with its actor and request, append-only in PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from conveyor.main import create_app
from tests import support
from tests.integration import security_support as sec
from tests.integration.conftest import Api
from tests.support import submit

RETRY_ALL = "mutation { retryJobs(filter: {status: [CANCELLED]}) { count } }"
AUDIT = """query($f: AuditLogFilter, $after: String, $first: Int!) {
  auditLog(filter: $f, first: $first, after: $after) {
    edges { cursor node { actorId actorName action target before after requestId clientAddress } }
    pageInfo { hasNextPage endCursor } } }"""


async def _dispatched(env: support.Env, job_id: str) -> None:
    for _ in range(200):
        rows = await env.sql("SELECT dispatched_at FROM jobs WHERE id = $1::uuid", job_id)
        if rows[0]["dispatched_at"] is not None:
            return
        await asyncio.sleep(0.01)


async def test_every_change_is_audited_with_actor_and_request(api: Api, env: support.Env) -> None:
    team = await sec.team(api, "acme")
    response = await team.operator.http.post(
        "/graphql",
        json={
            "query": 'mutation { submitJob(input: {kind: "demo.sleep", payload: {}}) '
            "{ ... on Job { id } } }"
        },
        headers={"X-Request-ID": "req-from-the-client-0001"},
    )
    job_id = response.json()["data"]["submitJob"]["id"]
    assert response.headers["x-request-id"] == "req-from-the-client-0001"
    await team.operator("mutation($id: ID!) { cancelJob(id: $id) { __typename } }", {"id": job_id})
    await team.operator("mutation($id: ID!) { retryJob(id: $id) { __typename } }", {"id": job_id})
    # Bulk operations skip rows locked by the dispatcher's confirmation (SKIP LOCKED): let it
    # confirm the retried job's message first, so the count is deterministic.
    await _dispatched(env, job_id)
    await team.operator('mutation { cancelJobs(filter: {kind: ["demo.sleep"]}) { count } }')
    await team.operator("mutation { retryJobs(filter: {status: [CANCELLED]}) { count } }")
    made = await team.admin(
        'mutation { createApiKey(name: "ci", role: VIEWER) { '
        "... on CreatedApiKey { apiKey { id } } } }"
    )
    key_id = made["createApiKey"]["apiKey"]["id"]
    await team.admin("mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }", {"id": key_id})
    await team.admin("mutation { setPolicy(input: {maxWaitingJobs: 100}) { __typename } }")
    await team.admin("mutation { createToken(minutes: 3) { __typename } }")

    page = (await team.admin(AUDIT, {"first": 50}))["auditLog"]
    entries = [e["node"] for e in page["edges"]]
    assert [e["action"] for e in reversed(entries)] == [
        # The tenant and its five keys, made through the CLI's functions (no actor).
        "tenant.create",
        *["key.create"] * 5,
        "job.submit",
        "job.cancel",
        "job.retry",
        "jobs.cancel",
        "jobs.retry",
        "key.create",
        "key.revoke",
        "policy.update",
        "token.create",
    ]
    by_action = {e["action"]: e for e in entries}
    submit_entry = by_action["job.submit"]
    assert submit_entry["actorName"] == "acme-operator"
    assert submit_entry["target"] == f"job:{job_id}"
    assert submit_entry["after"] == {"kind": "demo.sleep", "status": "QUEUED"}
    assert submit_entry["requestId"] == "req-from-the-client-0001"
    assert submit_entry["clientAddress"]
    assert by_action["job.cancel"]["before"] == {"status": "QUEUED"}
    assert by_action["job.cancel"]["after"]["status"] == "CANCELLED"
    assert by_action["jobs.retry"]["after"]["count"] == 1
    assert by_action["key.revoke"]["target"] == f"key:{key_id}"
    assert by_action["policy.update"]["before"]["version"] == 0
    assert by_action["policy.update"]["after"]["maxWaitingJobs"] == 100
    # Filters: an exact action, a prefix, and keyset pages.
    jobs_only = (await team.admin(AUDIT, {"first": 50, "f": {"action": "job."}}))["auditLog"]
    assert {e["node"]["action"] for e in jobs_only["edges"]} == {
        "job.submit",
        "job.cancel",
        "job.retry",
    }
    seen, after = [], None
    while True:
        p = (await team.admin(AUDIT, {"first": 4, "after": after}))["auditLog"]
        seen += [e["cursor"] for e in p["edges"]]
        if not p["pageInfo"]["hasNextPage"]:
            break
        after = p["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 15


async def test_denied_requests_change_nothing_and_audit_nothing(api: Api, env: support.Env) -> None:
    team = await sec.team(api, "acme")
    await team.admin("mutation { setPolicy(input: {maxWaitingJobs: 1}) { __typename } }")
    await submit(team.operator, "demo.noop", {})
    await submit(team.operator, "demo.noop", {})  # denied
    rows = await env.sql("SELECT action FROM audit_log WHERE action LIKE 'job.%'")
    assert [r["action"] for r in rows] == ["job.submit"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor_name = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ],
)
async def test_the_audit_table_rejects_update_and_delete(
    api: Api, env: support.Env, statement: str
) -> None:
    await sec.team(api, "acme")
    before = await env.sql("SELECT count(*) AS n, max(actor_name) AS who FROM audit_log")
    assert before[0]["n"] == 6
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await env.sql(statement)
    assert await env.sql("SELECT count(*) AS n, max(actor_name) AS who FROM audit_log") == before


async def test_replica_mode_does_not_bypass_the_audit_triggers(api: Api, env: support.Env) -> None:
    await sec.team(api, "acme")
    conn = await asyncpg.connect(support.pg_url(env.database, "postgresql"))
    try:
        # What logical-replication tools and `pg_restore --disable-triggers` set: triggers in
        # the default mode stop firing; those enabled ALWAYS (migration 0003) do not.
        await conn.execute("SET session_replication_role = replica")
        for statement in ("UPDATE audit_log SET actor_name = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
    finally:
        await conn.close()
    assert (await env.sql("SELECT count(*) AS n FROM audit_log"))[0]["n"] == 6


async def test_the_application_role_appends_to_the_logs_and_can_change_nothing(
    api: Api, env: support.Env
) -> None:
    async with sec.app_role(env.database) as role:
        sec.grant_app_privileges(env.database, role)
        # The whole API runs as that role: keys, submits, a policy, bulk retries, the logs.
        url = f"postgresql+asyncpg://{role}@{support.PG_HOST}:{support.PG_PORT}/{env.database}"
        settings = api.settings.model_copy(update={"database_url": url})
        app = create_app(settings)
        async with support.started(app) as running:
            as_app = Api(settings, httpx.ASGITransport(app=running), [])
            admin = as_app.client(await as_app.key("root", admin=True))
            job = await submit(admin, "demo.noop", {})
            await admin("mutation { setPolicy(input: {maxWaitingJobs: 10}) { __typename } }")
            await admin("mutation { cancelJobs(filter: {status: [QUEUED]}) { count } }")
            assert (await admin(RETRY_ALL))["retryJobs"]["count"] == 1
            page = (await admin(AUDIT, {"first": 50}))["auditLog"]["edges"]
            assert {e["node"]["action"] for e in page} >= {"job.submit", "jobs.retry"}
            for c in as_app.clients:
                await c.aclose()
        conn = await asyncpg.connect(
            f"postgresql://{role}@{support.PG_HOST}:{support.PG_PORT}/{env.database}"
        )
        try:
            assert await conn.fetchval("SELECT count(*) FROM policy_decisions") == 2
            for statement in (
                "UPDATE audit_log SET actor_name = 'x'",
                "DELETE FROM audit_log",
                "TRUNCATE audit_log",
                "UPDATE policy_decisions SET decision = 'deny'",
                "DELETE FROM policy_decisions",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                    await conn.execute(statement)
            # Not the owner: it cannot take the triggers away, nor turn them off for a session.
            for statement in (
                "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete",
                "DROP TRIGGER audit_log_no_update_delete ON audit_log",
                "SET session_replication_role = replica",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
            assert await conn.fetchval("SELECT 1 FROM jobs WHERE id = $1::uuid", job["id"])
        finally:
            await conn.close()
