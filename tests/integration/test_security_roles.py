"""The role matrix, key lifecycle and read-only tokens (in-process API, real PostgreSQL/Redis)."""

from __future__ import annotations

import time

import pytest

from conveyor.domain.policy import Role
from conveyor.services import auth
from tests import support
from tests.integration import security_support as sec
from tests.integration.conftest import Api
from tests.support import JOB, submit

CANCEL = "mutation($id: ID!) { cancelJob(id: $id) { __typename ... on UserError { code } } }"
RETRY = "mutation($id: ID!) { retryJob(id: $id) { __typename ... on UserError { code } } }"
ADMIN_READS = (
    "{ apiKeys { id } }",
    "{ policy { version } }",
    "{ policyDecisions { edges { cursor } } }",
    "{ auditLog { edges { cursor } } }",
)
ADMIN_WRITES = (
    "mutation { setPolicy(input: {}) { __typename } }",
    'mutation { createApiKey(name: "n", role: VIEWER) { __typename } }',
    "mutation { createToken(minutes: 5) { __typename } }",
)


async def _failed_job(client: support.GraphQLClient, env: support.Env) -> str:
    job = await submit(client, "demo.sleep", {})
    await env.sql("UPDATE jobs SET status = 'FAILED' WHERE id = $1::uuid", job["id"])
    return str(job["id"])


@pytest.mark.parametrize(
    ("role", "submits", "own", "others", "admin"),
    [
        # role, may submit, may cancel/retry own, may cancel/retry others' jobs, admin fields
        ("admin", True, True, True, True),
        ("operator", True, True, True, False),
        ("submitter", True, True, False, False),
        ("viewer", False, False, False, False),
    ],
)
async def test_role_matrix(
    api: Api, env: support.Env, role: str, submits: bool, own: bool, others: bool, admin: bool
) -> None:
    team = await sec.team(api, "acme")
    client: support.GraphQLClient = getattr(team, role)
    other = await submit(team.submitter2, "demo.sleep", {})
    other_failed = await _failed_job(team.submitter2, env)

    result = await submit(client, "demo.sleep", {})
    if submits:
        assert result["__typename"] == "Job"
        mine, mine_failed = result["id"], await _failed_job(client, env)
        assert (await client(CANCEL, {"id": mine}))["cancelJob"]["__typename"] == "Job"
        assert (await client(RETRY, {"id": mine_failed}))["retryJob"]["__typename"] == "Job"
    else:
        assert result == {
            "__typename": "PolicyDenied",
            "message": result["message"],
            "code": "POLICY_DENIED",
        }

    cancel = await client.raw(CANCEL, {"id": other["id"]})
    retry = await client.raw(RETRY, {"id": other_failed})
    if others:
        assert cancel.json()["data"]["cancelJob"]["__typename"] == "Job"
        assert retry.json()["data"]["retryJob"]["__typename"] == "Job"
    elif role == "submitter":  # others' jobs are invisible to a submitter
        assert cancel.json()["data"]["cancelJob"]["code"] == "NOT_FOUND"
        assert retry.json()["data"]["retryJob"]["code"] == "NOT_FOUND"
    else:  # a viewer sees them but may not act: cancel is forbidden, retry a recorded denial
        assert cancel.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert retry.json()["data"]["retryJob"]["code"] == "POLICY_DENIED"
    assert (await client(JOB, {"id": other["id"]}))["job"] is None if role == "submitter" else True

    for query in ADMIN_READS + ADMIN_WRITES:
        body = (await client.raw(query)).json()
        if admin:
            assert "errors" not in body, (query, body)
        else:
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (query, body)


