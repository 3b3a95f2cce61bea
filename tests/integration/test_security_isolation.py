"""No query or mutation returns or changes another tenant's data (subscriptions: tests/e2e).

Two tenants, `acme` and `globex`, each with a key per role. Every field of the schema is
exercised from acme against globex's data.
"""

from __future__ import annotations

from tests import support
from tests.integration import security_support as sec
from tests.integration.conftest import Api
from tests.support import JOB, submit

CANCEL = "mutation($id: ID!) { cancelJob(id: $id) { __typename } }"
RETRY = "mutation($id: ID!) { retryJob(id: $id) { __typename } }"


async def _fail(env: support.Env, job_id: str) -> None:
    await env.sql(
        "UPDATE jobs SET status = 'FAILED', finished_at = now() WHERE id = $1::uuid", job_id
    )


async def test_reads_never_cross_tenants(api: Api, env: support.Env) -> None:
    acme = await sec.team(api, "acme")
    globex = await sec.team(api, "globex")
    theirs = await submit(globex.submitter, "demo.sleep", {})
    ours = await submit(acme.submitter, "demo.sleep", {})

    for client in (acme.admin, acme.operator, acme.viewer, acme.submitter):
        assert (await client(JOB, {"id": theirs["id"]}))["job"] is None
        listed = (await client("{ jobs { totalCount edges { node { id } } } }"))["jobs"]
        assert [e["node"]["id"] for e in listed["edges"]] == [ours["id"]]
        assert listed["totalCount"] == 1
        queues = {q["queue"]: q for q in (await client("{ queues { queue waiting } }"))["queues"]}
        assert queues["default"]["waiting"] == 1
        me = (await client("{ me { tenantId } }"))["me"]
        assert me["tenantId"] == str(acme.tenant_id)
    # Job kinds are the deployment's, not a tenant's: the same list for everyone.
    kinds_q = "{ jobKinds { name queue } }"
    everyone = (await globex.admin(kinds_q))["jobKinds"]
    assert {k["name"] for k in everyone} >= {"demo.noop", "demo.sleep"}
    for client in (acme.admin, acme.operator, acme.viewer, acme.submitter):
        assert (await client(kinds_q))["jobKinds"] == everyone
    # Admins of globex see globex's job, never acme's.
    listed = (await globex.admin("{ jobs { edges { node { id } } } }"))["jobs"]["edges"]
    assert [e["node"]["id"] for e in listed] == [theirs["id"]]

    # Workers are shared; the running jobs they report are counted per tenant.
    await env.sql(
        "INSERT INTO workers (id, host, pid, queues, concurrency) "
        "VALUES ('w1', 'h', 1, ARRAY['default'], 4)"
    )
    await env.sql(
        "UPDATE jobs SET status = 'RUNNING', attempt = 1 WHERE id = $1::uuid", theirs["id"]
    )
    await env.sql(
        "INSERT INTO job_attempts (job_id, number, status, worker_id) "
        "VALUES ($1::uuid, 1, 'RUNNING', 'w1')",
        theirs["id"],
    )
    workers_q = "{ workers { id runningJobs } }"
    assert (await acme.admin(workers_q))["workers"] == [{"id": "w1", "runningJobs": 0}]
    assert (await globex.admin(workers_q))["workers"] == [{"id": "w1", "runningJobs": 1}]


async def test_writes_never_cross_tenants(api: Api, env: support.Env) -> None:
    acme = await sec.team(api, "acme")
    globex = await sec.team(api, "globex")
    theirs = await submit(globex.submitter, "demo.sleep", {})
    failed = await submit(globex.submitter, "demo.sleep", {"steps": 2})
    await _fail(env, failed["id"])

    for client in (acme.admin, acme.operator):
        assert (await client(CANCEL, {"id": theirs["id"]}))["cancelJob"]["__typename"] == "NotFound"
        assert (await client(RETRY, {"id": failed["id"]}))["retryJob"]["__typename"] == "NotFound"
        bulk = await client(
            "mutation { c: cancelJobs(filter: {}) { count } "
            "r: retryJobs(filter: {status: [FAILED]}) { count } }"
        )
        assert bulk == {"c": {"count": 0}, "r": {"count": 0}}
    statuses = {
        r["id"]: r["status"]
        for r in await env.sql("SELECT CAST(id AS text) AS id, status FROM jobs")
    }
    assert statuses == {theirs["id"]: "QUEUED", failed["id"]: "FAILED"}

    # An idempotency key used in another tenant is not a conflict and returns a new job.
    await submit(globex.submitter, "demo.sleep", {}, idempotencyKey="k1")
    mine = await submit(acme.submitter, "demo.sleep", {"steps": 3}, idempotencyKey="k1")
    assert mine["__typename"] == "Job"
    assert not mine["deduplicated"]
    batch = await acme.operator(
        'mutation { submitJobs(inputs: [{kind: "demo.noop", payload: {}}]) { ... on Job { id } } }'
    )
    owner = await env.sql(
        "SELECT k.tenant_id FROM jobs j JOIN api_keys k ON k.id = j.owner_id WHERE j.id = $1::uuid",
        batch["submitJobs"][0]["id"],
    )
    assert owner[0]["tenant_id"] == acme.tenant_id


