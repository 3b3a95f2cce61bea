"""Admission policy: data edited over GraphQL, every decision recorded and typed."""

from __future__ import annotations

from typing import Any

from tests import support
from tests.integration import security_support as sec
from tests.integration.conftest import Api

SET = """mutation($p: PolicyInput!, $v: Int) { setPolicy(input: $p, expectedVersion: $v) {
    __typename ... on Policy { version maxWaitingJobs roleKinds { role kinds } }
    ... on InvalidInput { fieldErrors { path message } } } }"""
DENIED = """mutation($input: SubmitJobInput!) { submitJob(input: $input) { __typename
    ... on Job { id } ... on PolicyDenied { message code rule retryAfterSeconds } } }"""
DECISIONS = """query($f: PolicyDecisionFilter, $after: String) {
  policyDecisions(filter: $f, first: 2, after: $after) {
    edges { cursor node {
        action jobKind jobId decision rule reason policyVersion principalName requestId } }
    pageInfo { hasNextPage endCursor } } }"""


async def _submit(
    client: support.GraphQLClient, kind: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return (await client(DENIED, {"input": {"kind": kind, "payload": payload}}))["submitJob"]  # type: ignore[no-any-return]


async def _all_decisions(
    client: support.GraphQLClient, flt: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await client(DECISIONS, {"f": flt, "after": after}))["policyDecisions"]
        found += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def test_role_kinds_and_payload_size_are_policy_data(api: Api, env: support.Env) -> None:
    team = await sec.team(api, "acme")
    stored = await team.admin(
        SET,
        {
            "p": {
                "roleKinds": [{"role": "SUBMITTER", "kinds": ["demo.*"]}],
                "maxPayloadBytes": 1024,
            },
            "v": 0,
        },
    )
    assert stored["setPolicy"]["version"] == 1
    assert {"role": "SUBMITTER", "kinds": ["demo.*"]} in stored["setPolicy"]["roleKinds"]

    assert (await _submit(team.submitter, "demo.noop", {}))["__typename"] == "Job"
    denied = await _submit(team.submitter, "compute.primes", {"limit": 10})
    assert denied == {
        "__typename": "PolicyDenied",
        "message": "role submitter may not submit compute.primes",
        "code": "POLICY_DENIED",
        "rule": "role.kinds",
        "retryAfterSeconds": None,
    }
    assert (await _submit(team.operator, "compute.primes", {"limit": 10}))["__typename"] == "Job"
    big = await _submit(team.operator, "demo.sleep", {"steps": 1, "stepSeconds": 0.0} | {})
    assert big["__typename"] == "Job"
    # Payload size counts the validated payload; a kind with a big input is refused.
    await team.admin(SET, {"p": {"maxPayloadBytes": 10}})
    assert (await _submit(team.operator, "demo.sleep", {"steps": 1}))["rule"] == "payload.maxBytes"
    # Nothing denied was stored.
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 3

    decisions = await _all_decisions(team.admin)
    assert [(d["decision"], d["rule"], d["policyVersion"]) for d in decisions] == [
        ("deny", "payload.maxBytes", 2),
        ("allow", "allow", 1),
        ("allow", "allow", 1),
        ("deny", "role.kinds", 1),
        ("allow", "allow", 1),
    ]
    assert all(d["requestId"] for d in decisions)
    allowed = [d for d in decisions if d["decision"] == "allow"]
    assert all(d["jobId"] for d in allowed)
    only_denials = await _all_decisions(team.admin, {"decision": "deny"})
    assert {d["rule"] for d in only_denials} == {"role.kinds", "payload.maxBytes"}
    by_submitter = await _all_decisions(team.admin, {"jobKind": "compute.primes"})
    assert [d["principalName"] for d in by_submitter] == ["acme-operator", "acme-submitter"]


async def test_viewer_submits_are_recorded_denials(api: Api, env: support.Env) -> None:
    team = await sec.team(api, "acme")
    # Even a policy that lists the viewer cannot make it write.
    await team.admin(SET, {"p": {"roleKinds": [{"role": "VIEWER", "kinds": ["*"]}]}})
    denied = await _submit(team.viewer, "demo.noop", {})
    assert denied["rule"] == "role.readOnly"
    rows = await env.sql("SELECT principal_name, decision, rule FROM policy_decisions")
    assert [tuple(r) for r in rows] == [("acme-viewer", "deny", "role.readOnly")]


async def test_tenant_waiting_limit_counts_batches_and_retries(api: Api, env: support.Env) -> None:
    team = await sec.team(api, "acme")
    await team.admin(SET, {"p": {"maxWaitingJobs": 2}})
    batch = await team.submitter(
        """mutation { submitJobs(inputs: [{kind: "demo.noop", payload: {}},
            {kind: "demo.noop", payload: {}}, {kind: "demo.noop", payload: {}}]) {
            __typename ... on PolicyDenied { rule retryAfterSeconds } } }"""
    )
    assert [r["__typename"] for r in batch["submitJobs"]] == ["Job", "Job", "PolicyDenied"]
    assert batch["submitJobs"][2] == {
        "__typename": "PolicyDenied",
        "rule": "tenant.maxWaitingJobs",
        "retryAfterSeconds": 5.0,
    }
    # The limit is per tenant: another key of the tenant is refused too.
    assert (await _submit(team.operator, "demo.noop", {}))["rule"] == "tenant.maxWaitingJobs"
    # A retry puts a job back in the queue: it passes the same policy.
    jobs = await env.sql("SELECT CAST(id AS text) AS id FROM jobs")
    await env.sql("UPDATE jobs SET status = 'FAILED' WHERE id = $1::uuid", jobs[0]["id"])
    await _submit(team.operator, "demo.noop", {})  # takes the freed place
    retry = await team.operator(
        "mutation($id: ID!) { retryJob(id: $id) { __typename ... on PolicyDenied { rule } } }",
        {"id": jobs[0]["id"]},
    )
    assert retry["retryJob"] == {"__typename": "PolicyDenied", "rule": "tenant.maxWaitingJobs"}
    assert (await env.sql("SELECT status FROM jobs WHERE id = $1::uuid", jobs[0]["id"]))[0][
        "status"
    ] == "FAILED"
    retries = await env.sql("SELECT job_id, decision FROM policy_decisions WHERE action = 'retry'")
    assert [(str(r["job_id"]), r["decision"]) for r in retries] == [(jobs[0]["id"], "deny")]


async def test_running_limit_is_enforced_when_jobs_start_not_at_submit(
    api: Api, env: support.Env
) -> None:
    """ADR-0022: maxRunningJobs no longer refuses submits; it becomes the tenant's run-time
    limit (tests/e2e/test_flow_control.py shows it holding jobs QUEUED)."""
    team = await sec.team(api, "acme")
    await team.admin(SET, {"p": {"maxRunningJobs": 1}})
    job = await _submit(team.operator, "demo.noop", {})
    await env.sql("UPDATE jobs SET status = 'RUNNING' WHERE id = $1::uuid", job["id"])
    assert (await _submit(team.operator, "demo.noop", {}))["__typename"] == "Job"
    tenant = (await env.sql("SELECT id FROM tenants WHERE name = 'acme'"))[0]["id"]
    tenants = (
        "SELECT scope, max_running, source FROM concurrency_limits WHERE scope LIKE 'tenant:%'"
    )
    assert [tuple(r) for r in await env.sql(tenants)] == [(f"tenant:{tenant}", 1, "policy")]
    await team.admin(SET, {"p": {"maxRunningJobs": None}})
    assert await env.sql(tenants) == []


async def test_submit_rate_is_a_token_bucket_per_principal(api: Api) -> None:
    team = await sec.team(api, "acme")
    await team.admin(SET, {"p": {"submitRatePerSecond": 0.5, "submitBurst": 2}})
    results = [await _submit(team.submitter, "demo.noop", {}) for _ in range(3)]
    assert [r["__typename"] for r in results] == ["Job", "Job", "PolicyDenied"]
    assert results[2]["rule"] == "principal.submitRate"
    assert 0 < results[2]["retryAfterSeconds"] <= 2.0
    # Another principal has its own bucket.
    assert (await _submit(team.submitter2, "demo.noop", {}))["__typename"] == "Job"


async def test_invalid_policies_and_concurrent_edits_are_typed_errors(api: Api) -> None:
    team = await sec.team(api, "acme")
    bad = await team.admin(SET, {"p": {"maxWaitingJobs": -1, "submitRatePerSecond": 0}})
    assert bad["setPolicy"]["__typename"] == "InvalidInput"
    assert {tuple(e["path"]) for e in bad["setPolicy"]["fieldErrors"]} == {
        ("maxWaitingJobs",),
        ("submitRatePerSecond",),
    }
    assert (await team.admin(SET, {"p": {}, "v": 0}))["setPolicy"]["version"] == 1
    stale = await team.admin(SET, {"p": {}, "v": 0})
    assert stale["setPolicy"]["__typename"] == "Conflict"
    assert (await team.admin("{ policy { version } }"))["policy"]["version"] == 1


RETRY_ALL = "mutation { retryJobs(filter: {status: [CANCELLED]}) { count } }"


async def _cancelled_jobs(team: sec.Team, n: int) -> int:
    """Submit `n` more demo.noop jobs, then cancel every waiting job: how many were."""
    for _ in range(n):
        await _submit(team.operator, "demo.noop", {})
    cancel = "mutation { cancelJobs(filter: {status: [QUEUED]}) { count } }"
    return (await team.operator(cancel))["cancelJobs"]["count"]  # type: ignore[no-any-return]


async def test_bulk_retry_admits_each_job_up_to_the_waiting_limit(
    api: Api, env: support.Env
) -> None:
    team = await sec.team(api, "acme")
    assert await _cancelled_jobs(team, 5) == 5
    await team.admin(SET, {"p": {"maxWaitingJobs": 3}})
    assert (await team.operator(RETRY_ALL))["retryJobs"]["count"] == 3
    waiting = await env.sql("SELECT count(*) AS n FROM jobs WHERE status = 'QUEUED'")
    assert waiting[0]["n"] == 3
    retries = await _all_decisions(team.admin, {"action": "retry"})
    allowed = [d for d in retries if d["decision"] == "allow"]
    denied = [d for d in retries if d["decision"] == "deny"]
    # One row per admitted job, one per refused kind and rule (counting its jobs).
    assert len(allowed) == 3
    assert all(d["jobId"] and d["jobKind"] == "demo.noop" for d in allowed)
    assert len(denied) == 1
    assert denied[0]["rule"] == "tenant.maxWaitingJobs"
    assert denied[0]["reason"].endswith("(2 jobs)")
    assert denied[0]["jobId"] is None
    # The limit is reached: a second bulk retry admits nothing, and says so.
    assert (await team.operator(RETRY_ALL))["retryJobs"]["count"] == 0
    again = await _all_decisions(team.admin, {"action": "retry", "decision": "deny"})
    assert len(again) == 2


async def test_bulk_retry_pays_the_rate_limit_per_job_and_checks_payload_size(
    api: Api, env: support.Env
) -> None:
    team = await sec.team(api, "acme")
    await _submit(team.operator, "demo.sleep", {"steps": 1, "stepSeconds": 0.0})
    assert await _cancelled_jobs(team, 4) == 5
    # demo.sleep's payload is over the limit; demo.noop's `{}` is not.
    await team.admin(
        SET, {"p": {"maxPayloadBytes": 5, "submitRatePerSecond": 0.01, "submitBurst": 2}}
    )
    assert (await team.operator(RETRY_ALL))["retryJobs"]["count"] == 2
    denied = await _all_decisions(team.admin, {"action": "retry", "decision": "deny"})
    assert {d["rule"] for d in denied} == {"payload.maxBytes", "principal.submitRate"}
    payload = next(d for d in denied if d["rule"] == "payload.maxBytes")
    assert payload["jobKind"] == "demo.sleep"
    assert payload["jobId"]  # one job: its id is recorded
    assert "the limit is 5" in payload["reason"]


async def test_a_policy_another_process_stored_decides_the_very_next_submit(
    api: Api, env: support.Env
) -> None:
    """A submit is decided by the policy this process last read (no read per submit,
    ADR-0025), and written only if that policy is still the current one: a version stored
    elsewhere (another API process; here SQL) makes the statement write nothing, and the
    submit is decided again by the new version."""
    team = await sec.team(api, "acme")
    await team.admin(SET, {"p": {"roleKinds": [{"role": "SUBMITTER", "kinds": ["demo.*"]}]}})
    assert (await _submit(team.submitter, "demo.noop", {}))["__typename"] == "Job"
    assert (await _submit(team.submitter, "demo.noop", {}))["__typename"] == "Job"
    await env.sql(
        "INSERT INTO policies (tenant_id, version, document, created_by) "
        "SELECT tenant_id, 2, $1::jsonb, created_by FROM policies "
        "WHERE tenant_id = $2 AND version = 1",
        '{"roleKinds": {"submitter": ["compute.*"]}}',
        team.tenant_id,
    )
    denied = await _submit(team.submitter, "demo.noop", {})
    assert (denied["__typename"], denied["rule"]) == ("PolicyDenied", "role.kinds")
    decisions = await _all_decisions(team.admin)
    assert [(d["decision"], d["policyVersion"]) for d in decisions] == [
        ("deny", 2),
        ("allow", 1),
        ("allow", 1),
    ]
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 2
    # A limit on waiting jobs (which takes the tenant's lock) stored elsewhere holds at once.
    await env.sql(
        "INSERT INTO policies (tenant_id, version, document, created_by) "
        "SELECT tenant_id, 3, $1::jsonb, created_by FROM policies "
        "WHERE tenant_id = $2 AND version = 1",
        '{"roleKinds": {"submitter": ["demo.*"]}, "maxWaitingJobs": 2}',
        team.tenant_id,
    )
    full = await _submit(team.submitter, "demo.noop", {})
    assert (full["__typename"], full["rule"]) == ("PolicyDenied", "tenant.maxWaitingJobs")
    assert (await env.sql("SELECT count(*) AS n FROM jobs"))[0]["n"] == 2


async def test_a_reused_idempotency_key_records_its_decision_with_the_existing_job(
    api: Api, env: support.Env
) -> None:
    team = await sec.team(api, "acme")
    submit = """mutation($input: SubmitJobInput!) { submitJob(input: $input) {
        __typename ... on Job { id deduplicated } } }"""
    given = {"input": {"kind": "demo.noop", "payload": {}, "idempotencyKey": "order-7"}}
    first = (await team.submitter(submit, given))["submitJob"]
    again = (await team.submitter(submit, given))["submitJob"]
    assert (again["id"], again["deduplicated"]) == (first["id"], True)
    rows = await env.sql("SELECT decision, job_id::text AS job FROM policy_decisions")
    assert sorted((r["decision"], r["job"]) for r in rows) == [("allow", first["id"])] * 2
    audited = await env.sql("SELECT target FROM audit_log WHERE action = 'job.submit'")
    assert [r["target"] for r in audited] == [f"job:{first['id']}"]