async def test_key_lifecycle_create_list_revoke(api: Api, env: support.Env) -> None:
    team = await sec.team(api, "acme")
    created = await team.admin(
        """mutation { createApiKey(name: "ci", role: OPERATOR, expiresInDays: 30) {
            ... on CreatedApiKey { key apiKey { id name role active expiresAt } } } }"""
    )
    made = created["createApiKey"]
    assert made["key"].startswith("cvk_")
    assert made["apiKey"]["role"] == "OPERATOR"
    assert made["apiKey"]["active"]
    ci = api.client(made["key"])
    assert (await ci("{ me { name role } }"))["me"] == {"name": "ci", "role": "OPERATOR"}
    # Listing never shows a secret: no field carries one, and the stored hash is keyed.
    listed = await team.admin("{ apiKeys { id name role active revokedAt } }")
    assert made["key"] not in str(listed)
    stored = await env.sql("SELECT secret_hash, hash_scheme FROM api_keys WHERE name = 'ci'")
    secret = made["key"].split("_", 2)[2]
    assert stored[0]["hash_scheme"] == "hmac"
    assert bytes(stored[0]["secret_hash"]) == auth.keyed_hash(
        api.settings.secret_key.get_secret_value(), secret
    )

    revoked = await team.admin(
        "mutation($id: ID!) { revokeApiKey(id: $id) { ... on ApiKey { active revokedAt } } }",
        {"id": made["apiKey"]["id"]},
    )
    assert revoked["revokeApiKey"]["active"] is False
    assert (await ci.raw("{ me { name } }")).status_code == 401

    # An expired key stops working.
    await env.sql(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE name = 'acme-viewer'"
    )
    assert (await team.viewer.raw("{ me { name } }")).status_code == 401


async def test_legacy_sha256_keys_work_and_are_rehashed(api: Api, env: support.Env) -> None:
    key = await api.key("old")
    secret = key.split("_", 2)[2]
    import hashlib

    await env.sql(
        "UPDATE api_keys SET secret_hash = $1, hash_scheme = 'sha256' WHERE name = 'old'",
        hashlib.sha256(secret.encode()).digest(),
    )
    assert (await api.client(key)("{ me { name } }"))["me"]["name"] == "old"
    assert (await env.sql("SELECT hash_scheme FROM api_keys WHERE name = 'old'"))[0][
        "hash_scheme"
    ] == "hmac"
    assert (await api.client(key)("{ me { name } }"))["me"]["name"] == "old"


async def test_tokens_are_read_only_scoped_and_die_with_their_key(
    api: Api, env: support.Env
) -> None:
    team = await sec.team(api, "acme")
    job = await submit(team.submitter, "demo.sleep", {})
    other = await submit(team.operator, "demo.sleep", {})
    minted = await team.submitter(
        "mutation($j: ID) { createToken(jobId: $j, minutes: 5) { "
        "... on Token { token scope expiresAt } } }",
        {"j": job["id"]},
    )
    token = minted["createToken"]["token"]
    assert minted["createToken"]["scope"] == f"job:{job['id']}"
    browser = api.client(token)
    assert (await browser(JOB, {"id": job["id"]}))["job"]["id"] == job["id"]
    assert (await browser(JOB, {"id": other["id"]}))["job"] is None
    assert (await browser("{ jobs { totalCount } }"))["jobs"]["totalCount"] == 1
    assert (await browser("{ me { role tokenScope } }"))["me"]["role"] == "VIEWER"
    for write in (
        'mutation { submitJob(input: {kind: "demo.noop", payload: {}}) { __typename } }',
        CANCEL.replace("($id: ID!)", "").replace("$id", f'"{job["id"]}"'),
        "mutation { createToken(minutes: 5) { __typename } }",
    ):
        assert (await sec.errors_of(browser, write))[0]["extensions"]["code"] == "FORBIDDEN"
    # A submitter may not mint a tenant-wide token; an admin may.
    assert (await sec.errors_of(team.submitter, "mutation { createToken { __typename } }"))[0][
        "extensions"
    ]["code"] == "FORBIDDEN"
    wide = await team.admin("mutation { createToken(minutes: 5) { ... on Token { token } } }")
    tenant_reader = api.client(wide["createToken"]["token"])
    assert (await tenant_reader("{ jobs { totalCount } }"))["jobs"]["totalCount"] == 2
    # Tampered, expired, or minted by a revoked key: refused.
    assert (await api.client(token[:-3] + "AAA").raw("{ me { name } }")).status_code == 401
    expired = auth.sign_token(
        api.settings.secret_key.get_secret_value(),
        {
            "key": "00000000-0000-0000-0000-000000000000",
            "tenant": str(team.tenant_id),
            "scope": "tenant",
            "exp": int(time.time()) - 1,
        },
    )
    assert (await api.client(expired).raw("{ me { name } }")).status_code == 401
    too_long = await team.admin("mutation { createToken(minutes: 100000) { __typename } }")
    assert too_long["createToken"]["__typename"] == "InvalidInput"
    await env.sql("UPDATE api_keys SET revoked_at = now() WHERE name = 'acme-submitter'")
    assert (await browser.raw("{ me { name } }")).status_code == 401
    logins = await env.sql("SELECT count(*) AS n FROM audit_log WHERE action = 'token.login'")
    assert logins[0]["n"] >= 2


