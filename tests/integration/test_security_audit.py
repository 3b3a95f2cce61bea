"""The audit log: every change recorded with its actor and request, append-only in PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests import support
from tests.integration import security_support as sec
from tests.integration.conftest import Api
from tests.support import submit

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