async def test_admin_fields_never_cross_tenants(api: Api, env: support.Env) -> None:
    acme = await sec.team(api, "acme")
    globex = await sec.team(api, "globex")
    theirs = await submit(globex.submitter, "demo.sleep", {})
    await globex.admin(
        "mutation { setPolicy(input: {maxWaitingJobs: 5}) { ... on Policy { version } } }"
    )

    keys = (await acme.admin("{ apiKeys { id name } }"))["apiKeys"]
    assert {k["name"] for k in keys} == {
        "acme-admin",
        "acme-operator",
        "acme-submitter",
        "acme-submitter2",
        "acme-viewer",
    }
    assert (await acme.admin("{ policy { version maxWaitingJobs } }"))["policy"] == {
        "version": 0,
        "maxWaitingJobs": None,
    }
    decisions = await acme.admin("{ policyDecisions { edges { node { principalName } } } }")
    assert decisions["policyDecisions"]["edges"] == []
    audit = await acme.admin("{ auditLog(first: 200) { edges { node { actorName target } } } }")
    for edge in audit["auditLog"]["edges"]:
        assert not edge["node"]["actorName"].startswith("globex")
        assert edge["node"]["target"] != f"job:{theirs['id']}"

    globex_key = await env.sql(
        "SELECT CAST(id AS text) AS id FROM api_keys WHERE name = 'globex-viewer'"
    )
    revoke = "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }"
    assert (await acme.admin(revoke, {"id": globex_key[0]["id"]}))["revokeApiKey"] == {
        "__typename": "NotFound"
    }
    assert (await env.sql("SELECT revoked_at FROM api_keys WHERE name = 'globex-viewer'"))[0][
        "revoked_at"
    ] is None
    create = """mutation($t: ID) { createApiKey(name: "x", role: ADMIN, tenantId: $t) {
        __typename } }"""
    errors = await sec.errors_of(acme.admin, create, {"t": str(globex.tenant_id)})
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    token = "mutation($j: ID) { createToken(jobId: $j) { __typename } }"
    assert (await acme.admin(token, {"j": theirs["id"]}))["createToken"] == {
        "__typename": "NotFound"
    }
    for query in ("{ tenants { id } }", 'mutation { createTenant(name: "evil") { __typename } }'):
        assert (await sec.errors_of(acme.admin, query))[0]["extensions"]["code"] == "FORBIDDEN"


async def test_superusers_manage_tenants(api: Api) -> None:
    root = api.client(await sec.key(api, "root", sec.Role.ADMIN, superuser=True))
    made = await root('mutation { createTenant(name: "initech") { ... on Tenant { id name } } }')
    tenant_id = made["createTenant"]["id"]
    again = await root('mutation { createTenant(name: "initech") { __typename } }')
    assert again["createTenant"]["__typename"] == "InvalidInput"
    names = {t["name"] for t in (await root("{ tenants { name } }"))["tenants"]}
    assert names == {"default", "initech"}
    created = await root(
        """mutation($t: ID) { createApiKey(name: "boss", role: ADMIN, tenantId: $t) {
            ... on CreatedApiKey { key apiKey { tenantId role } } } }""",
        {"t": tenant_id},
    )
    # A tenant that does not exist is the caller's mistake: a typed error, nothing stored.
    unknown = await root(
        """mutation($t: ID) { createApiKey(name: "x", role: ADMIN, tenantId: $t) {
            __typename ... on InvalidInput { fieldErrors { path message } } } }""",
        {"t": "00000000-0000-0000-0000-00000000dead"},
    )
    assert unknown["createApiKey"] == {
        "__typename": "InvalidInput",
        "fieldErrors": [{"path": ["tenantId"], "message": "no such tenant"}],
    }
    boss = api.client(created["createApiKey"]["key"])
    assert (await boss("{ me { tenantId role isSuperuser } }"))["me"] == {
        "tenantId": tenant_id,
        "role": "ADMIN",
        "isSuperuser": False,
    }
    # The superuser's own jobs view is its tenant: it does not see initech's jobs.
    job = await submit(boss, "demo.noop", {})
    assert (await root(JOB, {"id": job["id"]}))["job"] is None