async def test_a_token_is_checked_against_its_key_tenant_and_job_on_use(
    api: Api, env: support.Env
) -> None:
    acme, globex = await sec.team(api, "acme"), await sec.team(api, "globex")
    ours = await submit(acme.submitter, "demo.sleep", {})
    theirs = await submit(globex.submitter, "demo.sleep", {})
    acme_key = (await acme.admin("{ me { id } }"))["me"]["id"]
    secret = api.settings.secret_key.get_secret_value()

    def signed(**claims: str) -> support.GraphQLClient:
        base = {"key": acme_key, "tenant": str(acme.tenant_id), "scope": "tenant"}
        return api.client(auth.sign_token(secret, {**base, **claims, "exp": time.time() + 60}))

    async def status(client: support.GraphQLClient) -> int:
        return (await client.raw("{ jobs { totalCount } }")).status_code

    # Well signed and true: accepted (the name comes from the key, not the claims).
    good = signed(scope=f"job:{ours['id']}", name="spoofed")
    assert (await good("{ me { name } }"))["me"]["name"] == "acme-admin"
    # A tenant its key is not in, a job of another tenant, a job that does not exist, a key
    # that does not exist, a scope that is neither: all refused, whatever the signature.
    assert await status(signed(tenant=str(globex.tenant_id))) == 401
    assert await status(signed(scope=f"job:{theirs['id']}")) == 401
    assert await status(signed(scope="job:00000000-0000-0000-0000-000000000000")) == 401
    assert await status(signed(key="00000000-0000-0000-0000-000000000000")) == 401
    assert await status(signed(scope="everything")) == 401
    # The key expired: its tokens stop with it.
    await env.sql("UPDATE api_keys SET expires_at = now() WHERE id = $1::uuid", acme_key)
    assert await status(signed()) == 401


async def test_only_the_deployments_tenant_or_a_superuser_pauses_queues_and_sets_limits(
    api: Api,
) -> None:
    """Queues, kinds and workers are shared by every tenant: another tenant's admin must not
    stop or slow them for everyone."""
    other = await sec.tenant(api, "other")
    outsider = api.client(await sec.key(api, "other-admin", Role.ADMIN, other))
    insider = api.client(await sec.key(api, "ops", Role.OPERATOR))
    root = api.client(await sec.key(api, "root", Role.ADMIN, other, superuser=True))
    pause = 'mutation { pauseQueue(queue: "default") { __typename } }'
    limit = """mutation { setConcurrencyLimit(input: {kind: "demo.noop", maxRunning: 1}) {
      __typename } }"""
    for query in (pause, limit):
        refused = await outsider.raw(query)
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused.text
    assert (await insider(pause))["pauseQueue"]["__typename"] == "QueuePause"
    assert (await root(limit))["setConcurrencyLimit"]["__typename"] != "Forbidden"
