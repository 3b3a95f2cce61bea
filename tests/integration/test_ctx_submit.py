"""`ctx.submit` on a real worker: a follow-up job as the parent's owner, recorded as its child,
idempotent per (parent, key), so a retried parent creates no duplicates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from conveyor import Conflict, InvalidInput, Producer, Unauthenticated
from conveyor.domain.models import Job
from conveyor.kinds import JobContext, Registry, job_kind
from conveyor.services import submit
from conveyor.services.deps import Deps, open_deps
from conveyor.settings import Settings
from tests import support
from tests.conditions import finished
from tests.integration.conftest import Api

FAMILY = Registry()


class Child(BaseModel):
    n: int


@job_kind("family.child", input=Child, into=FAMILY)
async def child(ctx: JobContext, input: Child) -> dict[str, int]:
    return {"n": input.n}


class Parent(BaseModel):
    fail_first: bool = True


@job_kind("family.parent", input=Parent, into=FAMILY, backoff_base=0.0, backoff_cap=0.0)
async def parent(ctx: JobContext, input: Parent) -> dict[str, Any]:
    """Submits two children, then fails its first attempt: the retry submits them again."""
    first = await ctx.submit("family.child", Child(n=1), key="first")
    derived = await ctx.submit("family.child", {"n": 2})  # no key: derived from kind and input
    derived_again = await ctx.submit("family.child", {"n": 2})
    try:
        await ctx.submit("family.child", {"n": 3}, key="first")
        conflict = False
    except Conflict:
        conflict = True
    if ctx.attempt == 1 and input.fail_first:
        raise RuntimeError("fails after submitting its children")
    return {
        "children": sorted([str(first.id), str(derived.id)]),
        "deduplicated": [first.deduplicated, derived.deduplicated],
        "sameWithoutKey": derived_again.id == derived.id,
        "conflict": conflict,
    }


async def test_a_retried_parent_submits_each_child_once(
    stack: support.Stack, env: support.Env, api: Api
) -> None:
    key = await api.key("owner")
    stack.worker(registry=FAMILY)
    async with Producer(env.database_url, key="owner", registry=FAMILY) as producer:
        job = await producer.submit("family.parent")
    assert await finished(env, job.id) == "SUCCEEDED"

    [row] = await env.sql("SELECT result, attempt FROM jobs WHERE id = $1", job.id)
    result = orjson.loads(row["result"])
    assert row["attempt"] == 2, "the first attempt failed after submitting"
    # The second attempt got the first attempt's children back.
    assert result["deduplicated"] == [True, True]
    assert result["sameWithoutKey"] is True
    assert result["conflict"] is True, "a key reused with other input is refused"
    children = await env.sql(
        "SELECT id::text AS id, owner_id, kind, payload FROM jobs WHERE parent_id = $1 ORDER BY id",
        job.id,
    )
    assert [c["id"] for c in children] == result["children"]
    owners = {c["owner_id"] for c in children}
    [parent_owner] = await env.sql("SELECT owner_id FROM jobs WHERE id = $1", job.id)
    assert owners == {parent_owner["owner_id"]}
    for c in children:
        assert await finished(env, c["id"]) == "SUCCEEDED"
    audit = await env.sql(
        "SELECT after FROM audit_log WHERE action = 'job.submit' AND target = ANY($1)",
        [f"job:{c['id']}" for c in children],
    )
    assert [orjson.loads(a["after"])["parent"] for a in audit] == [str(job.id)] * 2
    decisions = await env.sql(
        "SELECT count(*) AS n FROM policy_decisions WHERE job_kind = 'family.child'"
    )
    assert decisions[0]["n"] == 2 * 4, "each of the 4 submits of each attempt is decided"

    client = api.client(key)
    read = "query($id: ID!) { job(id: $id) { parentId parent { id kind } } }"
    found = (await client(read, {"id": children[0]["id"]}))["job"]
    assert found == {
        "parentId": str(job.id),
        "parent": {"id": str(job.id), "kind": "family.parent"},
    }


@pytest.fixture
async def deps(settings: Settings) -> AsyncIterator[Deps]:
    async with open_deps(settings, FAMILY, pool_size=2, relay=False) as d:
        yield d


async def _parent(deps: Deps, env: support.Env) -> Job:
    env.create_key("owner")
    async with Producer(deps.engine, key="owner", registry=FAMILY) as producer:
        return await producer.submit("family.parent")


async def test_a_child_key_is_bounded_and_the_owner_must_still_be_active(
    deps: Deps, env: support.Env
) -> None:
    job = await _parent(deps, env)
    request = submit.SubmitRequest(kind="family.child", payload={"n": 1})
    with pytest.raises(InvalidInput) as invalid:
        await submit.submit_child(deps, parent=job, request=request, key="k" * 161)
    assert [f.path for f in invalid.value.field_errors] == [("key",)]
    await env.sql("UPDATE api_keys SET revoked_at = now() WHERE name = 'owner'")
    with pytest.raises(Unauthenticated, match="revoked or expired"):
        await submit.submit_child(deps, parent=job, request=request, key="k")
    assert (await env.sql("SELECT count(*) AS n FROM jobs WHERE parent_id IS NOT NULL"))[0][
        "n"
    ] == 0
